package storetest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// unix is the unix time of a UTC date and clock.
func unix(y int, m time.Month, d, hh, mm, ss int) int64 {
	return time.Date(y, m, d, hh, mm, ss, 0, time.UTC).Unix()
}

// monthly is a priced, recurring product with a one-month license period.
func monthly() licensor.Product {
	p := licensor.NewProduct("Monthly")
	p.PriceAmount, p.PriceCurrency, p.Recurring, p.LicensePeriod = new(int64(1299)), new("EUR"), true, "P1M"
	return p
}

func testCreateLicensesDefaults(t *testing.T, s licensor.Store) {
	pm := createProduct(t, s, monthly(), t0-day)
	plain := createProduct(t, s, licensor.NewProduct("Plain"), t0-day)
	ls := createLicenses(t, s, t0, draft("user-1", pm.ID), draft("user.2_b:c-D", plain.ID))

	stop := unix(2025, time.April, 10, 12, 0, 0) // t0 + P1M
	want := []licensor.License{{
		ID: ls[0].ID, UserID: "user-1", ProductID: pm.ID, Status: licensor.StatusActive,
		StartDate: t0, StopDate: new(stop), Recurring: true, ExpiryDate: new(stop),
		PriceAmount: new(int64(1299)), PriceCurrency: new("EUR"), PurchaseTimestamp: t0, CreatedAt: t0,
		Renewal: licensor.RenewalPending,
	}, {
		ID: ls[1].ID, UserID: "user.2_b:c-D", ProductID: plain.ID, Status: licensor.StatusActive,
		StartDate: t0, PurchaseTimestamp: t0, CreatedAt: t0,
	}}
	for i := range want {
		if ls[i].ID <= 0 {
			t.Errorf("license %d: ID: got %d, want > 0", i, ls[i].ID)
		}
		wantLicense(t, fmt.Sprintf("CreateLicenses result %d", i), ls[i], want[i])
		wantLicense(t, fmt.Sprintf("FindLicenseByID of license %d", i), findLicense(t, s, ls[i].ID), want[i])
	}
	if ls[0].ID == ls[1].ID {
		t.Errorf("IDs: got %d twice, want distinct", ls[0].ID)
	}
}

func testCreateLicensesCalendarPeriod(t *testing.T, s licensor.Store) {
	cases := []struct {
		period      string
		start, stop int64
	}{
		{"P1M", unix(2024, time.January, 31, 10, 0, 0), unix(2024, time.February, 29, 10, 0, 0)},
		{"P1M", unix(2025, time.January, 31, 10, 0, 0), unix(2025, time.February, 28, 10, 0, 0)},
		{"P1Y", unix(2024, time.February, 29, 23, 59, 59), unix(2025, time.February, 28, 23, 59, 59)},
		{"P1M", unix(2024, time.December, 15, 0, 0, 0), unix(2025, time.January, 15, 0, 0, 0)},
		{"P30D", unix(2024, time.February, 15, 6, 0, 0), unix(2024, time.March, 16, 6, 0, 0)},
		{"PT48H", unix(2024, time.March, 30, 12, 0, 0), unix(2024, time.April, 1, 12, 0, 0)},
		{"P1DT12H", unix(2024, time.March, 30, 12, 0, 0), unix(2024, time.April, 1, 0, 0, 0)},
	}
	for _, c := range cases {
		p := licensor.NewProduct("Period " + c.period)
		p.LicensePeriod = c.period
		p = createProduct(t, s, p, c.start)
		// The default start is the Change time.
		l := createLicenses(t, s, c.start, draft("u1", p.ID))[0]
		if l.StartDate != c.start || !equalPtr(l.StopDate, &c.stop) || !equalPtr(l.ExpiryDate, &c.stop) {
			t.Errorf("%s from %s: got start %d stop %s expiry %s, want start %d stop and expiry %d (%s)",
				c.period, time.Unix(c.start, 0).UTC(), l.StartDate, show(l.StopDate), show(l.ExpiryDate),
				c.start, c.stop, time.Unix(c.stop, 0).UTC())
		}
		wantLicense(t, "FindLicenseByID", findLicense(t, s, l.ID), l)
	}
}

