package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// LicenseQuery selects and pages licenses. Zero fields select everything and
// take the server's defaults.
type LicenseQuery struct {
	UserID    string            // filter[user_id]
	ProductID int64             // filter[product_id]
	OrderID   string            // filter[order_id]
	Statuses  []licensor.Status // filter[status]: any of these effective statuses
	Recurring *bool             // filter[recurring]
	Ranges    []licensor.Range  // filter[FIELD][OP]=Value, e.g. {"stop_date", "lt", t}

	// Sort is a sort field of licensor.LicenseSortFields(), prefixed with "-"
	// for descending order ("-created_at"); "" sorts by id.
	Sort string
	// PageSize is the number of licenses per page, 1 to
	// licensor.MaxPageSize; 0 takes the server's default.
	PageSize int
	// After is the Next of the previous page. A cursor is only valid with
	// the filters and sort it was made for.
	After string
	// Count asks for LicensePage.Total.
	Count bool
	// IncludeProducts asks for the products of the page in
	// LicensePage.Products.
	IncludeProducts bool
}

func (q *LicenseQuery) values() url.Values {
	v := url.Values{}
	if q.UserID != "" {
		v.Set("filter[user_id]", q.UserID)
	}
	if q.ProductID != 0 {
		v.Set("filter[product_id]", strconv.FormatInt(q.ProductID, 10))
	}
	if q.OrderID != "" {
		v.Set("filter[order_id]", q.OrderID)
	}
	if len(q.Statuses) > 0 {
		s := make([]string, len(q.Statuses))
		for i, st := range q.Statuses {
			s[i] = string(st)
		}
		v.Set("filter[status]", strings.Join(s, ","))
	}
	if q.Recurring != nil {
		v.Set("filter[recurring]", strconv.FormatBool(*q.Recurring))
	}
	for _, r := range q.Ranges {
		v.Set("filter["+r.Field+"]["+r.Op+"]", strconv.FormatInt(r.Value, 10))
	}
	setPage(v, q.Sort, q.PageSize, q.After, q.Count)
	if q.IncludeProducts {
		v.Set("include", "product")
	}
	return v
}

func setPage(v url.Values, sort string, size int, after string, count bool) {
	if sort != "" {
		v.Set("sort", sort)
	}
	if size != 0 {
		v.Set("page[size]", strconv.Itoa(size))
	}
	if after != "" {
		v.Set("page[after]", after)
	}
	if count {
		v.Set("count", "true")
	}
}

// LicensePage is one page of a license list.
type LicensePage struct {
	Licenses []licensor.License
	// Products are the products of Licenses, each once, when the query
	// asked for IncludeProducts.
	Products []licensor.Product
	// Next is the cursor of the next page (for LicenseQuery.After); "" on
	// the last page.
	Next string
	// Total is the number of matches of the whole list, when the query
	// asked for Count.
	Total *int64
}

// CreateLicense grants a product to a user (CreateLicense). Nil fields of d
// take the server's defaults, mostly from the product.
func (c *Client) CreateLicense(ctx context.Context, d licensor.LicenseDraft, opts ...RequestOption) (*licensor.License, error) {
	var doc single[resource[licensor.LicenseObject]]
	_, err := c.do(ctx, call{op: "CreateLicense", method: http.MethodPost, path: "/licenses",
		body: single[licenseOut]{draftOut(&d)}, opts: opts}, &doc)
	if err != nil {
		return nil, err
	}
	l, err := licenseFrom(&doc.Data.v)
	if err != nil {
		return nil, fmt.Errorf("client: CreateLicense: %w", err)
	}
	return &l, nil
}

// CreateLicenses creates every draft or none, atomically
// (BatchCreateLicenses), and returns the licenses in the order of drafts.
// When items fail, the *Error has one object per problem, and
// ErrorObject.Index tells which item it is about.
func (c *Client) CreateLicenses(ctx context.Context, drafts []licensor.LicenseDraft, opts ...RequestOption) ([]licensor.License, error) {
	body := many[licenseOut]{Data: make([]licenseOut, len(drafts))}
	for i := range drafts {
		body.Data[i] = draftOut(&drafts[i])
	}
	var doc many[licensor.LicenseObject]
	if _, err := c.do(ctx, call{op: "BatchCreateLicenses", method: http.MethodPost, path: "/licenses/batch_create",
		body: body, opts: opts}, &doc); err != nil {
		return nil, err
	}
	ls, err := licenses(doc.Data)
	if err != nil {
		return nil, fmt.Errorf("client: BatchCreateLicenses: %w", err)
	}
	return ls, nil
}

