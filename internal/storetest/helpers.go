package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"testing"

	"github.com/licensor/licensor"
)

// Times used throughout the suite, in unix seconds.
const (
	day = int64(86400)
	// t0 is the "now" of most tests: 2025-03-10 12:00:00 UTC.
	t0 = int64(1741608000)
	// missingID is an id no test creates.
	missingID = int64(987654321)
)

// at is the Change of a write made at unix time ts.
func at(ts int64) licensor.Change {
	return licensor.Change{Time: ts, Actor: "storetest", RequestID: "storetest-" + strconv.FormatInt(ts, 10)}
}

// show renders v for a failure message, following pointers.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// showQuery renders a query or filter for a failure message, leaving out
// the fields that are not set.
func showQuery(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	var tree any
	if err := json.Unmarshal(b, &tree); err != nil {
		return string(b)
	}
	b, err = json.Marshal(prune(tree))
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(b)
}

// prune drops null members and empty lists and objects from a decoded JSON value.
func prune(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, m := range v {
			m = prune(m)
			switch m := m.(type) {
			case nil:
				continue
			case map[string]any:
				if len(m) == 0 {
					continue
				}
			case []any:
				if len(m) == 0 {
					continue
				}
			}
			out[k] = m
		}
		return out
	case []any:
		for i := range v {
			v[i] = prune(v[i])
		}
	}
	return v
}

// wantCode fails the test unless err carries the code want.
func wantCode(t *testing.T, err error, want licensor.Code) {
	t.Helper()
	if got := licensor.ErrorCode(err); got != want {
		t.Fatalf("error code: got %q (err %v), want %q", got, err, want)
	}
}

// wantItemErrors fails the test unless err is a licensor.ItemErrors naming
// exactly the items of want (index → code), each once. It returns the errors
// by index.
func wantItemErrors(t *testing.T, err error, want map[int]licensor.Code) map[int]*licensor.Error {
	t.Helper()
	var items licensor.ItemErrors
	if !errors.As(err, &items) {
		t.Fatalf("error: got %v (%T), want licensor.ItemErrors %v", err, err, want)
	}
	got := map[int]licensor.Code{}
	byIndex := map[int]*licensor.Error{}
	for _, it := range items {
		if it.Err == nil {
			t.Fatalf("item %d: got a nil *licensor.Error in %v", it.Index, items)
		}
		if _, dup := got[it.Index]; dup {
			t.Errorf("item %d: reported more than once: %v", it.Index, items)
		}
		got[it.Index] = it.Err.Code
		byIndex[it.Index] = it.Err
	}
	if !maps.Equal(got, want) {
		t.Fatalf("item errors: got %v, want %v (errors: %v)", got, want, items)
	}
	return byIndex
}

// wantPointer checks the JSON pointer of e.
func wantPointer(t *testing.T, e *licensor.Error, want string) {
	t.Helper()
	if e.Pointer != want {
		t.Errorf("pointer of %v: got %q, want %q", e, e.Pointer, want)
	}
}

// createProduct stores p (made valid by the caller) at time ts.
func createProduct(t *testing.T, s licensor.Store, p licensor.Product, ts int64) licensor.Product {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("test product %q is invalid: %v", p.Title, err)
	}
	if err := s.CreateProduct(t.Context(), &p, at(ts)); err != nil {
		t.Fatalf("CreateProduct(%q): %v", p.Title, err)
	}
	return p
}

// draft is a license request with only the required fields.
func draft(userID string, productID int64) licensor.LicenseDraft {
	return licensor.LicenseDraft{UserID: userID, ProductID: productID}
}

// createLicenses creates drafts at time ts, failing the test on any error.
func createLicenses(t *testing.T, s licensor.Store, ts int64, drafts ...licensor.LicenseDraft) []licensor.License {
	t.Helper()
	ls, err := s.CreateLicenses(t.Context(), drafts, at(ts))
	if err != nil {
		t.Fatalf("CreateLicenses(%s): %v", showQuery(drafts), err)
	}
	if len(ls) != len(drafts) {
		t.Fatalf("CreateLicenses: got %d licenses, want %d", len(ls), len(drafts))
	}
	return ls
}

func findProduct(t *testing.T, s licensor.Store, id int64) licensor.Product {
	t.Helper()
	p, err := s.FindProductByID(t.Context(), id)
	if err != nil {
		t.Fatalf("FindProductByID(%d): %v", id, err)
	}
	if p == nil {
		t.Fatalf("FindProductByID(%d): got nil, nil", id)
	}
	return *p
}

func findLicense(t *testing.T, s licensor.Store, id int64) licensor.License {
	t.Helper()
	l, err := s.FindLicenseByID(t.Context(), id)
	if err != nil {
		t.Fatalf("FindLicenseByID(%d): %v", id, err)
	}
	if l == nil {
		t.Fatalf("FindLicenseByID(%d): got nil, nil", id)
	}
	return *l
}

// wantLicenseGone checks that license id reads as not found, by id and in lists.
func wantLicenseGone(t *testing.T, s licensor.Store, id int64) {
	t.Helper()
	_, err := s.FindLicenseByID(t.Context(), id)
	wantCode(t, err, licensor.CodeLicenseNotFound)
	for _, l := range allLicenses(t, s, licensor.LicenseFilter{}, t0) {
		if l.ID == id {
			t.Errorf("FindLicenses: deleted license %d is still listed", id)
		}
	}
}