func testCreateLicensesExplicit(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0-day)
	orderID := strings.Repeat("o", licensor.MaxOrderIDLen-3) + "-Ü1"
	pay := strings.Repeat("p", licensor.MaxPaymentMethodLen)
	d := licensor.LicenseDraft{
		UserID:            "user-1",
		ProductID:         p.ID,
		Status:            new(licensor.StatusSuspended),
		StartDate:         new(t0 - 10*day),
		StopDate:          new(t0 + 100*day),
		OrderID:           new(orderID),
		Recurring:         new(false),
		ExpiryDate:        new(t0 + 90*day),
		PriceAmount:       new(int64(0)),
		PriceCurrency:     new("USD"),
		PurchaseTimestamp: new(t0 - 11*day),
		PaymentMethod:     new(pay),
	}
	l := createLicenses(t, s, t0, d)[0]
	want := licensor.License{
		ID: l.ID, UserID: "user-1", ProductID: p.ID, Status: licensor.StatusSuspended,
		StartDate: t0 - 10*day, StopDate: new(t0 + 100*day), OrderID: new(orderID),
		Recurring: false, ExpiryDate: new(t0 + 90*day),
		PriceAmount: new(int64(0)), PriceCurrency: new("USD"), PurchaseTimestamp: t0 - 11*day,
		PaymentMethod: new(pay), CreatedAt: t0,
	}
	wantLicense(t, "CreateLicenses result", l, want)
	wantLicense(t, "FindLicenseByID", findLicense(t, s, l.ID), want)

	// Each status round-trips.
	for i, st := range licensor.Statuses() {
		d := draft("u-"+strconv.Itoa(i), p.ID)
		d.Status = new(st)
		l := createLicenses(t, s, t0, d)[0]
		if got := findLicense(t, s, l.ID).Status; got != st || l.Status != st {
			t.Errorf("status: created %s, read back %s, want %s", l.Status, got, st)
		}
	}
}

func testCreateLicensesStartWithoutStop(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	start := unix(2024, time.January, 31, 8, 30, 0)
	d := draft("u1", p.ID)
	d.StartDate = new(start)
	l := createLicenses(t, s, t0, d)[0]
	stop := unix(2024, time.February, 29, 8, 30, 0)
	if l.StartDate != start || !equalPtr(l.StopDate, &stop) || !equalPtr(l.ExpiryDate, &stop) || l.PurchaseTimestamp != t0 {
		t.Errorf("got start %d stop %s expiry %s purchase %d, want start %d stop and expiry %d purchase %d",
			l.StartDate, show(l.StopDate), show(l.ExpiryDate), l.PurchaseTimestamp, start, stop, t0)
	}
	// An explicit stop without expiry: the expiry follows the stop.
	d = draft("u2", p.ID)
	d.StopDate = new(t0 + 5*day)
	l = createLicenses(t, s, t0, d)[0]
	if !equalPtr(l.StopDate, new(t0+5*day)) || !equalPtr(l.ExpiryDate, new(t0+5*day)) {
		t.Errorf("explicit stop: got stop %s expiry %s, want both %d", show(l.StopDate), show(l.ExpiryDate), t0+5*day)
	}
	wantLicense(t, "FindLicenseByID", findLicense(t, s, l.ID), l)
}

func testCreateLicensesStopNotAfterStart(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	for _, stop := range []int64{t0, t0 - 1, t0 - 100*day} {
		good := draft("u1", p.ID)
		bad := draft("u2", p.ID)
		bad.StartDate, bad.StopDate = new(t0), new(stop)
		_, err := s.CreateLicenses(t.Context(), []licensor.LicenseDraft{good, bad}, at(t0))
		errs := wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeInvalidAttribute})
		wantPointer(t, errs[1], "/attributes/stop_date")
	}
	if n := len(allLicenses(t, s, licensor.LicenseFilter{}, t0)); n != 0 {
		t.Errorf("licenses after failed batches: got %d, want 0", n)
	}
}

func testCreateLicensesUnknownProduct(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	drafts := []licensor.LicenseDraft{draft("u1", p.ID), draft("u1", missingID), draft("u2", p.ID), draft("u2", missingID)}
	_, err := s.CreateLicenses(t.Context(), drafts, at(t0))
	errs := wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeProductNotFound, 3: licensor.CodeProductNotFound})
	wantPointer(t, errs[1], "/relationships/product")
	wantPointer(t, errs[3], "/relationships/product")
	if n := len(allLicenses(t, s, licensor.LicenseFilter{}, t0)); n != 0 {
		t.Errorf("licenses after a failed batch: got %d, want 0", n)
	}
}

func testCreateLicensesDeletedProduct(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	gone := createProduct(t, s, licensor.NewProduct("Gone"), t0)
	if err := s.DeleteProduct(t.Context(), gone.ID, licensor.DeleteProductOptions{}, at(t0)); err != nil {
		t.Fatalf("DeleteProduct: %v", err)
	}
	_, err := s.CreateLicenses(t.Context(), []licensor.LicenseDraft{draft("u1", gone.ID), draft("u1", p.ID)}, at(t0+1))
	errs := wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeProductNotFound})
	wantPointer(t, errs[0], "/relationships/product")
	if n := len(allLicenses(t, s, licensor.LicenseFilter{}, t0)); n != 0 {
		t.Errorf("licenses after a failed batch: got %d, want 0", n)
	}
}

