package storetest

import (
	"math"
	"slices"
	"testing"

	"github.com/licensor/licensor"
)

// licenseFixture creates a varied set of licenses, with ties on every sort
// field and null stop and expiry dates, plus licenses that were deleted
// (directly and by a product cascade). It returns the live licenses as
// created (stored statuses), the two products and the query time t0.
func licenseFixture(t *testing.T, s licensor.Store) (live []licensor.License, pa, pb licensor.Product) {
	t.Helper()
	pa = licensor.NewProduct("A")
	pa.LicensePeriod, pa.PriceAmount, pa.PriceCurrency, pa.Recurring = "P30D", new(int64(500)), new("EUR"), true
	pa = createProduct(t, s, pa, t0-30*day)
	pb = createProduct(t, s, licensor.NewProduct("B"), t0-30*day)
	pc := createProduct(t, s, licensor.NewProduct("C"), t0-30*day)

	b1 := createLicenses(t, s, t0-2*day,
		licensor.LicenseDraft{UserID: "u1", ProductID: pa.ID, StartDate: new(t0 - 10*day), OrderID: new("ord-1")},
		licensor.LicenseDraft{UserID: "u1", ProductID: pb.ID, StartDate: new(t0 - 10*day), Recurring: new(true)},
		licensor.LicenseDraft{UserID: "u2", ProductID: pa.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 - 5*day)},
		licensor.LicenseDraft{UserID: "u2", ProductID: pb.ID, StartDate: new(t0 - 20*day), StopDate: new(t0), PurchaseTimestamp: new(t0 - 21*day)},
	)
	b2 := createLicenses(t, s, t0-2*day,
		licensor.LicenseDraft{UserID: "u3", ProductID: pb.ID, StartDate: new(t0 - 5*day), ExpiryDate: new(t0 + 100*day), Status: new(licensor.StatusSuspended)},
		licensor.LicenseDraft{UserID: "u3", ProductID: pa.ID, StartDate: new(t0 + day), Status: new(licensor.StatusProcessing), OrderID: new("ord-6")},
		licensor.LicenseDraft{UserID: "u1", ProductID: pb.ID, StartDate: new(t0 - 30*day), StopDate: new(t0 + 1), Status: new(licensor.StatusExpired)},
		licensor.LicenseDraft{UserID: "gone", ProductID: pa.ID, OrderID: new("ord-del")},
		licensor.LicenseDraft{UserID: "u1", ProductID: pc.ID, OrderID: new("ord-cascade")},
	)
	b3 := createLicenses(t, s, t0-day,
		licensor.LicenseDraft{UserID: "u4", ProductID: pa.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 + 1), ExpiryDate: new(t0 + 5*day)},
		licensor.LicenseDraft{UserID: "u2", ProductID: pb.ID, StartDate: new(t0 - day), Status: new(licensor.StatusSuspendedAdmin), Recurring: new(false)},
		licensor.LicenseDraft{UserID: "u4", ProductID: pb.ID, StartDate: new(t0 - 10*day), OrderID: new("ord-10"), PriceAmount: new(int64(100)), PriceCurrency: new("USD")},
		licensor.LicenseDraft{UserID: "u5", ProductID: pa.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 + 20*day), PurchaseTimestamp: new(t0 - 10*day)},
	)
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{b2[3].ID}, false, at(t0-day)); err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	if err := s.DeleteProduct(t.Context(), pc.ID, licensor.DeleteProductOptions{Cascade: true}, at(t0-day)); err != nil {
		t.Fatalf("DeleteProduct: %v", err)
	}
	live = slices.Concat(b1, b2[:3], b3)
	return live, pa, pb
}

