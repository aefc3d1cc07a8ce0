package storetest

import (
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// fullProduct is a product with every field set to a non-default value.
func fullProduct() licensor.Product {
	return licensor.Product{
		Title:         "Fußball Über Alles – 日本",
		Description:   "Every match, live and on demand.\nSecond line with \"quotes\" and 'apostrophes'.",
		Type:          "SVOD",
		IsPremium:     true,
		IsBuyable:     false,
		IsVisible:     false,
		Recurring:     true,
		PriceAmount:   new(int64(1299)),
		PriceCurrency: new("EUR"),
		LicensePeriod: "P1Y2M3DT4H",
		Channels: licensor.Channels{
			licensor.ServiceLive:      {"ch-3", "ch-1", "ch-2"},
			licensor.ServiceCatchup:   {"ch-1"},
			licensor.ServiceStartover: {"a.b_c:d-9"},
		},
	}
}

func testCreateProductSetsIDTimesVersion(t *testing.T, s licensor.Store) {
	p := licensor.NewProduct("Sport")
	if err := s.CreateProduct(t.Context(), &p, at(t0)); err != nil {
		t.Fatalf("CreateProduct: %v", err)
	}
	if p.ID <= 0 {
		t.Errorf("ID: got %d, want > 0", p.ID)
	}
	if p.CreatedAt != t0 {
		t.Errorf("CreatedAt: got %d, want %d (the Change time)", p.CreatedAt, t0)
	}
	if p.UpdatedAt != t0 {
		t.Errorf("UpdatedAt: got %d, want %d (the Change time)", p.UpdatedAt, t0)
	}
	if p.Version < 1 {
		t.Errorf("Version: got %d, want >= 1", p.Version)
	}
	q := createProduct(t, s, licensor.NewProduct("Sport"), t0+1)
	if q.ID <= 0 || q.ID == p.ID {
		t.Errorf("second product ID: got %d, want > 0 and not %d", q.ID, p.ID)
	}
	if q.CreatedAt != t0+1 {
		t.Errorf("second product CreatedAt: got %d, want %d", q.CreatedAt, t0+1)
	}
}

func testCreateProductRoundTrip(t *testing.T, s licensor.Store) {
	minimal := licensor.NewProduct("Basic")
	withPrice := licensor.NewProduct("Cheap")
	withPrice.PriceAmount, withPrice.PriceCurrency = new(int64(0)), new("JPY")
	withPrice.LicensePeriod = "P30D"
	for _, in := range []licensor.Product{fullProduct(), minimal, withPrice} {
		created := createProduct(t, s, in, t0)
		want := in
		want.ID, want.CreatedAt, want.UpdatedAt, want.Version = created.ID, t0, t0, created.Version
		wantProduct(t, "CreateProduct result", created, want)
		wantProduct(t, "FindProductByID", findProduct(t, s, created.ID), want)
		var listed []licensor.Product
		for _, p := range allProducts(t, s, licensor.ProductFilter{}) {
			if p.ID == created.ID {
				listed = append(listed, p)
			}
		}
		if len(listed) != 1 {
			t.Fatalf("FindProducts: got product %d %d times, want once", created.ID, len(listed))
		}
		wantProduct(t, "FindProducts", listed[0], want)
	}
}

func testFindProductByIDNotFound(t *testing.T, s licensor.Store) {
	createProduct(t, s, licensor.NewProduct("Sport"), t0)
	for _, id := range []int64{missingID, 0, -1} {
		p, err := s.FindProductByID(t.Context(), id)
		wantCode(t, err, licensor.CodeProductNotFound)
		if p != nil {
			t.Errorf("FindProductByID(%d): got %s with the error, want nil", id, show(p))
		}
	}
}

// productFixture creates a varied set of products (and one deleted one) and
// returns the live ones.
func productFixture(t *testing.T, s licensor.Store) []licensor.Product {
	t.Helper()
	type spec struct {
		title            string
		typ              string
		premium, buyable bool
		visible          bool
		created          int64
	}
	specs := []spec{
		{"Sport Premium", "SVOD", true, true, true, t0 - 3*day},
		{"sport basic", "CHANNEL_GROUP", false, true, true, t0 - 3*day},
		{"Überraschung", "TVOD", false, false, true, t0 - 2*day},
		{"MÜNCHEN live", "CHANNEL_GROUP", false, true, false, t0 - 2*day},
		{"50% Rabatt", "SVOD", true, true, true, t0 - day},
		{"500 Rabatt", "SVOD", false, true, true, t0 - day},
		{"under_score", "CATEGORY", false, false, false, t0},
		{"underXscore", "CATEGORY", true, true, true, t0},
		{"Sport", "CHANNEL_GROUP", false, true, true, t0},
		{"Sport", "SVOD", true, false, true, t0 - 3*day},
		{"apple", "CHANNEL_GROUP", false, true, true, t0 - 2*day},
		{"Zebra", "SVOD", false, true, false, t0 - day},
	}
	var live []licensor.Product
	for i, sp := range specs {
		p := licensor.NewProduct(sp.title)
		p.Type, p.IsPremium, p.IsBuyable, p.IsVisible = sp.typ, sp.premium, sp.buyable, sp.visible
		live = append(live, createProduct(t, s, p, sp.created))
		if i == 4 {
			gone := createProduct(t, s, licensor.NewProduct("Sport deleted"), t0-2*day)
			if err := s.DeleteProduct(t.Context(), gone.ID, licensor.DeleteProductOptions{}, at(t0)); err != nil {
				t.Fatalf("DeleteProduct: %v", err)
			}
		}
	}
	return live
}

func testFindProductsEmpty(t *testing.T, s licensor.Store) {
	page, err := s.FindProducts(t.Context(), licensor.ProductQuery{Limit: 10, Count: true})
	if err != nil {
		t.Fatalf("FindProducts: %v", err)
	}
	if len(page.Products) != 0 || page.Next != nil {
		t.Errorf("FindProducts on an empty store: got %d products and Next %v, want none and nil", len(page.Products), page.Next)
	}
	checkTotal(t, "FindProducts on an empty store", true, page.Total, 0)
}

func testFindProductsFilters(t *testing.T, s licensor.Store) {
	live := productFixture(t, s)
	filters := []licensor.ProductFilter{
		{},
		{Type: new("SVOD")},
		{Type: new("CATEGORY")},
		{Type: new("SEQUEL")},
		{IsPremium: new(true)},
		{IsPremium: new(false)},
		{IsBuyable: new(false)},
		{IsVisible: new(false)},
		{IsVisible: new(true)},
		{Type: new("SVOD"), IsPremium: new(true)},
		{Type: new("SVOD"), IsPremium: new(false), Title: new("rabatt")},
		{IsBuyable: new(true), IsVisible: new(true), Title: new("SPORT")},
	}
	for _, f := range filters {
		want := expectProducts(live, f, licensor.SortOrder{})
		got := allProducts(t, s, f)
		if !slices.Equal(productIDs(got), productIDs(want)) {
			t.Errorf("FindProducts(%s): got ids %v, want %v", showQuery(f), productIDs(got), productIDs(want))
		}
	}
}

func testFindProductsTitleFilter(t *testing.T, s licensor.Store) {
	live := productFixture(t, s)
	byTitle := func(titles ...string) []int64 {
		var ids []int64
		for _, p := range live {
			if slices.Contains(titles, p.Title) {
				ids = append(ids, p.ID)
			}
		}
		return ids
	}
	cases := []struct {
		q    string
		want []int64
	}{
		{"sport", byTitle("Sport Premium", "sport basic", "Sport")},
		{"SPORT", byTitle("Sport Premium", "sport basic", "Sport")},
		{"Sport P", byTitle("Sport Premium")},
		{"ü", byTitle("Überraschung", "MÜNCHEN live")},
		{"Ü", byTitle("Überraschung", "MÜNCHEN live")},
		{"über", byTitle("Überraschung")},
		{"münchen", byTitle("MÜNCHEN live")},
		{"50%", byTitle("50% Rabatt")},
		{"%", byTitle("50% Rabatt")},
		{"0 R", byTitle("500 Rabatt")},
		{"_", byTitle("under_score")},
		{"r_s", byTitle("under_score")},
		{"APPLE", byTitle("apple")},
		{"deleted", nil},
		{"nothing like it", nil},
	}
	for _, c := range cases {
		f := licensor.ProductFilter{Title: new(c.q)}
		// The model must agree with the hand-written expectation.
		if m := productIDs(expectProducts(live, f, licensor.SortOrder{})); !slices.Equal(m, c.want) {
			t.Fatalf("storetest model: title %q: got %v, want %v", c.q, m, c.want)
		}
		got := allProducts(t, s, f)
		if !slices.Equal(productIDs(got), c.want) {
			t.Errorf("FindProducts(title %q): got ids %v, want %v", c.q, productIDs(got), c.want)
		}
	}
}

// productSorts is every product sort order.
func productSorts() []licensor.SortOrder {
	var out []licensor.SortOrder
	for _, f := range licensor.ProductSortFields() {
		out = append(out, licensor.SortOrder{Field: f}, licensor.SortOrder{Field: f, Desc: true})
	}
	return append(out, licensor.SortOrder{})
}

func testFindProductsSort(t *testing.T, s licensor.Store) {
	live := productFixture(t, s)
	for _, o := range productSorts() {
		want := expectProducts(live, licensor.ProductFilter{}, o)
		page, err := s.FindProducts(t.Context(), licensor.ProductQuery{Sort: o, Limit: licensor.MaxPageSize})
		if err != nil {
			t.Fatalf("FindProducts(sort %s): %v", showQuery(o), err)
		}
		if got := productIDs(page.Products); !slices.Equal(got, productIDs(want)) {
			t.Errorf("FindProducts(sort %s): got ids %v, want %v", showQuery(o), got, productIDs(want))
		}
	}
	// Titles sort bytewise: upper case before lower case, "Ü" after "z".
	asc := expectProducts(live, licensor.ProductFilter{}, licensor.SortOrder{Field: "title"})
	var titles []string
	for _, p := range asc {
		titles = append(titles, p.Title)
	}
	wantTitles := []string{"50% Rabatt", "500 Rabatt", "MÜNCHEN live", "Sport", "Sport", "Sport Premium", "Zebra", "apple", "sport basic", "underXscore", "under_score", "Überraschung"}
	if !slices.Equal(titles, wantTitles) {
		t.Fatalf("storetest model: title order: got %q, want %q", titles, wantTitles)
	}
}

func testFindProductsKeysetWalk(t *testing.T, s licensor.Store) {
	live := productFixture(t, s)
	filters := []licensor.ProductFilter{{}, {Type: new("SVOD")}, {Title: new("sport")}}
	for _, f := range filters {
		for _, o := range productSorts() {
			want := expectProducts(live, f, o)
			for limit := 1; limit <= 4; limit++ {
				q := licensor.ProductQuery{Filter: f, Sort: o, Limit: limit, Count: limit%2 == 0}
				got := walkProducts(t, s, q, len(want))
				if !slices.Equal(productIDs(got), productIDs(want)) {
					t.Errorf("walk of %s: got ids %v, want %v", showQuery(q), productIDs(got), productIDs(want))
				}
			}
		}
	}
}

func testFindProductsCount(t *testing.T, s licensor.Store) {
	live := productFixture(t, s)
	for _, f := range []licensor.ProductFilter{{}, {Type: new("SVOD")}, {Title: new("ü")}, {Type: new("SEQUEL")}} {
		want := len(expectProducts(live, f, licensor.SortOrder{}))
		page, err := s.FindProducts(t.Context(), licensor.ProductQuery{Filter: f, Limit: 2, Count: true})
		if err != nil {
			t.Fatalf("FindProducts: %v", err)
		}
		checkTotal(t, "FindProducts "+showQuery(f), true, page.Total, want)
		page, err = s.FindProducts(t.Context(), licensor.ProductQuery{Filter: f, Limit: 2})
		if err != nil {
			t.Fatalf("FindProducts: %v", err)
		}
		checkTotal(t, "FindProducts without Count "+showQuery(f), false, page.Total, want)
	}
}

func testUpdateProductPartial(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, fullProduct(), t0)
	got, err := s.UpdateProduct(t.Context(), before.ID, licensor.ProductPatch{Title: new("Renamed")}, "", at(t0+day))
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	if got == nil {
		t.Fatal("UpdateProduct: got nil product")
	}
	want := before
	want.Title = "Renamed"
	want.UpdatedAt = t0 + day
	want.Version = before.Version + 1
	wantProduct(t, "UpdateProduct result", *got, want)
	wantProduct(t, "FindProductByID after update", findProduct(t, s, before.ID), want)
	if got.ETag() == before.ETag() {
		t.Errorf("ETag: got %s before and after the update, want a change", got.ETag())
	}
}

