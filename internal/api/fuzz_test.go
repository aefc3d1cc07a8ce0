package api

// Fuzz targets of the request decoder and the query parameters of the
// license and product lists (the cursors and the document machinery have
// theirs in internal/jsonapi).
// Seed corpora are in testdata/fuzz/Fuzz*; run one briefly with e.g.
//
//	go test -run='^$' -fuzz='^FuzzDecodeRequest$' -fuzztime=10s ./internal/api
//
// Each checks properties, not only the absence of panics: every error is a
// *licensor.Error whose code maps to 400, pointers and parameters say where,
// what decodes re-encodes to the same thing.

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// checkBadRequest fails unless err is made of *licensor.Error values whose
// codes all map to 400, and which the error adapter answers with a 400.
func checkBadRequest(t *testing.T, err error) {
	t.Helper()
	var (
		one  *licensor.Error
		many licensor.Errors
	)
	switch {
	case errors.As(err, &many):
		if len(many) == 0 {
			t.Fatalf("an empty licensor.Errors")
		}
	case errors.As(err, &one):
		many = licensor.Errors{one}
	default:
		t.Fatalf("error %T %v is not a *licensor.Error", err, err)
	}
	for _, e := range many {
		// A body of another resource type (or, on PATCH, id) is JSON:API's
		// 409; everything else wrong with a body is a 400.
		if statusOf(e.Code) != http.StatusBadRequest && e.Code != licensor.CodeResourceMismatch {
			t.Fatalf("code %s of %v maps to %d, want 400", e.Code, e, statusOf(e.Code))
		}
		if e.Detail == "" {
			t.Fatalf("error %s without a detail", e.Code)
		}
	}
	// The document's status is 409 only when every error is a mismatch;
	// mixed with a 400 it is 400 (JSON:API: the most generally applicable).
	want := http.StatusConflict
	for _, e := range many {
		if e.Code != licensor.CodeResourceMismatch {
			want = http.StatusBadRequest
		}
	}
	status, objs := jsonapi.ErrorResponse(jsonapi.At(jsonapi.SingleBase("/data"), err))
	if status != want || len(objs) != len(many) {
		t.Fatalf("the adapter answers %d with %d objects for %v, want %d", status, len(objs), err, want)
	}
}

// statusOf is the HTTP status of code.
func statusOf(code licensor.Code) int {
	status, _ := jsonapi.ErrorResponse(&licensor.Error{Code: code})
	return status
}