// licenseFilters are filters of every kind, alone and combined.
func licenseFilters(pa, pb licensor.Product) []licensor.LicenseFilter {
	statuses := func(s ...licensor.Status) []licensor.Status { return s }
	return []licensor.LicenseFilter{
		{},
		{UserID: new("u1")},
		{UserID: new("u2")},
		{UserID: new("gone")},
		{UserID: new("nobody")},
		{UserID: new("U1")},
		{ProductID: new(pa.ID)},
		{ProductID: new(pb.ID)},
		{ProductID: new(missingID)},
		{OrderID: new("ord-1")},
		{OrderID: new("ord-6")},
		{OrderID: new("ord-del")},
		{OrderID: new("ord-cascade")},
		{OrderID: new("ord")},
		{Statuses: statuses(licensor.StatusActive)},
		{Statuses: statuses(licensor.StatusExpired)},
		{Statuses: statuses(licensor.StatusSuspended)},
		{Statuses: statuses(licensor.StatusSuspendedAdmin)},
		{Statuses: statuses(licensor.StatusProcessing)},
		{Statuses: statuses(licensor.StatusCheckInvalid)},
		{Statuses: statuses(licensor.StatusActive, licensor.StatusExpired)},
		{Statuses: statuses(licensor.StatusExpired, licensor.StatusSuspended, licensor.StatusSuspendedAdmin)},
		{Statuses: statuses(licensor.StatusActive, licensor.StatusProcessing)},
		{Recurring: new(true)},
		{Recurring: new(false)},
		{UserID: new("u2"), Statuses: statuses(licensor.StatusExpired)},
		{UserID: new("u1"), ProductID: new(pb.ID)},
		{ProductID: new(pb.ID), Recurring: new(true)},
		{ProductID: new(pa.ID), Statuses: statuses(licensor.StatusActive), Recurring: new(true)},
		{UserID: new("u1"), Ranges: []licensor.Range{{Field: "start_date", Op: "lt", Value: t0 - 5*day}}},
		{Ranges: []licensor.Range{{Field: "start_date", Op: "gte", Value: t0 - 10*day}, {Field: "start_date", Op: "lt", Value: t0}}},
		{Ranges: []licensor.Range{{Field: "stop_date", Op: "gt", Value: t0}, {Field: "created_at", Op: "lte", Value: t0 - 2*day}}},
		{Statuses: statuses(licensor.StatusActive), Ranges: []licensor.Range{{Field: "expiry_date", Op: "gte", Value: t0 + 5*day}}},
	}
}

func testFindLicensesEmpty(t *testing.T, s licensor.Store) {
	page, err := s.FindLicenses(t.Context(), licensor.LicenseQuery{Limit: 10, Count: true, Now: t0})
	if err != nil {
		t.Fatalf("FindLicenses: %v", err)
	}
	if len(page.Licenses) != 0 || page.Next != nil {
		t.Errorf("FindLicenses on an empty store: got %d licenses and Next %v, want none and nil", len(page.Licenses), page.Next)
	}
	checkTotal(t, "FindLicenses on an empty store", true, page.Total, 0)
}

func testFindLicensesFilters(t *testing.T, s licensor.Store) {
	live, pa, pb := licenseFixture(t, s)
	for _, f := range licenseFilters(pa, pb) {
		want := expectLicenses(live, f, licensor.SortOrder{}, t0)
		wantLicenses(t, "FindLicenses "+showQuery(f), allLicenses(t, s, f, t0), want)
	}
}

func testFindLicensesRanges(t *testing.T, s licensor.Store) {
	live, _, _ := licenseFixture(t, s)
	for _, field := range licensor.LicenseRangeFields() {
		// Every value the field takes, and one on either side of them all.
		values := []int64{math.MinInt64, math.MaxInt64}
		for _, l := range live {
			if v, ok := rangeValue(l, field); ok {
				values = append(values, v-1, v, v+1)
			}
		}
		slices.Sort(values)
		values = slices.Compact(values)
		for _, op := range licensor.RangeOps() {
			for _, v := range values {
				f := licensor.LicenseFilter{Ranges: []licensor.Range{{Field: field, Op: op, Value: v}}}
				want := expectLicenses(live, f, licensor.SortOrder{}, t0)
				got := allLicenses(t, s, f, t0)
				if !slices.Equal(licenseIDs(got), licenseIDs(want)) {
					t.Errorf("FindLicenses(%s %s %d): got ids %v, want %v", field, op, v, licenseIDs(got), licenseIDs(want))
				}
			}
		}
	}
}

func testFindLicensesNullNeverInRange(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Forever"), t0)
	ls := createLicenses(t, s, t0,
		draft("never-ends", p.ID),
		licensor.LicenseDraft{UserID: "ends", ProductID: p.ID, StopDate: new(t0 + day)},
	)
	ends := []int64{ls[1].ID}
	for _, field := range []string{"stop_date", "expiry_date"} {
		for _, r := range []licensor.Range{
			{Field: field, Op: "gt", Value: 0},
			{Field: field, Op: "gte", Value: math.MinInt64},
			{Field: field, Op: "lt", Value: math.MaxInt64},
			{Field: field, Op: "lte", Value: math.MaxInt64},
			{Field: field, Op: "gte", Value: t0 + day},
		} {
			got := allLicenses(t, s, licensor.LicenseFilter{Ranges: []licensor.Range{r}}, t0)
			if !slices.Equal(licenseIDs(got), ends) {
				t.Errorf("FindLicenses(%s %s %d): got ids %v, want %v (a null date matches no range)", r.Field, r.Op, r.Value, licenseIDs(got), ends)
			}
		}
	}
}