// wantProductGone checks that product id reads as not found, by id and in lists.
func wantProductGone(t *testing.T, s licensor.Store, id int64) {
	t.Helper()
	_, err := s.FindProductByID(t.Context(), id)
	wantCode(t, err, licensor.CodeProductNotFound)
	for _, p := range allProducts(t, s, licensor.ProductFilter{}) {
		if p.ID == id {
			t.Errorf("FindProducts: deleted product %d is still listed", id)
		}
	}
}

// allLicenses lists every live license matching f, by id, in one page.
func allLicenses(t *testing.T, s licensor.Store, f licensor.LicenseFilter, now int64) []licensor.License {
	t.Helper()
	page, err := s.FindLicenses(t.Context(), licensor.LicenseQuery{Filter: f, Limit: licensor.MaxPageSize, Now: now})
	if err != nil {
		t.Fatalf("FindLicenses(%s): %v", showQuery(f), err)
	}
	if page.Next != nil {
		t.Fatalf("FindLicenses(%s): got a next page with fewer than %d licenses in the store", showQuery(f), licensor.MaxPageSize)
	}
	return page.Licenses
}

// allProducts lists every live product matching f, by id, in one page.
func allProducts(t *testing.T, s licensor.Store, f licensor.ProductFilter) []licensor.Product {
	t.Helper()
	page, err := s.FindProducts(t.Context(), licensor.ProductQuery{Filter: f, Limit: licensor.MaxPageSize})
	if err != nil {
		t.Fatalf("FindProducts(%s): %v", showQuery(f), err)
	}
	if page.Next != nil {
		t.Fatalf("FindProducts(%s): got a next page with fewer than %d products in the store", showQuery(f), licensor.MaxPageSize)
	}
	return page.Products
}

func licenseIDs(ls []licensor.License) []int64 {
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return ids
}

func productIDs(ps []licensor.Product) []int64 {
	ids := make([]int64, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

// sortedIDs returns a sorted copy of ids.
func sortedIDs(ids []int64) []int64 {
	c := slices.Clone(ids)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c
}

// normProduct returns p with Channels reduced to the services that grant
// something, so that an absent service and an empty list compare equal.
func normProduct(p licensor.Product) licensor.Product {
	ch := licensor.Channels{}
	for s, ids := range p.Channels {
		if len(ids) > 0 {
			ch[s] = ids
		}
	}
	p.Channels = ch
	return p
}

// wantProduct fails the test unless got and want are the same product.
func wantProduct(t *testing.T, what string, got, want licensor.Product) {
	t.Helper()
	if g, w := normProduct(got), normProduct(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(g), show(w))
	}
}

// wantLicense fails the test unless got and want are the same license.
func wantLicense(t *testing.T, what string, got, want licensor.License) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

// wantLicenses fails the test unless got and want are the same licenses in
// the same order.
func wantLicenses(t *testing.T, what string, got, want []licensor.License) {
	t.Helper()
	if len(got) == len(want) && (len(got) == 0 || reflect.DeepEqual(got, want)) {
		return
	}
	if slices.Equal(licenseIDs(got), licenseIDs(want)) {
		t.Fatalf("%s: the same ids %v but other values:\n got %s\nwant %s", what, licenseIDs(got), show(got), show(want))
	}
	t.Fatalf("%s: got ids %v, want %v", what, licenseIDs(got), licenseIDs(want))
}

// NewProduct creates a product titled "p" at time 1 in s, for the engines'
// own tests.
func NewProduct(t testing.TB, s licensor.Store) licensor.Product {
	t.Helper()
	p := licensor.NewProduct("p")
	if err := s.CreateProduct(t.Context(), &p, licensor.Change{Time: 1}); err != nil {
		t.Fatal(err)
	}
	return p
}

// NewUsersLicenses creates a product and n licenses of it spread over
// users users (user-0000000, user-0000001, ...; see UserID), 1,000 a
// batch, for the engines' own tests and benchmarks of the per-user reads.
func NewUsersLicenses(t testing.TB, s licensor.Store, n, users int) licensor.Product {
	t.Helper()
	p := NewProduct(t, s)
	for i := 0; i < n; {
		drafts := make([]licensor.LicenseDraft, min(1000, n-i))
		for j := range drafts {
			drafts[j] = licensor.LicenseDraft{UserID: UserID(i % users), ProductID: p.ID, OrderID: new(fmt.Sprint("o", i))}
			i++
		}
		if _, err := s.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 2}); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// UserID is the id of user i of NewUsersLicenses.
func UserID(i int) string { return fmt.Sprintf("user-%07d", i) }

// Migrator is a store that can migrate itself: both engines' *DB.
type Migrator interface {
	licensor.Store
	Migrate(ctx context.Context) error
}

// Migrated opens a store with open, closes it when the test ends and
// migrates it.
func Migrated[S Migrator](t testing.TB, open func(ctx context.Context) (S, error)) S {
	t.Helper()
	ctx := context.Background()
	db, err := open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
