package storetest

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

// This file is the model the list queries are checked against: the rules of
// LicenseFilter, ProductFilter, SortOrder and Cursor restated in plain Go.

// matchLicense reports whether l is selected by f at unix time now.
func matchLicense(l licensor.License, f licensor.LicenseFilter, now int64) bool {
	if f.UserID != nil && l.UserID != *f.UserID {
		return false
	}
	if f.ProductID != nil && l.ProductID != *f.ProductID {
		return false
	}
	if f.OrderID != nil && (l.OrderID == nil || *l.OrderID != *f.OrderID) {
		return false
	}
	if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, l.EffectiveStatus(now)) {
		return false
	}
	if f.Recurring != nil && l.Recurring != *f.Recurring {
		return false
	}
	for _, r := range f.Ranges {
		v, ok := rangeValue(l, r.Field)
		if !ok { // a missing value never matches a range
			return false
		}
		switch r.Op {
		case "gt":
			ok = v > r.Value
		case "gte":
			ok = v >= r.Value
		case "lt":
			ok = v < r.Value
		case "lte":
			ok = v <= r.Value
		default:
			panic("storetest: unknown range op " + r.Op)
		}
		if !ok {
			return false
		}
	}
	return true
}

// rangeValue is the value of a range field of l, and false when it is null.
func rangeValue(l licensor.License, field string) (int64, bool) {
	switch field {
	case "start_date":
		return l.StartDate, true
	case "stop_date":
		if l.StopDate == nil {
			return 0, false
		}
		return *l.StopDate, true
	case "expiry_date":
		if l.ExpiryDate == nil {
			return 0, false
		}
		return *l.ExpiryDate, true
	case "purchase_timestamp":
		return l.PurchaseTimestamp, true
	case "created_at":
		return l.CreatedAt, true
	}
	panic("storetest: unknown range field " + field)
}

// licenseKey is the sort key of l for a sort field; a null stop or expiry
// date sorts as "never" (MaxInt64), which is also its cursor value.
func licenseKey(l licensor.License, field string) int64 {
	switch field {
	case "", "id":
		return l.ID
	case "created_at":
		return l.CreatedAt
	case "start_date":
		return l.StartDate
	case "stop_date":
		if l.StopDate == nil {
			return math.MaxInt64
		}
		return *l.StopDate
	case "expiry_date":
		if l.ExpiryDate == nil {
			return math.MaxInt64
		}
		return *l.ExpiryDate
	}
	panic("storetest: unknown license sort field " + field)
}

// expectLicenses is what FindLicenses must return for f, sorted by o, at now,
// out of the live licenses ls: the matching ones with their effective status,
// ordered by the sort key and then by id, both in the sort's direction.
func expectLicenses(ls []licensor.License, f licensor.LicenseFilter, o licensor.SortOrder, now int64) []licensor.License {
	var out []licensor.License
	for _, l := range ls {
		if matchLicense(l, f, now) {
			l.Status = l.EffectiveStatus(now)
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b licensor.License) int {
		c := cmp.Or(cmp.Compare(licenseKey(a, o.Field), licenseKey(b, o.Field)), cmp.Compare(a.ID, b.ID))
		if o.Desc {
			return -c
		}
		return c
	})
	return out
}

// matchProduct reports whether p is selected by f.
func matchProduct(p licensor.Product, f licensor.ProductFilter) bool {
	if f.Type != nil && p.Type != *f.Type {
		return false
	}
	if f.IsPremium != nil && p.IsPremium != *f.IsPremium {
		return false
	}
	if f.IsBuyable != nil && p.IsBuyable != *f.IsBuyable {
		return false
	}
	if f.IsVisible != nil && p.IsVisible != *f.IsVisible {
		return false
	}
	if f.Title != nil && !strings.Contains(strings.ToLower(p.Title), strings.ToLower(*f.Title)) {
		return false
	}
	return true
}

// compareProducts orders products by a sort field, then by id. Titles
// compare bytewise (the order of Go strings), identically on every engine.
func compareProducts(a, b licensor.Product, o licensor.SortOrder) int {
	var c int
	switch o.Field {
	case "", "id":
	case "title":
		c = strings.Compare(a.Title, b.Title)
	case "created_at":
		c = cmp.Compare(a.CreatedAt, b.CreatedAt)
	default:
		panic("storetest: unknown product sort field " + o.Field)
	}
	c = cmp.Or(c, cmp.Compare(a.ID, b.ID))
	if o.Desc {
		return -c
	}
	return c
}

// expectProducts is what FindProducts must return for f sorted by o.
func expectProducts(ps []licensor.Product, f licensor.ProductFilter, o licensor.SortOrder) []licensor.Product {
	var out []licensor.Product
	for _, p := range ps {
		if matchProduct(p, f) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b licensor.Product) int { return compareProducts(a, b, o) })
	return out
}