func testFindLicensesEffectiveStatus(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Plain"), t0-30*day)
	ls := createLicenses(t, s, t0-20*day,
		licensor.LicenseDraft{UserID: "a", ProductID: p.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 - 1)},                                            // ended
		licensor.LicenseDraft{UserID: "b", ProductID: p.ID, StartDate: new(t0 - 10*day), StopDate: new(t0)},                                                // ends exactly now
		licensor.LicenseDraft{UserID: "c", ProductID: p.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 + 1)},                                            // still running
		licensor.LicenseDraft{UserID: "d", ProductID: p.ID, StartDate: new(t0 - 10*day)},                                                                   // never ends
		licensor.LicenseDraft{UserID: "e", ProductID: p.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 + 100*day), Status: new(licensor.StatusExpired)}, // stored EXPIRED
		licensor.LicenseDraft{UserID: "f", ProductID: p.ID, StartDate: new(t0 - 10*day), StopDate: new(t0 - 1), Status: new(licensor.StatusSuspended)},     // not ACTIVE
	)
	a, b, c, d, e, f := ls[0].ID, ls[1].ID, ls[2].ID, ls[3].ID, ls[4].ID, ls[5].ID

	// What each read reports at t0.
	wantStatus := map[int64]licensor.Status{
		a: licensor.StatusExpired, b: licensor.StatusExpired, c: licensor.StatusActive,
		d: licensor.StatusActive, e: licensor.StatusExpired, f: licensor.StatusSuspended,
	}
	for _, l := range allLicenses(t, s, licensor.LicenseFilter{}, t0) {
		if l.Status != wantStatus[l.ID] {
			t.Errorf("FindLicenses at now: license %s (stop %s): Status got %s, want %s", l.UserID, show(l.StopDate), l.Status, wantStatus[l.ID])
		}
	}
	cases := []struct {
		statuses []licensor.Status
		now      int64
		want     []int64
	}{
		{[]licensor.Status{licensor.StatusActive}, t0, []int64{c, d}},
		{[]licensor.Status{licensor.StatusExpired}, t0, []int64{a, b, e}},
		{[]licensor.Status{licensor.StatusSuspended}, t0, []int64{f}},
		{[]licensor.Status{licensor.StatusActive, licensor.StatusExpired}, t0, []int64{a, b, c, d, e}},
		// A moment earlier, a and b were still running.
		{[]licensor.Status{licensor.StatusActive}, t0 - 1, []int64{b, c, d}},
		{[]licensor.Status{licensor.StatusActive}, t0 - day, []int64{a, b, c, d}},
		{[]licensor.Status{licensor.StatusExpired}, t0 - day, []int64{e}},
		// Much later, only the license that never ends is still ACTIVE.
		{[]licensor.Status{licensor.StatusActive}, t0 + 1000*day, []int64{d}},
		{[]licensor.Status{licensor.StatusExpired}, t0 + 1000*day, []int64{a, b, c, e}},
	}
	for _, tc := range cases {
		got := allLicenses(t, s, licensor.LicenseFilter{Statuses: tc.statuses}, tc.now)
		if !slices.Equal(licenseIDs(got), tc.want) {
			t.Errorf("FindLicenses(statuses %v, now t0%+d): got ids %v, want %v", tc.statuses, tc.now-t0, licenseIDs(got), tc.want)
		}
		for _, l := range got {
			if want := ls[slices.Index(licenseIDs(ls), l.ID)].EffectiveStatus(tc.now); l.Status != want {
				t.Errorf("FindLicenses(now t0%+d): license %s Status got %s, want %s", tc.now-t0, l.UserID, l.Status, want)
			}
		}
	}
	// FindLicenseByID has no "now": it reports the stored status, and the
	// reader applies EffectiveStatus.
	if got := findLicense(t, s, a); got.Status != licensor.StatusActive {
		t.Errorf("FindLicenseByID of an ended ACTIVE license: Status got %s, want the stored %s", got.Status, licensor.StatusActive)
	}
}