// wantOrderIDConflict checks that e is an order_id conflict naming the live
// license existing.
func wantOrderIDConflict(t *testing.T, e *licensor.Error, existing int64) {
	t.Helper()
	if e.Code != licensor.CodeOrderIDConflict {
		t.Fatalf("code: got %q (%v), want %q", e.Code, e, licensor.CodeOrderIDConflict)
	}
	wantPointer(t, e, "/attributes/order_id")
	got, ok := e.Meta["existing_id"].(string)
	if want := strconv.FormatInt(existing, 10); !ok || got != want {
		t.Errorf("Meta[existing_id]: got %#v, want %q", e.Meta["existing_id"], want)
	}
}

func testCreateLicensesOrderIDConflict(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	other := createProduct(t, s, licensor.NewProduct("Other"), t0)
	first := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: new("ord-1")})[0]

	// Conflicts with a live license, whatever the user or product; the batch writes nothing.
	_, err := s.CreateLicenses(t.Context(), []licensor.LicenseDraft{
		{UserID: "u2", ProductID: p.ID, OrderID: new("ord-2")},
		{UserID: "u3", ProductID: other.ID, OrderID: new("ord-1")},
	}, at(t0+1))
	errs := wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeOrderIDConflict})
	wantOrderIDConflict(t, errs[1], first.ID)
	if got := licenseIDs(allLicenses(t, s, licensor.LicenseFilter{}, t0)); !slices.Equal(got, []int64{first.ID}) {
		t.Errorf("licenses after a failed batch: got ids %v, want %v", got, []int64{first.ID})
	}
	// The order id of the failed batch is still free.
	createLicenses(t, s, t0+2, licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, OrderID: new("ord-2")})

	// Order ids are compared exactly.
	createLicenses(t, s, t0+3,
		licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, OrderID: new("ORD-1")},
		licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, OrderID: new("ord-1 ")},
	)
	// Licenses without an order id never conflict.
	createLicenses(t, s, t0+4, draft("u1", p.ID), draft("u1", p.ID))
	createLicenses(t, s, t0+4, draft("u1", p.ID))
}

func testCreateLicensesOrderIDReusable(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	first := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: new("ord-r")})[0]
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{first.ID}, false, at(t0+1)); err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	second := createLicenses(t, s, t0+2, licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, OrderID: new("ord-r")})[0]
	if second.ID == first.ID {
		t.Errorf("the new license reuses id %d of the deleted one", first.ID)
	}
	got := allLicenses(t, s, licensor.LicenseFilter{OrderID: new("ord-r")}, t0)
	if !slices.Equal(licenseIDs(got), []int64{second.ID}) {
		t.Errorf("FindLicenses(order_id): got ids %v, want %v", licenseIDs(got), []int64{second.ID})
	}
	// And the conflict now names the new holder.
	_, err := s.CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u3", ProductID: p.ID, OrderID: new("ord-r")}}, at(t0+3))
	errs := wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeOrderIDConflict})
	wantOrderIDConflict(t, errs[0], second.ID)
}

func testCreateLicensesBatchOrder(t *testing.T, s licensor.Store) {
	pm := createProduct(t, s, monthly(), t0)
	plain := createProduct(t, s, licensor.NewProduct("Plain"), t0)
	var drafts []licensor.LicenseDraft
	for i := range 20 {
		d := draft(fmt.Sprintf("user-%02d", i), []int64{pm.ID, plain.ID}[i%2])
		if i%3 == 0 {
			d.OrderID = new(fmt.Sprintf("order-%d", i))
		}
		drafts = append(drafts, d)
	}
	ls := createLicenses(t, s, t0, drafts...)
	seen := map[int64]bool{}
	for i, l := range ls {
		if l.UserID != drafts[i].UserID || l.ProductID != drafts[i].ProductID || !equalPtr(l.OrderID, drafts[i].OrderID) {
			t.Errorf("license %d: got user %s product %d order %s, want the draft's %s %d %s",
				i, l.UserID, l.ProductID, show(l.OrderID), drafts[i].UserID, drafts[i].ProductID, show(drafts[i].OrderID))
		}
		if l.ID <= 0 || seen[l.ID] {
			t.Errorf("license %d: ID %d is not positive or not distinct", i, l.ID)
		}
		seen[l.ID] = true
		wantLicense(t, fmt.Sprintf("FindLicenseByID of license %d", i), findLicense(t, s, l.ID), l)
	}
	got := allLicenses(t, s, licensor.LicenseFilter{}, t0)
	if !slices.Equal(licenseIDs(got), sortedIDs(licenseIDs(ls))) {
		t.Errorf("FindLicenses: got ids %v, want %v", licenseIDs(got), sortedIDs(licenseIDs(ls)))
	}
}