// maxPages bounds a keyset walk, so that a store that never ends a walk
// fails instead of hanging.
const maxPages = 1000

// walkLicenses pages through q (q.After is the start) until Next is nil and
// returns every license seen. It checks the shape of each page: at most
// Limit rows, full pages before the last, no empty page after the first,
// Next naming the last row (its sort key and id), and Total on every page
// when q.Count is set (wantTotal).
func walkLicenses(t *testing.T, s licensor.Store, q licensor.LicenseQuery, wantTotal int) []licensor.License {
	t.Helper()
	var all []licensor.License
	for n := 0; ; n++ {
		if n == maxPages {
			t.Fatalf("FindLicenses %s: still a next page after %d pages", showQuery(q), maxPages)
		}
		page, err := s.FindLicenses(t.Context(), q)
		if err != nil {
			t.Fatalf("FindLicenses %s: %v", showQuery(q), err)
		}
		where := fmt.Sprintf("FindLicenses page %d of %s", n+1, showQuery(q))
		checkTotal(t, where, q.Count, page.Total, wantTotal)
		ls := page.Licenses
		if len(ls) > q.Limit {
			t.Fatalf("%s: got %d licenses, want at most Limit %d", where, len(ls), q.Limit)
		}
		all = append(all, ls...)
		if page.Next == nil {
			if len(ls) == 0 && n > 0 {
				t.Fatalf("%s: got an empty last page; the previous page should have had no Next", where)
			}
			return all
		}
		if len(ls) != q.Limit {
			t.Fatalf("%s: got %d licenses and a Next cursor, want a full page of %d", where, len(ls), q.Limit)
		}
		last := ls[len(ls)-1]
		if page.Next.ID != last.ID {
			t.Fatalf("%s: Next.ID: got %d, want %d (the last row)", where, page.Next.ID, last.ID)
		}
		if f := q.Sort.Field; f != "" && f != "id" {
			if want := licenseKey(last, f); page.Next.Int != want {
				t.Fatalf("%s: Next.Int: got %d, want %d (the %s of the last row)", where, page.Next.Int, want, f)
			}
		}
		q.After = page.Next
	}
}

// walkProducts is walkLicenses for products.
func walkProducts(t *testing.T, s licensor.Store, q licensor.ProductQuery, wantTotal int) []licensor.Product {
	t.Helper()
	var all []licensor.Product
	for n := 0; ; n++ {
		if n == maxPages {
			t.Fatalf("FindProducts %s: still a next page after %d pages", showQuery(q), maxPages)
		}
		page, err := s.FindProducts(t.Context(), q)
		if err != nil {
			t.Fatalf("FindProducts %s: %v", showQuery(q), err)
		}
		where := fmt.Sprintf("FindProducts page %d of %s", n+1, showQuery(q))
		checkTotal(t, where, q.Count, page.Total, wantTotal)
		ps := page.Products
		if len(ps) > q.Limit {
			t.Fatalf("%s: got %d products, want at most Limit %d", where, len(ps), q.Limit)
		}
		all = append(all, ps...)
		if page.Next == nil {
			if len(ps) == 0 && n > 0 {
				t.Fatalf("%s: got an empty last page; the previous page should have had no Next", where)
			}
			return all
		}
		if len(ps) != q.Limit {
			t.Fatalf("%s: got %d products and a Next cursor, want a full page of %d", where, len(ps), q.Limit)
		}
		last := ps[len(ps)-1]
		if page.Next.ID != last.ID {
			t.Fatalf("%s: Next.ID: got %d, want %d (the last row)", where, page.Next.ID, last.ID)
		}
		switch q.Sort.Field {
		case "title":
			if page.Next.Str != last.Title {
				t.Fatalf("%s: Next.Str: got %q, want %q (the title of the last row)", where, page.Next.Str, last.Title)
			}
		case "created_at":
			if page.Next.Int != last.CreatedAt {
				t.Fatalf("%s: Next.Int: got %d, want %d (the created_at of the last row)", where, page.Next.Int, last.CreatedAt)
			}
		}
		q.After = page.Next
	}
}

// checkTotal checks a page's Total: the number of all matches when the query
// asked for a count (whatever the cursor), nil otherwise.
func checkTotal(t *testing.T, where string, count bool, got *int64, want int) {
	t.Helper()
	switch {
	case !count && got != nil:
		t.Fatalf("%s: Total: got %d, want nil (Count not asked for)", where, *got)
	case count && got == nil:
		t.Fatalf("%s: Total: got nil, want %d", where, want)
	case count && *got != int64(want):
		t.Fatalf("%s: Total: got %d, want %d", where, *got, want)
	}
}