// licenseSorts is every license sort order.
func licenseSorts() []licensor.SortOrder {
	var out []licensor.SortOrder
	for _, f := range licensor.LicenseSortFields() {
		out = append(out, licensor.SortOrder{Field: f}, licensor.SortOrder{Field: f, Desc: true})
	}
	return append(out, licensor.SortOrder{})
}

func testFindLicensesSort(t *testing.T, s licensor.Store) {
	live, pa, _ := licenseFixture(t, s)
	filters := []licensor.LicenseFilter{
		{},
		{Statuses: []licensor.Status{licensor.StatusActive}},
		{ProductID: new(pa.ID)},
	}
	for _, f := range filters {
		for _, o := range licenseSorts() {
			want := expectLicenses(live, f, o, t0)
			page, err := s.FindLicenses(t.Context(), licensor.LicenseQuery{Filter: f, Sort: o, Limit: licensor.MaxPageSize, Now: t0})
			if err != nil {
				t.Fatalf("FindLicenses(sort %s): %v", showQuery(o), err)
			}
			if page.Next != nil {
				t.Errorf("FindLicenses(sort %s): got a Next cursor on the only page", showQuery(o))
			}
			wantLicenses(t, "FindLicenses sort "+showQuery(o)+" filter "+showQuery(f), page.Licenses, want)
		}
	}
}

func testFindLicensesNullStopDateSortsLast(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Plain"), t0)
	ls := createLicenses(t, s, t0,
		licensor.LicenseDraft{UserID: "x", ProductID: p.ID, StopDate: new(t0 + 2*day)},
		draft("y", p.ID),
		licensor.LicenseDraft{UserID: "z", ProductID: p.ID, StopDate: new(t0 + day)},
		draft("w", p.ID),
	)
	x, y, z, w := ls[0].ID, ls[1].ID, ls[2].ID, ls[3].ID
	for _, field := range []string{"stop_date", "expiry_date"} {
		for _, tc := range []struct {
			desc bool
			want []int64
		}{
			{false, []int64{z, x, y, w}},
			{true, []int64{w, y, x, z}},
		} {
			for limit := 1; limit <= 4; limit++ {
				q := licensor.LicenseQuery{Sort: licensor.SortOrder{Field: field, Desc: tc.desc}, Limit: limit, Now: t0}
				got := walkLicenses(t, s, q, 0)
				if !slices.Equal(licenseIDs(got), tc.want) {
					t.Errorf("walk of %s: got ids %v, want %v (a null date sorts as never)", showQuery(q), licenseIDs(got), tc.want)
				}
			}
		}
	}
}

func testFindLicensesKeysetWalk(t *testing.T, s licensor.Store) {
	live, _, pb := licenseFixture(t, s)
	filters := []licensor.LicenseFilter{
		{},
		{ProductID: new(pb.ID)},
		{Statuses: []licensor.Status{licensor.StatusExpired, licensor.StatusActive}},
	}
	for _, f := range filters {
		for _, o := range licenseSorts() {
			want := expectLicenses(live, f, o, t0)
			for limit := 1; limit <= 3; limit++ {
				q := licensor.LicenseQuery{Filter: f, Sort: o, Limit: limit, Now: t0, Count: limit == 2}
				got := walkLicenses(t, s, q, len(want))
				wantLicenses(t, "walk of "+showQuery(q), got, want)
			}
		}
	}
}

func testFindLicensesCount(t *testing.T, s licensor.Store) {
	live, pa, pb := licenseFixture(t, s)
	for _, f := range licenseFilters(pa, pb) {
		want := len(expectLicenses(live, f, licensor.SortOrder{}, t0))
		q := licensor.LicenseQuery{Filter: f, Limit: 1, Count: true, Now: t0}
		page, err := s.FindLicenses(t.Context(), q)
		if err != nil {
			t.Fatalf("FindLicenses: %v", err)
		}
		checkTotal(t, "FindLicenses "+showQuery(q), true, page.Total, want)
		if page.Next != nil {
			// Later pages still count every match.
			q.After = page.Next
			page, err = s.FindLicenses(t.Context(), q)
			if err != nil {
				t.Fatalf("FindLicenses: %v", err)
			}
			checkTotal(t, "FindLicenses second page "+showQuery(q), true, page.Total, want)
		}
		q.Count, q.After = false, nil
		page, err = s.FindLicenses(t.Context(), q)
		if err != nil {
			t.Fatalf("FindLicenses: %v", err)
		}
		checkTotal(t, "FindLicenses "+showQuery(q), false, page.Total, want)
	}
}