func testCreateLicensesBatchAtomic(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	gone := createProduct(t, s, licensor.NewProduct("Gone"), t0)
	if err := s.DeleteProduct(t.Context(), gone.ID, licensor.DeleteProductOptions{}, at(t0)); err != nil {
		t.Fatalf("DeleteProduct: %v", err)
	}
	held := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u0", ProductID: p.ID, OrderID: new("held")})[0]

	stopFirst := draft("u3", p.ID)
	stopFirst.StartDate, stopFirst.StopDate = new(t0), new(t0-1)
	taken := licensor.LicenseDraft{UserID: "u5", ProductID: p.ID, OrderID: new("held")}
	drafts := []licensor.LicenseDraft{
		{UserID: "u1", ProductID: p.ID, OrderID: new("new-1")}, // fine
		draft("u2", missingID),                                 // unknown product
		stopFirst,                                              // stop before start
		draft("u4", p.ID),                                      // fine
		taken,                                                  // order_id held by a live license
		draft("u6", gone.ID),                                   // deleted product
		{UserID: "u7", ProductID: p.ID, OrderID: new("new-7")}, // fine
	}
	_, err := s.CreateLicenses(t.Context(), drafts, at(t0+1))
	errs := wantItemErrors(t, err, map[int]licensor.Code{
		1: licensor.CodeProductNotFound,
		2: licensor.CodeInvalidAttribute,
		4: licensor.CodeOrderIDConflict,
		5: licensor.CodeProductNotFound,
	})
	wantPointer(t, errs[1], "/relationships/product")
	wantPointer(t, errs[2], "/attributes/stop_date")
	wantOrderIDConflict(t, errs[4], held.ID)
	wantPointer(t, errs[5], "/relationships/product")

	if got := licenseIDs(allLicenses(t, s, licensor.LicenseFilter{}, t0)); !slices.Equal(got, []int64{held.ID}) {
		t.Fatalf("licenses after a failed batch: got ids %v, want only %v", got, []int64{held.ID})
	}
	// The good items alone go through: nothing of them was left behind.
	createLicenses(t, s, t0+2, drafts[0], drafts[3], drafts[6])
}

func testCreateLicensesDuplicateInBatch(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	drafts := []licensor.LicenseDraft{
		{UserID: "u1", ProductID: p.ID, OrderID: new("a")},
		{UserID: "u2", ProductID: p.ID, OrderID: new("b")},
		{UserID: "u3", ProductID: p.ID, OrderID: new("a")},
		draft("u4", p.ID),
		{UserID: "u5", ProductID: p.ID, OrderID: new("b")},
		{UserID: "u6", ProductID: p.ID, OrderID: new("a")},
	}
	want := map[int]licensor.Code{}
	for _, e := range licensor.CheckBatchOrderIDs(drafts) {
		want[e.Index] = e.Err.Code
	}
	if len(want) != 3 {
		t.Fatalf("storetest: CheckBatchOrderIDs found %v, want items 2, 4 and 5", want)
	}
	_, err := s.CreateLicenses(t.Context(), drafts, at(t0))
	errs := wantItemErrors(t, err, want)
	for _, i := range []int{2, 4, 5} {
		if errs[i].Code != licensor.CodeDuplicateInBatch {
			t.Errorf("item %d: got %q, want %q", i, errs[i].Code, licensor.CodeDuplicateInBatch)
		}
		wantPointer(t, errs[i], "/attributes/order_id")
	}
	if n := len(allLicenses(t, s, licensor.LicenseFilter{}, t0)); n != 0 {
		t.Errorf("licenses after a failed batch: got %d, want 0", n)
	}
}

