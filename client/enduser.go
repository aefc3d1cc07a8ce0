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

// EndUserPath is the path prefix of every End-user License API operation.
const EndUserPath = "/api/license/v4"

// EndUser calls the End-user License API as one user, with that user's
// bearer token (a JWT whose subject is the user), as a viewer's app does.
// It is safe for concurrent use.
//
// The end-user forms are reduced: a License carries only ID, UserID,
// ProductID, Status (effective), StartDate and StopDate, and a Product has
// no CreatedAt or UpdatedAt; the other fields are zero.
type EndUser struct {
	c    *Client
	user string
}

// NewEndUser returns a client of the end-user API at baseURL (as for New)
// that acts as userID, authenticating with token ("Authorization: Bearer").
// The server refuses a token whose subject is not userID (403
// licensor.CodeUserMismatch).
func NewEndUser(baseURL, userID, token string, opts ...Option) *EndUser {
	c := New(baseURL, "", opts...)
	c.base, c.auth = EndUserPath, "Bearer "+token
	return &EndUser{c: c, user: userID}
}

// WithToken returns a copy of u that sends token instead, for when the
// user's token is renewed; u itself is unchanged.
func (u *EndUser) WithToken(token string) *EndUser {
	c := *u.c
	c.auth = "Bearer " + token
	return &EndUser{c: &c, user: u.user}
}

// UserID is the user u acts as.
func (u *EndUser) UserID() string { return u.user }

func (u *EndUser) userPath(rest string) string { return "/users/" + url.PathEscape(u.user) + rest }

// Products reads one page of the products a user may see: the visible
// ones (GetEndUserProducts). q.IsVisible must be nil.
func (u *EndUser) Products(ctx context.Context, q ProductQuery, opts ...RequestOption) (*ProductPage, error) {
	if q.IsVisible != nil {
		return nil, fmt.Errorf("client: GetEndUserProducts: end users see the visible products only; leave IsVisible nil")
	}
	var doc productList
	if _, err := u.c.do(ctx, call{op: "GetEndUserProducts", method: http.MethodGet, path: "/products", query: q.values(),
		opts: opts}, &doc); err != nil {
		return nil, err
	}
	page := &ProductPage{Total: doc.Meta.Total}
	var err error
	if page.Products, err = products(doc.Data); err != nil {
		return nil, fmt.Errorf("client: GetEndUserProducts: %w", err)
	}
	if page.Next, err = nextCursor(doc.Links.Next); err != nil {
		return nil, fmt.Errorf("client: GetEndUserProducts: %w", err)
	}
	return page, nil
}

// AllProducts walks every page of GetEndUserProducts from q.After on,
// yielding each product. It stops at the first error, which it yields.
// Count is ignored.
func (u *EndUser) AllProducts(ctx context.Context, q ProductQuery, opts ...RequestOption) iter.Seq2[licensor.Product, error] {
	q.Count = false
	return walk(q.After, func(after string) ([]licensor.Product, string, error) {
		q.After = after
		page, err := u.Products(ctx, q, opts...)
		if err != nil {
			return nil, "", err
		}
		return page.Products, page.Next, nil
	})
}

// UserLicenseQuery selects and pages a user's own licenses. Zero fields
// select everything and take the server's defaults.
type UserLicenseQuery struct {
	Statuses  []licensor.Status // filter[status]: any of these effective statuses
	ProductID int64             // filter[product_id]

	// Sort is a sort field of licensor.LicenseSortFields, prefixed with "-"
	// for descending order; "" sorts by id.
	Sort string
	// PageSize is the number of licenses per page, 1 to
	// licensor.MaxPageSize; 0 takes the server's default.
	PageSize int
	// After is the Next of the previous page.
	After string
	// Count asks for LicensePage.Total.
	Count bool
}

func (q *UserLicenseQuery) values() url.Values {
	v := url.Values{}
	if len(q.Statuses) > 0 {
		s := make([]string, len(q.Statuses))
		for i, st := range q.Statuses {
			s[i] = string(st)
		}
		v.Set("filter[status]", strings.Join(s, ","))
	}
	if q.ProductID != 0 {
		v.Set("filter[product_id]", strconv.FormatInt(q.ProductID, 10))
	}
	setPage(v, q.Sort, q.PageSize, q.After, q.Count)
	return v
}