func testUpdateProductAllFields(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, licensor.NewProduct("Basic"), t0)
	patch := licensor.ProductPatch{
		Title:         new("Gold"),
		Description:   new("All of it"),
		Type:          new("SERIES_GROUP"),
		IsPremium:     new(true),
		IsBuyable:     new(false),
		IsVisible:     new(false),
		Recurring:     new(true),
		PriceAmount:   new(new(int64(4999))),
		PriceCurrency: new(new("BHD")),
		LicensePeriod: new("PT48H"),
		Channels: licensor.Channels{
			licensor.ServiceNPVR:      {"n1", "n0"},
			licensor.ServiceStartover: {"s9"},
		},
	}
	got, err := s.UpdateProduct(t.Context(), before.ID, patch, before.ETag(), at(t0+5))
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	want := licensor.Product{
		ID: before.ID, Title: "Gold", Description: "All of it", Type: "SERIES_GROUP",
		IsPremium: true, IsBuyable: false, IsVisible: false, Recurring: true,
		PriceAmount: new(int64(4999)), PriceCurrency: new("BHD"), LicensePeriod: "PT48H",
		Channels:  licensor.Channels{licensor.ServiceNPVR: {"n1", "n0"}, licensor.ServiceStartover: {"s9"}},
		CreatedAt: t0, UpdatedAt: t0 + 5, Version: before.Version + 1,
	}
	wantProduct(t, "UpdateProduct result", *got, want)
	wantProduct(t, "FindProductByID after update", findProduct(t, s, before.ID), want)

	// A second update counts again.
	got, err = s.UpdateProduct(t.Context(), before.ID, licensor.ProductPatch{IsPremium: new(false)}, got.ETag(), at(t0+6))
	if err != nil {
		t.Fatalf("second UpdateProduct: %v", err)
	}
	want.IsPremium, want.UpdatedAt, want.Version = false, t0+6, before.Version+2
	wantProduct(t, "second UpdateProduct result", *got, want)
	wantProduct(t, "FindProductByID after the second update", findProduct(t, s, before.ID), want)
}