// License reads one license (GetLicenseById). Its Status is the effective
// status.
func (c *Client) License(ctx context.Context, id int64, opts ...RequestOption) (*licensor.License, error) {
	var doc single[resource[licensor.LicenseObject]]
	if _, err := c.do(ctx, call{op: "GetLicenseById", method: http.MethodGet, path: "/licenses/" + strconv.FormatInt(id, 10),
		opts: opts}, &doc); err != nil {
		return nil, err
	}
	l, err := licenseFrom(&doc.Data.v)
	if err != nil {
		return nil, fmt.Errorf("client: GetLicenseById: %w", err)
	}
	return &l, nil
}

// Licenses reads one page of licenses (GetLicenses).
func (c *Client) Licenses(ctx context.Context, q LicenseQuery, opts ...RequestOption) (*LicensePage, error) {
	return c.licensePage(ctx, "GetLicenses", "/licenses", q.values(), opts)
}

// UserLicenses reads one page of a user's licenses (GetLicensesByUser); an
// unknown user has none. q.UserID must be empty or equal userID.
func (c *Client) UserLicenses(ctx context.Context, userID string, q LicenseQuery, opts ...RequestOption) (*LicensePage, error) {
	if q.UserID != "" && q.UserID != userID {
		return nil, fmt.Errorf("client: GetLicensesByUser: query UserID %q differs from user %q", q.UserID, userID)
	}
	q.UserID = ""
	return c.licensePage(ctx, "GetLicensesByUser", "/users/"+url.PathEscape(userID)+"/licenses", q.values(), opts)
}

func (c *Client) licensePage(ctx context.Context, op, path string, query url.Values, opts []RequestOption) (*LicensePage, error) {
	var doc licenseList
	if _, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: query, opts: opts}, &doc); err != nil {
		return nil, err
	}
	page := &LicensePage{Total: doc.Meta.Total}
	var err error
	if page.Licenses, err = licenses(doc.Data); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	if doc.Included != nil {
		if page.Products, err = products(doc.Included); err != nil {
			return nil, fmt.Errorf("client: %s: %w", op, err)
		}
	}
	if page.Next, err = nextCursor(doc.Links.Next); err != nil {
		return nil, fmt.Errorf("client: %s: %w", op, err)
	}
	return page, nil
}

// AllLicenses walks every page of GetLicenses from q.After on, yielding
// each license. It stops at the first error, which it yields. Count and
// IncludeProducts are ignored.
func (c *Client) AllLicenses(ctx context.Context, q LicenseQuery, opts ...RequestOption) iter.Seq2[licensor.License, error] {
	q.Count, q.IncludeProducts = false, false
	return walk(q.After, func(after string) ([]licensor.License, string, error) {
		q.After = after
		page, err := c.Licenses(ctx, q, opts...)
		if err != nil {
			return nil, "", err
		}
		return page.Licenses, page.Next, nil
	})
}

// walk yields the items of successive pages until a page has no next
// cursor. A server that hands back the cursor it was given would loop
// forever; that is an error.
func walk[T any](after string, page func(after string) ([]T, string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			items, next, err := page(after)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if next == "" {
				return
			}
			if next == after {
				var zero T
				yield(zero, fmt.Errorf("client: the server returned the cursor %q it was given", after))
				return
			}
			after = next
		}
	}
}

// DeleteLicense deletes one license (DeleteLicenseById).
func (c *Client) DeleteLicense(ctx context.Context, id int64, opts ...RequestOption) error {
	_, err := c.do(ctx, call{op: "DeleteLicenseById", method: http.MethodDelete, path: "/licenses/" + strconv.FormatInt(id, 10),
		opts: opts}, nil)
	return err
}

// DeleteLicenses deletes licenses atomically (BatchDeleteLicenses). An id
// that is not a live license fails the whole call (licensor.CodeLicenseNotFound),
// unless allowMissing is set: then such ids come back in missing and the
// others are deleted.
func (c *Client) DeleteLicenses(ctx context.Context, ids []int64, allowMissing bool, opts ...RequestOption) (deleted, missing []int64, err error) {
	body := many[identifier]{Data: make([]identifier, len(ids))}
	for i, id := range ids {
		body.Data[i] = identifier{Type: "License", ID: strconv.FormatInt(id, 10)}
	}
	var query url.Values
	if allowMissing {
		query = url.Values{"allow_missing": {"true"}}
	}
	var doc batchDeleteOut
	if _, err := c.do(ctx, call{op: "BatchDeleteLicenses", method: http.MethodPost, path: "/licenses/batch_delete",
		query: query, body: body, opts: opts}, &doc); err != nil {
		return nil, nil, err
	}
	if deleted, err = parseIDs(doc.Meta.Deleted); err != nil {
		return nil, nil, fmt.Errorf("client: BatchDeleteLicenses: %w", err)
	}
	if missing, err = parseIDs(doc.Meta.Missing); err != nil {
		return nil, nil, fmt.Errorf("client: BatchDeleteLicenses: %w", err)
	}
	return deleted, missing, nil
}