func testCreateLicensesMaxBatch(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	drafts := make([]licensor.LicenseDraft, licensor.DefaultMaxBatch)
	for i := range drafts {
		drafts[i] = licensor.LicenseDraft{
			UserID: "user-" + strconv.Itoa(i%37), ProductID: p.ID,
			OrderID: new("bulk-" + strconv.Itoa(i)), PaymentMethod: new("card"),
		}
	}
	ls := createLicenses(t, s, t0, drafts...)
	seen := map[int64]bool{}
	for i, l := range ls {
		if seen[l.ID] || l.ID <= 0 || !equalPtr(l.OrderID, drafts[i].OrderID) {
			t.Fatalf("license %d: got id %d order %s, want a new positive id and order %s", i, l.ID, show(l.OrderID), show(drafts[i].OrderID))
		}
		seen[l.ID] = true
	}
	page, err := s.FindLicenses(t.Context(), licensor.LicenseQuery{Limit: 10, Count: true, Now: t0})
	if err != nil {
		t.Fatalf("FindLicenses: %v", err)
	}
	checkTotal(t, "FindLicenses after a full batch", true, page.Total, len(drafts))
	// One conflicting item at the end fails all of it.
	drafts2 := make([]licensor.LicenseDraft, licensor.DefaultMaxBatch)
	for i := range drafts2 {
		drafts2[i] = licensor.LicenseDraft{UserID: "v", ProductID: p.ID, OrderID: new("bulk2-" + strconv.Itoa(i))}
	}
	drafts2[len(drafts2)-1].OrderID = new("bulk-500")
	_, err = s.CreateLicenses(t.Context(), drafts2, at(t0+1))
	errs := wantItemErrors(t, err, map[int]licensor.Code{len(drafts2) - 1: licensor.CodeOrderIDConflict})
	wantOrderIDConflict(t, errs[len(drafts2)-1], ls[500].ID)
	page, err = s.FindLicenses(t.Context(), licensor.LicenseQuery{Limit: 10, Count: true, Now: t0})
	if err != nil {
		t.Fatalf("FindLicenses: %v", err)
	}
	checkTotal(t, "FindLicenses after a failed full batch", true, page.Total, len(drafts))
}

func testCreateLicensesConcurrentOrderID(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	const n = 50
	type result struct {
		ls  []licensor.License
		err error
	}
	results := make([]result, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			d := licensor.LicenseDraft{UserID: "u" + strconv.Itoa(i), ProductID: p.ID, OrderID: new("race")}
			ls, err := s.CreateLicenses(t.Context(), []licensor.LicenseDraft{d}, at(t0))
			results[i] = result{ls, err}
		})
	}
	close(start)
	wg.Wait()

	var winners []licensor.License
	var losers []*licensor.Error
	for i, r := range results {
		if r.err == nil {
			if len(r.ls) != 1 {
				t.Fatalf("goroutine %d: got %d licenses, want 1", i, len(r.ls))
			}
			winners = append(winners, r.ls[0])
			continue
		}
		errs := wantItemErrors(t, r.err, map[int]licensor.Code{0: licensor.CodeOrderIDConflict})
		losers = append(losers, errs[0])
	}
	if len(winners) != 1 || len(losers) != n-1 {
		t.Fatalf("got %d successes and %d conflicts, want 1 and %d", len(winners), len(losers), n-1)
	}
	for _, e := range losers {
		wantOrderIDConflict(t, e, winners[0].ID)
	}
	got := allLicenses(t, s, licensor.LicenseFilter{OrderID: new("race")}, t0)
	if !slices.Equal(licenseIDs(got), []int64{winners[0].ID}) {
		t.Errorf("FindLicenses(order_id race): got ids %v, want %v", licenseIDs(got), []int64{winners[0].ID})
	}
	if all := allLicenses(t, s, licensor.LicenseFilter{}, t0); len(all) != 1 {
		t.Errorf("licenses: got %d, want 1", len(all))
	}
}

func testFindLicenseByIDNotFound(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	createLicenses(t, s, t0, draft("u1", p.ID))
	for _, id := range []int64{missingID, 0, -1} {
		l, err := s.FindLicenseByID(t.Context(), id)
		wantCode(t, err, licensor.CodeLicenseNotFound)
		if l != nil {
			t.Errorf("FindLicenseByID(%d): got %s with the error, want nil", id, show(l))
		}
	}
}

func testDeleteLicenses(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID), draft("u3", p.ID), draft("u4", p.ID))
	ids := []int64{ls[2].ID, ls[0].ID, ls[3].ID}
	deleted, missing, err := s.DeleteLicenses(t.Context(), ids, false, at(t0+1))
	if err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	if !slices.Equal(sortedIDs(deleted), sortedIDs(ids)) || len(missing) != 0 {
		t.Errorf("DeleteLicenses: got deleted %v missing %v, want deleted %v and none missing", deleted, missing, ids)
	}
	for _, id := range ids {
		wantLicenseGone(t, s, id)
	}
	wantLicense(t, "the license not deleted", findLicense(t, s, ls[1].ID), ls[1])
	page, err := s.FindLicenses(t.Context(), licensor.LicenseQuery{Limit: 10, Count: true, Now: t0, Filter: licensor.LicenseFilter{ProductID: new(p.ID)}})
	if err != nil {
		t.Fatalf("FindLicenses: %v", err)
	}
	if !slices.Equal(licenseIDs(page.Licenses), []int64{ls[1].ID}) {
		t.Errorf("FindLicenses(product): got ids %v, want %v", licenseIDs(page.Licenses), []int64{ls[1].ID})
	}
	checkTotal(t, "FindLicenses after deletes", true, page.Total, 1)
}