func testUpdateProductClear(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, fullProduct(), t0)
	patch := licensor.ProductPatch{
		PriceAmount:   new((*int64)(nil)),
		PriceCurrency: new((*string)(nil)),
		LicensePeriod: new(""),
		Description:   new(""),
	}
	got, err := s.UpdateProduct(t.Context(), before.ID, patch, "", at(t0+1))
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	want := before
	want.PriceAmount, want.PriceCurrency, want.LicensePeriod, want.Description = nil, nil, "", ""
	want.UpdatedAt, want.Version = t0+1, before.Version+1
	wantProduct(t, "UpdateProduct result", *got, want)
	wantProduct(t, "FindProductByID after update", findProduct(t, s, before.ID), want)
}

func testUpdateProductChannels(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, fullProduct(), t0)
	patch := licensor.ProductPatch{Channels: licensor.Channels{
		licensor.ServiceLive:    {"new-2", "new-1"}, // replaced
		licensor.ServiceCatchup: {},                 // cleared
		licensor.ServiceNPVR:    {"rec"},            // added
		// startover absent: kept
	}}
	got, err := s.UpdateProduct(t.Context(), before.ID, patch, "", at(t0+1))
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	want := before
	want.Channels = licensor.Channels{
		licensor.ServiceLive:      {"new-2", "new-1"},
		licensor.ServiceNPVR:      {"rec"},
		licensor.ServiceStartover: {"a.b_c:d-9"},
	}
	want.UpdatedAt, want.Version = t0+1, before.Version+1
	wantProduct(t, "UpdateProduct result", *got, want)
	wantProduct(t, "FindProductByID after update", findProduct(t, s, before.ID), want)
}