// resolve follows a JSON pointer (RFC 6901) into a decoded document.
func resolve(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	if !strings.HasPrefix(ptr, "/") {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[tok]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// checkResourceErrors checks the errors of parsing one resource object m:
// 400s whose pointers are relative to m, and an unknown member's pointer
// names a member that is there.
func checkResourceErrors(t *testing.T, m map[string]any, err error) {
	t.Helper()
	checkBadRequest(t, err)
	var errs licensor.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("resource errors are %T, want licensor.Errors", err)
	}
	for _, e := range errs {
		if e.Pointer == "" || !strings.HasPrefix(e.Pointer, "/") {
			t.Fatalf("error %v has pointer %q, want one into the resource", e, e.Pointer)
		}
		if e.Code == licensor.CodeUnknownAttribute {
			if _, ok := resolve(m, e.Pointer); !ok {
				t.Fatalf("unknown member at %q, which does not resolve in %v", e.Pointer, m)
			}
		}
	}
}

// encodeDraft writes a draft back as a License resource object.
func encodeDraft(d licensor.LicenseDraft) map[string]any {
	attrs := map[string]any{}
	if d.Status != nil {
		attrs["status"] = string(*d.Status)
	}
	if d.StartDate != nil {
		attrs["start_date"] = *d.StartDate
	}
	if d.StopDate != nil {
		attrs["stop_date"] = *d.StopDate
	}
	if d.OrderID != nil {
		attrs["order_id"] = *d.OrderID
	}
	renew := map[string]any{}
	if d.Recurring != nil {
		renew["recurring"] = *d.Recurring
	}
	if d.ExpiryDate != nil {
		renew["expiry_date"] = *d.ExpiryDate
	}
	if len(renew) > 0 {
		attrs["renew_record"] = renew
	}
	purchase := map[string]any{}
	if d.PriceAmount != nil {
		purchase["price_currency_amount"] = *d.PriceAmount
	}
	if d.PriceCurrency != nil {
		purchase["price_currency_iso4217"] = *d.PriceCurrency
	}
	if d.PurchaseTimestamp != nil {
		purchase["purchase_timestamp"] = *d.PurchaseTimestamp
	}
	if d.PaymentMethod != nil {
		purchase["payment_method"] = *d.PaymentMethod
	}
	if len(purchase) > 0 {
		attrs["purchase_record"] = purchase
	}
	return map[string]any{"data": map[string]any{
		"type":       "License",
		"attributes": attrs,
		"relationships": map[string]any{
			"user":    map[string]any{"data": map[string]any{"type": "User", "id": d.UserID}},
			"product": map[string]any{"data": map[string]any{"type": "Product", "id": strconv.FormatInt(d.ProductID, 10)}},
		},
	}}
}

// checkDraft checks the invariants of a license the decoder accepted, and
// that it re-encodes to the same draft.
func checkDraft(t *testing.T, d licensor.LicenseDraft) {
	t.Helper()
	switch {
	case !licensor.ValidUserID(d.UserID):
		t.Fatalf("accepted user id %q", d.UserID)
	case d.ProductID <= 0:
		t.Fatalf("accepted product id %d", d.ProductID)
	case d.Status != nil && !d.Status.Valid():
		t.Fatalf("accepted status %q", *d.Status)
	case d.OrderID != nil && (*d.OrderID == "" || utf8.RuneCountInString(*d.OrderID) > licensor.MaxOrderIDLen):
		t.Fatalf("accepted order id %q", *d.OrderID)
	case d.PriceCurrency != nil && !licensor.ValidCurrency(*d.PriceCurrency):
		t.Fatalf("accepted currency %q", *d.PriceCurrency)
	case d.PaymentMethod != nil && utf8.RuneCountInString(*d.PaymentMethod) > licensor.MaxPaymentMethodLen:
		t.Fatalf("accepted payment method %q", *d.PaymentMethod)
	}
	for _, n := range []*int64{d.StartDate, d.StopDate, d.ExpiryDate, d.PriceAmount, d.PurchaseTimestamp} {
		if n != nil && *n < 0 {
			t.Fatalf("accepted a negative number: %+v", d)
		}
	}
	b, err := json.Marshal(encodeDraft(d))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonapi.ParseDocument(b, jsonapi.Limits{})
	if err != nil {
		t.Fatalf("re-encoded draft: %v", err)
	}
	items, _, err := jsonapi.Resources(doc, false)
	if err != nil {
		t.Fatalf("re-encoded draft: %v", err)
	}
	again, err := parseLicense(items[0])
	if err != nil {
		t.Fatalf("re-encoded draft %s: %v", b, err)
	}
	if !reflect.DeepEqual(again, d) {
		t.Fatalf("draft changed through re-encoding:\n%+v\n%+v", d, again)
	}
}

// FuzzDecodeRequest feeds request bodies to the JSON:API decoder: the
// document, its resources (single and batch) and License and Product
// parsing.
func FuzzDecodeRequest(f *testing.F) {
	f.Add([]byte(`{"data":{"type":"License","attributes":{"order_id":"o-1","start_date":1700000000,"stop_date":1800000000,"renew_record":{"recurring":true},"purchase_record":{"price_currency_amount":999,"price_currency_iso4217":"EUR"}},"relationships":{"user":{"data":{"type":"User","id":"41"}},"product":{"data":{"type":"Product","id":"1"}}}}}`))
	f.Add([]byte(`{"data":[{"type":"Product","attributes":{"title":"Sport","license_period":"P1M","price_currency_amount":1,"price_currency_iso4217":"USD"},"relationships":{"live":{"data":[{"type":"Channel","id":"espn"}]}}}]}`))
	// The text rule: NUL, invalid UTF-8, lone surrogates, in values and
	// member names, and what is valid next to them.
	f.Add([]byte(`{"data":{"type":"License","attributes":{"order_id":"o-\u0000"}}}`))
	f.Add([]byte("{\"data\":{\"type\":\"License\",\"attributes\":{\"order_id\":\"o-\xff\"}}}"))
	f.Add([]byte(`{"data":[{"type":"Product","attributes":{"title":"\ud800x","description":"\ud83d\ude00"}}]}`))
	f.Add([]byte("{\"me\xc0\xafta\":{},\"data\":{\"a\\\\u0000\":[\"\\udc00\",\"\ufffd\"]}}"))
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, err := jsonapi.ParseDocument(body, jsonapi.Limits{Batch: licensor.DefaultMaxBatch})
		if err != nil {
			checkBadRequest(t, err)
			return
		}
		if !utf8.Valid(body) {
			t.Fatalf("accepted a body that is not UTF-8: %q", body)
		}
		checkText(t, doc)
		for _, batch := range []bool{false, true} {
			items, bases, err := jsonapi.Resources(doc, batch)
			if err != nil {
				checkBadRequest(t, err)
				continue
			}
			if len(items) != len(bases) || (!batch && len(items) != 1) {
				t.Fatalf("resources: %d items, %d bases (batch %v)", len(items), len(bases), batch)
			}
			for i, m := range items {
				if _, ok := resolve(doc, bases[i]); !ok {
					t.Fatalf("resource base %q does not resolve", bases[i])
				}
				if d, err := parseLicense(m); err != nil {
					checkResourceErrors(t, m, err)
				} else {
					checkDraft(t, d)
				}
				for _, id := range []int64{0, 7} {
					p, err := parseProduct(m, id)
					switch {
					case err != nil:
						checkResourceErrors(t, m, err)
					case id == 0 && (p.Title == nil || *p.Title == ""):
						t.Fatalf("a product create without a title was accepted")
					case p.LicensePeriod != nil && *p.LicensePeriod != "":
						if _, err := licensor.ParsePeriod(*p.LicensePeriod); err != nil {
							t.Fatalf("accepted license_period %q: %v", *p.LicensePeriod, err)
						}
					}
				}
			}
		}
	})
}