func testDeleteLicensesUnknown(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID))
	ids := []int64{ls[0].ID, missingID, ls[1].ID, missingID + 1}
	_, _, err := s.DeleteLicenses(t.Context(), ids, false, at(t0+1))
	wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeLicenseNotFound, 3: licensor.CodeLicenseNotFound})
	for _, l := range ls {
		wantLicense(t, "license after a failed delete", findLicense(t, s, l.ID), l)
	}
}

func testDeleteLicensesAllowMissing(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID), draft("u3", p.ID))
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{ls[2].ID}, false, at(t0+1)); err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	ids := []int64{ls[0].ID, missingID, ls[1].ID, ls[2].ID}
	deleted, missing, err := s.DeleteLicenses(t.Context(), ids, true, at(t0+2))
	if err != nil {
		t.Fatalf("DeleteLicenses with allowMissing: %v", err)
	}
	wantDeleted, wantMissing := []int64{ls[0].ID, ls[1].ID}, []int64{missingID, ls[2].ID}
	if !slices.Equal(sortedIDs(deleted), sortedIDs(wantDeleted)) {
		t.Errorf("deleted: got %v, want %v", deleted, wantDeleted)
	}
	if !slices.Equal(sortedIDs(missing), sortedIDs(wantMissing)) {
		t.Errorf("missing: got %v, want %v", missing, wantMissing)
	}
	for _, l := range ls {
		wantLicenseGone(t, s, l.ID)
	}
}

func testDeleteLicensesDuplicates(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID))
	for _, allow := range []bool{false, true} {
		_, _, err := s.DeleteLicenses(t.Context(), []int64{ls[0].ID, ls[1].ID, ls[0].ID}, allow, at(t0+1))
		wantItemErrors(t, err, map[int]licensor.Code{2: licensor.CodeDuplicateInBatch})
		for _, l := range ls {
			wantLicense(t, "license after a failed delete", findLicense(t, s, l.ID), l)
		}
	}
}

func testDeleteLicensesTwice(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	l := createLicenses(t, s, t0, draft("u1", p.ID))[0]
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{l.ID}, false, at(t0+1)); err != nil {
		t.Fatalf("DeleteLicenses: %v", err)
	}
	_, _, err := s.DeleteLicenses(t.Context(), []int64{l.ID}, false, at(t0+2))
	wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeLicenseNotFound})
	deleted, missing, err := s.DeleteLicenses(t.Context(), []int64{l.ID}, true, at(t0+2))
	if err != nil || len(deleted) != 0 || !slices.Equal(missing, []int64{l.ID}) {
		t.Errorf("DeleteLicenses again with allowMissing: got deleted %v missing %v err %v, want none, [%d], nil", deleted, missing, err, l.ID)
	}
	wantLicenseGone(t, s, l.ID)
}

func testCreateLicensesRaceWithProductDelete(t *testing.T, s licensor.Store) {
	// Whatever the interleaving, exactly one of the two wins: a license is
	// never left on a deleted product.
	for round := range 20 {
		p := createProduct(t, s, licensor.NewProduct("Contested "+strconv.Itoa(round)), t0)
		var createErr, deleteErr error
		var created []licensor.License
		start := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			<-start
			created, createErr = s.CreateLicenses(t.Context(), []licensor.LicenseDraft{draft("u1", p.ID)}, at(t0+1))
		})
		wg.Go(func() {
			<-start
			deleteErr = s.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, at(t0+1))
		})
		close(start)
		wg.Wait()
		switch {
		case createErr == nil && deleteErr != nil:
			wantCode(t, deleteErr, licensor.CodeProductInUse)
			if len(created) != 1 {
				t.Fatalf("round %d: got %d licenses, want 1", round, len(created))
			}
			findProduct(t, s, p.ID)
			wantLicense(t, "the license that won", findLicense(t, s, created[0].ID), created[0])
		case createErr != nil && deleteErr == nil:
			wantItemErrors(t, createErr, map[int]licensor.Code{0: licensor.CodeProductNotFound})
			wantProductGone(t, s, p.ID)
			if got := allLicenses(t, s, licensor.LicenseFilter{ProductID: new(p.ID)}, t0); len(got) != 0 {
				t.Fatalf("round %d: licenses of the deleted product: got ids %v, want none", round, licenseIDs(got))
			}
		default:
			t.Fatalf("round %d: got create error %v and delete error %v, want exactly one of them nil", round, createErr, deleteErr)
		}
	}
}