func testUpdateProductIfMatch(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, fullProduct(), t0)
	got, err := s.UpdateProduct(t.Context(), before.ID, licensor.ProductPatch{Title: new("First")}, before.ETag(), at(t0+1))
	if err != nil {
		t.Fatalf("UpdateProduct with the current ETag: %v", err)
	}
	current := *got
	for _, stale := range []string{before.ETag(), `"999.999"`, "*x"} {
		p, err := s.UpdateProduct(t.Context(), before.ID, licensor.ProductPatch{Title: new("Second")}, stale, at(t0+2))
		wantCode(t, err, licensor.CodePreconditionFailed)
		if p != nil {
			t.Errorf("UpdateProduct with a stale ETag: got %s with the error, want nil", show(p))
		}
		wantProduct(t, "FindProductByID after a failed update", findProduct(t, s, before.ID), current)
	}
}

func testUpdateProductInvalid(t *testing.T, s licensor.Store) {
	before := createProduct(t, s, fullProduct(), t0)
	patches := []licensor.ProductPatch{
		{Title: new("")},
		{PriceCurrency: new((*string)(nil))}, // an amount without a currency
		{PriceCurrency: new(new("XYZ"))},
		{LicensePeriod: new("P1X")},
		{Type: new("lower")},
		{Title: new("Fine"), PriceAmount: new(new(int64(-1)))},
	}
	for _, patch := range patches {
		patched := patch.Apply(before)
		wantErr := patched.Validate()
		if wantErr == nil {
			t.Fatalf("storetest: patch %s should be invalid", show(patch))
		}
		_, err := s.UpdateProduct(t.Context(), before.ID, patch, "", at(t0+1))
		wantCode(t, err, licensor.ErrorCode(wantErr))
		wantProduct(t, "FindProductByID after an invalid update", findProduct(t, s, before.ID), before)
	}
}