// Licenses reads one page of the user's live licenses (GetUserLicenses),
// in the reduced end-user form, with their products always in
// LicensePage.Products.
func (u *EndUser) Licenses(ctx context.Context, q UserLicenseQuery, opts ...RequestOption) (*LicensePage, error) {
	return u.c.licensePage(ctx, "GetUserLicenses", u.userPath("/licenses"), q.values(), opts)
}

// AllLicenses walks every page of GetUserLicenses from q.After on,
// yielding each license in the reduced end-user form. It stops at the
// first error, which it yields. Count is ignored.
func (u *EndUser) AllLicenses(ctx context.Context, q UserLicenseQuery, opts ...RequestOption) iter.Seq2[licensor.License, error] {
	q.Count = false
	return walk(q.After, func(after string) ([]licensor.License, string, error) {
		q.After = after
		page, err := u.Licenses(ctx, q, opts...)
		if err != nil {
			return nil, "", err
		}
		return page.Licenses, page.Next, nil
	})
}

// Entitlements reads what the user may use at unix time at (now when 0)
// (GetUserEntitlements), as Client.UserEntitlements does, with the ETag to
// revalidate it: sent back WithIfNoneMatch, the call fails with
// ErrNotModified while the answer stands.
func (u *EndUser) Entitlements(ctx context.Context, at int64, opts ...RequestOption) (*Entitlements, string, error) {
	return u.c.entitlementsCall(ctx, "GetUserEntitlements", u.userPath("/entitlements"), at, opts)
}

// buyOut is the License resource of a purchase.
type buyOut struct {
	Type       string `json:"type"`
	Attributes struct {
		PurchaseRecord struct {
			PaymentMethod string `json:"payment_method"`
		} `json:"purchase_record"`
	} `json:"attributes"`
	Relationships struct {
		Product toOne `json:"product"`
	} `json:"relationships"`
}

// Purchase buys a product for the user (PurchaseUserLicense): an ACTIVE
// license from now, on the product's terms, paid by the operator's
// billing. It returns the license (reduced form) and the product.
//
// idempotencyKey is required and names this purchase: a retry with the
// same key (after a timeout, say) replays the first answer instead of
// buying twice, and once that answer has expired fails with
// licensor.CodeOrderIDConflict (Error.ExistingID gives the license) while
// the license lives. An empty key fails at once with
// licensor.CodeIdempotencyKeyRequired, without a request.
func (u *EndUser) Purchase(ctx context.Context, productID int64, idempotencyKey string, opts ...RequestOption) (*licensor.License, *licensor.Product, error) {
	if idempotencyKey == "" {
		return nil, nil, fmt.Errorf("client: PurchaseUserLicense: %w",
			licensor.Errorf(licensor.CodeIdempotencyKeyRequired, "a purchase needs an idempotency key"))
	}
	out := buyOut{Type: "License"}
	out.Attributes.PurchaseRecord.PaymentMethod = "billing"
	out.Relationships.Product.Data = &identifier{Type: "Product", ID: strconv.FormatInt(productID, 10)}
	var doc struct {
		Data     resource[licensor.LicenseObject] `json:"data"`
		Included []licensor.ProductObject         `json:"included"`
	}
	opts = append([]RequestOption{WithIdempotencyKey(idempotencyKey)}, opts...)
	if _, err := u.c.do(ctx, call{op: "PurchaseUserLicense", method: http.MethodPost, path: u.userPath("/licenses"),
		body: single[buyOut]{out}, opts: opts}, &doc); err != nil {
		return nil, nil, err
	}
	l, err := licenseFrom(&doc.Data.v)
	if err != nil {
		return nil, nil, fmt.Errorf("client: PurchaseUserLicense: %w", err)
	}
	ps, err := products(doc.Included)
	if err != nil {
		return nil, nil, fmt.Errorf("client: PurchaseUserLicense: %w", err)
	}
	for i := range ps {
		if ps[i].ID == l.ProductID {
			return &l, &ps[i], nil
		}
	}
	return nil, nil, fmt.Errorf("client: PurchaseUserLicense: the response does not include product %d", l.ProductID)
}