func testDeleteLicensesConcurrent(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	l := createLicenses(t, s, t0, draft("u1", p.ID))[0]
	const n = 10
	errs := make([]error, n)
	deleted := make([][]int64, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			deleted[i], _, errs[i] = s.DeleteLicenses(t.Context(), []int64{l.ID}, false, at(t0+1))
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i, err := range errs {
		if err == nil {
			wins++
			if !slices.Equal(deleted[i], []int64{l.ID}) {
				t.Errorf("deleted: got %v, want %v", deleted[i], []int64{l.ID})
			}
			continue
		}
		wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeLicenseNotFound})
	}
	if wins != 1 {
		t.Fatalf("got %d successful deletes of one license, want 1", wins)
	}
	wantLicenseGone(t, s, l.ID)
}

// testFindGrants: the grants of a user's live licenses stored ACTIVE, in id
// order, the same as GrantOf makes from each license; not the user's
// other statuses, deleted licenses, nor other users' licenses.
func testFindGrants(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Sports"), t0-day)
	q := createProduct(t, s, monthly(), t0-day)
	suspended := draft("u1", p.ID)
	suspended.Status = new(licensor.StatusSuspended)
	endless, dated, gone, other := draft("u1", p.ID), draft("u1", q.ID), draft("u1", p.ID), draft("u2", p.ID)
	ls := createLicenses(t, s, t0, endless, suspended, dated, gone, other)
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{ls[3].ID}, false, at(t0+1)); err != nil {
		t.Fatal(err)
	}
	got, err := s.FindGrants(t.Context(), "u1")
	if err != nil {
		t.Fatal(err)
	}
	var want []licensor.Grant
	for _, i := range []int{0, 2} {
		g, _ := licensor.GrantOf(&ls[i])
		want = append(want, g)
	}
	if !slices.Equal(got, want) {
		t.Errorf("FindGrants(u1) = %+v, want %+v (licenses %d and %d)", got, want, ls[0].ID, ls[2].ID)
	}
	if got, err := s.FindGrants(t.Context(), "nobody"); err != nil || len(got) != 0 {
		t.Errorf("FindGrants(nobody) = %+v, %v, want none", got, err)
	}
}

// testListGrants: every live license of every user, in user then id
// order, with its grant (as GrantOf makes it) when it is ACTIVE, a page of
// at most limit at a time from after; a page may end inside a user's
// licenses, and the next page (after the previous user) gives them all
// again. Deleted licenses are not listed.
func testListGrants(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Sports"), t0-day)
	suspended := draft("b", p.ID)
	suspended.Status = new(licensor.StatusSuspended)
	ls := createLicenses(t, s, t0, draft("c", p.ID), draft("a", p.ID), suspended, draft("b", p.ID), draft("a", p.ID), draft("d", p.ID))
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{ls[5].ID}, false, at(t0+1)); err != nil {
		t.Fatal(err)
	}
	var want []licensor.UserGrant
	for _, i := range []int{1, 4, 2, 3, 0} { // a, a, b (suspended), b, c
		g, ok := licensor.GrantOf(&ls[i])
		want = append(want, licensor.UserGrant{User: ls[i].UserID, Active: ok, Grant: g})
	}
	got, err := s.ListGrants(t.Context(), "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ListGrants(\"\", 100) = %+v, want %+v", got, want)
	}
	got, err = s.ListGrants(t.Context(), "", 1)
	if err != nil || !slices.Equal(got, want[:1]) {
		t.Errorf("ListGrants(\"\", 1) = %+v, %v, want %+v", got, err, want[:1])
	}
	got, err = s.ListGrants(t.Context(), "a", 2)
	if err != nil || !slices.Equal(got, want[2:4]) {
		t.Errorf("ListGrants(a, 2) = %+v, %v, want %+v", got, err, want[2:4])
	}
	if got, err := s.ListGrants(t.Context(), "c", 100); err != nil || len(got) != 0 {
		t.Errorf("ListGrants(c, 100) = %+v, %v, want none", got, err)
	}
}