func testUpdateProductNotFound(t *testing.T, s licensor.Store) {
	_, err := s.UpdateProduct(t.Context(), missingID, licensor.ProductPatch{Title: new("x")}, "", at(t0))
	wantCode(t, err, licensor.CodeProductNotFound)

	p := createProduct(t, s, licensor.NewProduct("Gone"), t0)
	if err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+1)); err != nil {
		t.Fatalf("DeleteProduct: %v", err)
	}
	_, err = s.UpdateProduct(t.Context(), p.ID, licensor.ProductPatch{Title: new("x")}, "", at(t0+2))
	wantCode(t, err, licensor.CodeProductNotFound)
	wantProductGone(t, s, p.ID)
}

func testUpdateProductKeepsLicenses(t *testing.T, s licensor.Store) {
	p := licensor.NewProduct("Monthly")
	p.PriceAmount, p.PriceCurrency, p.LicensePeriod, p.Recurring = new(int64(999)), new("EUR"), "P1M", true
	p = createProduct(t, s, p, t0)
	ls := createLicenses(t, s, t0+1, draft("u1", p.ID))
	patch := licensor.ProductPatch{
		PriceAmount: new(new(int64(1999))), PriceCurrency: new(new("USD")),
		LicensePeriod: new("P1Y"), Recurring: new(false),
	}
	if _, err := s.UpdateProduct(t.Context(), p.ID, patch, "", at(t0+2)); err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	got := findLicense(t, s, ls[0].ID)
	wantLicense(t, "license after its product's update", got, ls[0])
	if got.PriceAmount == nil || *got.PriceAmount != 999 || got.PriceCurrency == nil || *got.PriceCurrency != "EUR" {
		t.Errorf("license price: got %s %s, want 999 EUR", show(got.PriceAmount), show(got.PriceCurrency))
	}
	// New licenses take the new defaults.
	nl := createLicenses(t, s, t0+3, draft("u2", p.ID))[0]
	if nl.PriceAmount == nil || *nl.PriceAmount != 1999 || nl.PriceCurrency == nil || *nl.PriceCurrency != "USD" || nl.Recurring {
		t.Errorf("new license after the update: got price %s %s recurring %v, want 1999 USD false",
			show(nl.PriceAmount), show(nl.PriceCurrency), nl.Recurring)
	}
}

func testDeleteProduct(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, fullProduct(), t0)
	other := createProduct(t, s, licensor.NewProduct("Other"), t0)
	if err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+1)); err != nil {
		t.Fatalf("DeleteProduct: %v", err)
	}
	wantProductGone(t, s, p.ID)
	wantProduct(t, "the other product", findProduct(t, s, other.ID), other)
	err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+2))
	wantCode(t, err, licensor.CodeProductNotFound)
	page, err := s.FindProducts(t.Context(), licensor.ProductQuery{Limit: 10, Count: true})
	if err != nil {
		t.Fatalf("FindProducts: %v", err)
	}
	checkTotal(t, "FindProducts after a delete", true, page.Total, 1)
}