// checkText fails unless every string and member name in v keeps the rule
// of licensor.ValidText (the decoder makes every string valid UTF-8; the
// raw body is checked by the caller).
func checkText(t *testing.T, v any) {
	t.Helper()
	switch v := v.(type) {
	case string:
		if !licensor.ValidText(v) {
			t.Fatalf("accepted the string %q", v)
		}
	case map[string]any:
		for k, m := range v {
			checkText(t, k)
			checkText(t, m)
		}
	case []any:
		for _, m := range v {
			checkText(t, m)
		}
	}
}

// checkQueryErrors checks that the errors of a query are 400s, each naming
// its parameter (except the one for a malformed query string).
func checkQueryErrors(t *testing.T, err error) {
	t.Helper()
	checkBadRequest(t, err)
	var errs licensor.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("query errors are %T, want licensor.Errors", err)
	}
	for _, e := range errs {
		if e.Parameter == "" && e.Detail != "the query string is malformed" && e.Detail != `unknown query parameter ""` && !strings.HasPrefix(e.Detail, "query parameter names and values must be valid UTF-8") {
			t.Fatalf("error %v names no parameter", e)
		}
	}
}

// FuzzQuery feeds query strings to the list parameters of licenses (both
// routes) and products.
func FuzzQuery(f *testing.F) {
	f.Add("filter[status]=ACTIVE,EXPIRED&filter[stop_date][lt]=1900000000&sort=-stop_date&page[size]=50&count=true&include=product", false)
	f.Add("filter[title]=sport&filter[is_premium]=true&sort=title&page[after]=eyJpIjoxLCJxIjoiIn0", true)
	f.Add("filter[order_id]=%00&filter[title]=%FF", false)
	f.Add("filter%C0%AF=1&filter[order_id]=a%F0%9F%98%80", true)
	f.Fuzz(func(t *testing.T, raw string, byUser bool) {
		q := jsonapi.NewQuery(&url.URL{RawQuery: raw})
		filter := licenseFilter(q, byUser)
		order := q.Sort(licensor.LicenseSortFields())
		scope := q.Scope("/licenses")
		limit, after, _ := q.Page(scope)
		includeProduct(q)
		if limit < 1 || limit > licensor.MaxPageSize {
			t.Fatalf("page size %d", limit)
		}
		if err := q.Done(); err != nil {
			checkQueryErrors(t, err)
		} else {
			values, _ := url.ParseQuery(raw)
			for k, vs := range values {
				for _, v := range append(vs, k) {
					if !licensor.ValidText(v) {
						t.Fatalf("accepted the parameter %q=%q", k, vs)
					}
				}
			}
			if !slices.Contains(licensor.LicenseSortFields(), order.Field) {
				t.Fatalf("accepted sort %q", order.Field)
			}
			for _, r := range filter.Ranges {
				if !slices.Contains(licensor.LicenseRangeFields(), r.Field) || !slices.Contains(licensor.RangeOps(), r.Op) {
					t.Fatalf("accepted range %+v", r)
				}
			}
			for _, s := range filter.Statuses {
				if !s.Valid() {
					t.Fatalf("accepted status %q", s)
				}
			}
			if byUser && filter.UserID != nil {
				t.Fatalf("accepted filter[user_id] on the user's route")
			}
			if after != nil && after.ID <= 0 {
				t.Fatalf("accepted cursor %+v", after)
			}
		}
		// The scope a cursor is bound to does not depend on the order of
		// the parameters.
		if values, err := url.ParseQuery(raw); err == nil {
			if again := jsonapi.NewQuery(&url.URL{RawQuery: values.Encode()}).Scope("/licenses"); again != scope {
				t.Fatalf("scope changes with parameter order: %q vs %q", raw, values.Encode())
			}
		}

		q = jsonapi.NewQuery(&url.URL{RawQuery: raw})
		productFilter(q)
		q.Sort(licensor.ProductSortFields())
		q.Page(q.Scope("/products"))
		if err := q.Done(); err != nil {
			checkQueryErrors(t, err)
		}
	})
}
