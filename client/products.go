package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"

	"github.com/licensor/licensor"
)

// ProductQuery selects and pages products. Zero fields select everything
// and take the server's defaults.
type ProductQuery struct {
	Type      string // filter[type]
	IsPremium *bool  // filter[is_premium]
	IsBuyable *bool  // filter[is_buyable]
	IsVisible *bool  // filter[is_visible]
	Title     string // filter[title]: a case-insensitive substring

	// Sort is a sort field of licensor.ProductSortFields(), prefixed with "-"
	// for descending order ("-created_at"); "" sorts by id.
	Sort string
	// PageSize is the number of products per page, 1 to
	// licensor.MaxPageSize; 0 takes the server's default.
	PageSize int
	// After is the Next of the previous page.
	After string
	// Count asks for ProductPage.Total.
	Count bool
}

func (q *ProductQuery) values() url.Values {
	v := url.Values{}
	if q.Type != "" {
		v.Set("filter[type]", q.Type)
	}
	for name, b := range map[string]*bool{"is_premium": q.IsPremium, "is_buyable": q.IsBuyable, "is_visible": q.IsVisible} {
		if b != nil {
			v.Set("filter["+name+"]", strconv.FormatBool(*b))
		}
	}
	if q.Title != "" {
		v.Set("filter[title]", q.Title)
	}
	setPage(v, q.Sort, q.PageSize, q.After, q.Count)
	return v
}

// ProductPage is one page of a product list.
type ProductPage struct {
	Products []licensor.Product
	// Next is the cursor of the next page (for ProductQuery.After); "" on
	// the last page.
	Next string
	// Total is the number of matches of the whole list, when the query
	// asked for Count.
	Total *int64
}

// CreateProduct creates a product (CreateProduct) and returns it with its
// ETag. Start from licensor.NewProduct for the defaults: every boolean of p
// is sent as it is, while an empty Description, Type or LicensePeriod and
// nil prices are left out (taking the server's defaults). Only the services
// present in p.Channels are sent.
func (c *Client) CreateProduct(ctx context.Context, p licensor.Product, opts ...RequestOption) (*licensor.Product, string, error) {
	return c.productCall(ctx, call{op: "CreateProduct", method: http.MethodPost, path: "/products",
		body: single[productOut]{newProductOut(&p)}, opts: opts})
}

// Product reads one product (GetProductById) and its ETag.
func (c *Client) Product(ctx context.Context, id int64, opts ...RequestOption) (*licensor.Product, string, error) {
	return c.productCall(ctx, call{op: "GetProductById", method: http.MethodGet, path: "/products/" + strconv.FormatInt(id, 10),
		opts: opts})
}

// UpdateProduct applies a partial update (UpdateProduct) and returns the
// product with its new ETag. Nil fields of patch are left out; a
// PriceAmount or PriceCurrency pointing at nil, and an empty LicensePeriod,
// clear the value. With ifMatch not empty, the update fails with
// licensor.CodePreconditionFailed when the product's ETag is no longer
// ifMatch.
func (c *Client) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, opts ...RequestOption) (*licensor.Product, string, error) {
	return c.productCall(ctx, call{op: "UpdateProduct", method: http.MethodPatch, path: "/products/" + strconv.FormatInt(id, 10),
		header: ifMatchHeader(ifMatch), body: single[productOut]{patchOut(id, &patch)}, opts: opts})
}

func (c *Client) productCall(ctx context.Context, cl call) (*licensor.Product, string, error) {
	var doc single[resource[licensor.ProductObject]]
	h, err := c.do(ctx, cl, &doc)
	if err != nil {
		return nil, "", err
	}
	p, err := productFrom(&doc.Data.v)
	if err != nil {
		return nil, "", fmt.Errorf("client: %s: %w", cl.op, err)
	}
	return &p, h.Get("ETag"), nil
}

// DeleteProduct deletes a product (DeleteProductById). A product that still
// has live licenses fails with licensor.CodeProductInUse, unless cascade is
// set, which deletes those licenses too. With ifMatch not empty, the delete
// fails with licensor.CodePreconditionFailed when the product's ETag is no
// longer ifMatch.
func (c *Client) DeleteProduct(ctx context.Context, id int64, cascade bool, ifMatch string, opts ...RequestOption) error {
	var query url.Values
	if cascade {
		query = url.Values{"cascade": {"true"}}
	}
	_, err := c.do(ctx, call{op: "DeleteProductById", method: http.MethodDelete, path: "/products/" + strconv.FormatInt(id, 10),
		query: query, header: ifMatchHeader(ifMatch), opts: opts}, nil)
	return err
}

func ifMatchHeader(etag string) http.Header {
	if etag == "" {
		return nil
	}
	return http.Header{"If-Match": {etag}}
}

// Products reads one page of products (GetAllProducts).
func (c *Client) Products(ctx context.Context, q ProductQuery, opts ...RequestOption) (*ProductPage, error) {
	var doc productList
	if _, err := c.do(ctx, call{op: "GetAllProducts", method: http.MethodGet, path: "/products", query: q.values(),
		opts: opts}, &doc); err != nil {
		return nil, err
	}
	page := &ProductPage{Total: doc.Meta.Total}
	var err error
	if page.Products, err = products(doc.Data); err != nil {
		return nil, fmt.Errorf("client: GetAllProducts: %w", err)
	}
	if page.Next, err = nextCursor(doc.Links.Next); err != nil {
		return nil, fmt.Errorf("client: GetAllProducts: %w", err)
	}
	return page, nil
}

// AllProducts walks every page of GetAllProducts from q.After on, yielding
// each product. It stops at the first error, which it yields. Count is
// ignored.
func (c *Client) AllProducts(ctx context.Context, q ProductQuery, opts ...RequestOption) iter.Seq2[licensor.Product, error] {
	q.Count = false
	return walk(q.After, func(after string) ([]licensor.Product, string, error) {
		q.After = after
		page, err := c.Products(ctx, q, opts...)
		if err != nil {
			return nil, "", err
		}
		return page.Products, page.Next, nil
	})
}