// testFindUsersGrants: the grants of the live ACTIVE licenses of several
// users in one call, in user then id order, each as GrantOf makes it;
// not other statuses, deleted licenses, nor users not asked for; a user
// with none, or unknown, has no row; too many users is an error.
func testFindUsersGrants(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, licensor.NewProduct("Sports"), t0-day)
	q := createProduct(t, s, monthly(), t0-day)
	suspended := draft("b", p.ID)
	suspended.Status = new(licensor.StatusSuspended)
	ls := createLicenses(t, s, t0, draft("c", q.ID), draft("a", p.ID), suspended, draft("b", q.ID),
		draft("a", q.ID), draft("d", p.ID), draft("e", p.ID), draft("b", p.ID))
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{ls[7].ID}, false, at(t0+1)); err != nil {
		t.Fatal(err)
	}
	var want []licensor.UserGrant
	for _, i := range []int{1, 4, 3, 0} { // a, a, b (its ACTIVE one), c; not d nor e
		g, _ := licensor.GrantOf(&ls[i])
		want = append(want, licensor.UserGrant{User: ls[i].UserID, Active: true, Grant: g})
	}
	got, err := s.FindUsersGrants(t.Context(), []string{"c", "nobody", "b", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("FindUsersGrants(c, nobody, b, a) = %+v, want %+v", got, want)
	}
	if got, err := s.FindUsersGrants(t.Context(), []string{"nobody"}); err != nil || len(got) != 0 {
		t.Errorf("FindUsersGrants(nobody) = %+v, %v, want none", got, err)
	}
	if got, err := s.FindUsersGrants(t.Context(), nil); err != nil || len(got) != 0 {
		t.Errorf("FindUsersGrants() = %+v, %v, want none", got, err)
	}
	many := make([]string, licensor.MaxGrantUsers)
	for i := range many {
		many[i] = fmt.Sprintf("user-%d", i)
	}
	many[len(many)-1] = "e"
	got, err = s.FindUsersGrants(t.Context(), many)
	if g, _ := licensor.GrantOf(&ls[6]); err != nil || !slices.Equal(got, []licensor.UserGrant{{User: "e", Active: true, Grant: g}}) {
		t.Errorf("FindUsersGrants(%d users) = %+v, %v, want e's grant", len(many), got, err)
	}
	if _, err := s.FindUsersGrants(t.Context(), append(many, "f")); err == nil {
		t.Errorf("FindUsersGrants(%d users) succeeded, want an error", len(many)+1)
	}
}

// testHotUsers: no saved set at first; a save is read back in its order,
// up to the limit, with its time; the next save replaces it whole (an
// empty one leaves none); more than MaxHotUsers is refused and changes
// nothing; a set larger than one INSERT's chunk survives whole.
func testHotUsers(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	if users, at, err := s.HotUsers(ctx, 10); err != nil || len(users) != 0 || at != 0 {
		t.Fatalf("HotUsers before a save = %v, %d, %v; want none", users, at, err)
	}
	if err := s.SaveHotUsers(ctx, []string{"c", "a", "b"}, t0); err != nil {
		t.Fatal(err)
	}
	if users, at, err := s.HotUsers(ctx, 10); err != nil || !slices.Equal(users, []string{"c", "a", "b"}) || at != t0 {
		t.Errorf("HotUsers = %v, %d, %v; want [c a b] saved at %d", users, at, err, t0)
	}
	if users, _, err := s.HotUsers(ctx, 2); err != nil || !slices.Equal(users, []string{"c", "a"}) {
		t.Errorf("HotUsers(limit 2) = %v, %v; want [c a]", users, err)
	}
	big := make([]string, 12_345) // more than one INSERT's worth
	for i := range big {
		big[i] = fmt.Sprintf("user-%04d", len(big)-i)
	}
	if err := s.SaveHotUsers(ctx, big, t0+60); err != nil {
		t.Fatal(err)
	}
	if users, at, err := s.HotUsers(ctx, licensor.MaxHotUsers); err != nil || !slices.Equal(users, big) || at != t0+60 {
		t.Errorf("HotUsers after the second save: %d users (first %v), saved at %d, %v; want the %d saved at %d, in order", len(users), users[:min(3, len(users))], at, err, len(big), t0+60)
	}
	tooMany := make([]string, licensor.MaxHotUsers+1)
	if err := s.SaveHotUsers(ctx, tooMany, t0+120); err == nil {
		t.Errorf("SaveHotUsers(%d users) succeeded, want an error", len(tooMany))
	}
	if users, at, err := s.HotUsers(ctx, 5); err != nil || len(users) != 5 || at != t0+60 {
		t.Errorf("after a refused save: %v, %d, %v; want the earlier set", users, at, err)
	}
	if err := s.SaveHotUsers(ctx, nil, t0+180); err != nil {
		t.Fatal(err)
	}
	if users, at, err := s.HotUsers(ctx, 10); err != nil || len(users) != 0 || at != 0 {
		t.Errorf("after an empty save: %v, %d, %v; want none", users, at, err)
	}
}