func testDeleteProductNotFound(t *testing.T, s licensor.Store) {
	err := s.DeleteProduct(t.Context(), missingID, licensor.DeleteProductOptions{}, at(t0))
	wantCode(t, err, licensor.CodeProductNotFound)
	err = s.DeleteProduct(t.Context(), missingID, licensor.DeleteProductOptions{Cascade: true, IfMatch: `"1.1"`}, at(t0))
	wantCode(t, err, licensor.CodeProductNotFound)
}

func testDeleteProductInUse(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Used"), t0)
	l := createLicenses(t, s, t0, draft("u1", p.ID))[0]
	err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+1))
	wantCode(t, err, licensor.CodeProductInUse)
	err = s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{IfMatch: p.ETag()}, at(t0+1))
	wantCode(t, err, licensor.CodeProductInUse)
	wantProduct(t, "product after a refused delete", findProduct(t, s, p.ID), p)
	wantLicense(t, "license after a refused product delete", findLicense(t, s, l.ID), l)
}

func testDeleteProductOnlyDeletedLicenses(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Formerly used"), t0)
	l := createLicenses(t, s, t0, draft("u1", p.ID))[0]
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{l.ID}, false, at(t0+1)); err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	if err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+2)); err != nil {
		t.Fatalf("DeleteProduct of a product whose licenses are all deleted: got %v, want nil", err)
	}
	wantProductGone(t, s, p.ID)
}

func testDeleteProductCascade(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Cascade"), t0)
	other := createProduct(t, s, licensor.NewProduct("Other"), t0)
	ls := createLicenses(t, s, t0,
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: new("order-1")},
		draft("u2", p.ID),
		draft("u1", other.ID),
	)
	if err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{Cascade: true}, at(t0+1)); err != nil {
		t.Fatalf("DeleteProduct with Cascade: %v", err)
	}
	wantProductGone(t, s, p.ID)
	wantLicenseGone(t, s, ls[0].ID)
	wantLicenseGone(t, s, ls[1].ID)
	wantLicense(t, "license of the other product", findLicense(t, s, ls[2].ID), ls[2])
	if got := licenseIDs(allLicenses(t, s, licensor.LicenseFilter{}, t0)); !slices.Equal(got, []int64{ls[2].ID}) {
		t.Errorf("FindLicenses after the cascade: got ids %v, want %v", got, []int64{ls[2].ID})
	}
	// The cascaded licenses are normal deletions: their order_id is free.
	createLicenses(t, s, t0+2, licensor.LicenseDraft{UserID: "u1", ProductID: other.ID, OrderID: new("order-1")})
}

func testDeleteProductIfMatch(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Guarded"), t0)
	updated, err := s.UpdateProduct(t.Context(), p.ID, licensor.ProductPatch{IsPremium: new(true)}, "", at(t0+1))
	if err != nil {
		t.Fatalf("UpdateProduct: %v", err)
	}
	err = s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{IfMatch: p.ETag()}, at(t0+2))
	wantCode(t, err, licensor.CodePreconditionFailed)
	wantProduct(t, "product after a refused delete", findProduct(t, s, p.ID), *updated)
	if err := s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{IfMatch: updated.ETag()}, at(t0+3)); err != nil {
		t.Fatalf("DeleteProduct with the current ETag: %v", err)
	}
	wantProductGone(t, s, p.ID)
}

func testUpdateProductConcurrentIfMatch(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Contested"), t0)
	const n = 10
	results := make([]*licensor.Product, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			patch := licensor.ProductPatch{Title: new("Writer " + strconv.Itoa(i))}
			results[i], errs[i] = s.UpdateProduct(t.Context(), p.ID, patch, p.ETag(), at(t0+1))
		})
	}
	close(start)
	wg.Wait()
	var winner *licensor.Product
	for i, err := range errs {
		if err == nil {
			if winner != nil {
				t.Fatalf("two updates with the same If-Match succeeded: %s and %s", show(winner), show(results[i]))
			}
			winner = results[i]
			continue
		}
		wantCode(t, err, licensor.CodePreconditionFailed)
	}
	if winner == nil {
		t.Fatal("no update succeeded, want exactly one")
	}
	if winner.Version != p.Version+1 {
		t.Errorf("Version: got %d, want %d", winner.Version, p.Version+1)
	}
	wantProduct(t, "FindProductByID after the race", findProduct(t, s, p.ID), *winner)
}
