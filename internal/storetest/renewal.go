package storetest

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// renewer is the Change of the renewal worker at unix time ts.
func renewer(ts int64) licensor.Change {
	return licensor.Change{Time: ts, Actor: licensor.ActorSystem, RequestID: licensor.RequestIDRenewal}
}

// autoPass and notifyPass are passes of a deployment in each mode, with a
// three-day notice.
var (
	autoPass   = licensor.RenewalPass{Mode: licensor.RenewalAutomatic, Notice: 3 * day, Limit: 100}
	notifyPass = licensor.RenewalPass{Mode: licensor.RenewalNotify, Notice: 3 * day, Limit: 100}
)

func renew(t *testing.T, s licensor.Store, ts int64, r licensor.RenewalPass) licensor.RenewalResult {
	t.Helper()
	res, err := s.RenewLicenses(t.Context(), renewer(ts), r)
	if err != nil {
		t.Fatalf("RenewLicenses at %d: %v", ts, err)
	}
	return res
}

// monthlyFrom creates, at ts, a recurring license of p for user from start
// (stop from p's period).
func monthlyFrom(t *testing.T, s licensor.Store, p licensor.Product, user string, start, ts int64) licensor.License {
	t.Helper()
	return createLicenses(t, s, ts, licensor.LicenseDraft{UserID: user, ProductID: p.ID, StartDate: &start})[0]
}

// testRenewAutomatic renews a license at its expiry_date: the successor
// starts at the stop, takes its period and price from the product as it is
// then, has the deterministic order id and the links both ways, and the
// events are license.created then license.renewed; a second pass does
// nothing.
func testRenewAutomatic(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0-day)
	l := monthlyFrom(t, s, p, "u1", t0, t0)
	if l.Renewal != licensor.RenewalPending {
		t.Fatalf("a recurring ACTIVE license: renewal %q, want PENDING", l.Renewal)
	}
	plain := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, Recurring: new(false)})[0]
	if plain.Renewal != licensor.RenewalNone {
		t.Errorf("a license that is not recurring: renewal %q, want none", plain.Renewal)
	}
	stop := *l.StopDate
	if next, ok, err := s.NextRenewal(ctx, licensor.RenewalAutomatic); err != nil || !ok || next != stop {
		t.Errorf("NextRenewal: %d %v %v, want %d", next, ok, err, stop)
	}
	if next, ok, err := s.NextRenewal(ctx, licensor.RenewalNotify); err != nil || ok {
		t.Errorf("NextRenewal of a notify deployment: %d %v %v, want none", next, ok, err)
	}
	if res := renew(t, s, stop-1, autoPass); res.Len() != 0 {
		t.Errorf("a pass before expiry_date: %s, want nothing", show(res))
	}
	// The product changes before the renewal: the successor takes it as
	// it is then.
	price, period := int64(1499), "P1Y"
	if _, err := s.UpdateProduct(ctx, p.ID, licensor.ProductPatch{PriceAmount: new(&price), LicensePeriod: &period}, "", at(t0+day)); err != nil {
		t.Fatal(err)
	}
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	res := renew(t, s, stop, autoPass)
	if len(res.Renewed) != 1 || len(res.Due) != 0 || len(res.Lapsed) != 0 {
		t.Fatalf("the pass at expiry_date: %s, want one renewal", show(res))
	}
	got := res.Renewed[0]
	next := time.Unix(stop, 0).UTC().AddDate(1, 0, 0).Unix()
	want := licensor.License{
		ID: got.Successor.ID, UserID: "u1", ProductID: p.ID, Status: licensor.StatusActive,
		StartDate: stop, StopDate: &next, OrderID: new(licensor.RenewalOrderID(l.ID)), Recurring: true, ExpiryDate: &next,
		PriceAmount: &price, PriceCurrency: new("EUR"), PurchaseTimestamp: stop, CreatedAt: stop,
		Renewal: licensor.RenewalPending, RenewedFrom: &l.ID,
	}
	wantLicense(t, "successor", got.Successor, want)
	wantLicense(t, "stored successor", findLicense(t, s, got.Successor.ID), want)
	pred := l
	pred.Renewal, pred.RenewedBy = licensor.RenewalRenewed, &got.Successor.ID
	wantLicense(t, "predecessor", got.Predecessor, pred)
	wantLicense(t, "stored predecessor", findLicense(t, s, l.ID), pred)

	events := eventsSince(t, s, n)
	if len(events) != 2 {
		t.Fatalf("events of the renewal: %s, want license.created and license.renewed", show(events))
	}
	wantEvent(t, "license.created", events[0], licensor.EventLicenseCreated, renewer(stop), licensor.LicenseResource(&want, stop))
	wantEvent(t, "license.renewed", events[1], licensor.EventLicenseRenewed, renewer(stop),
		licensor.RenewalEvent(licensor.EventLicenseRenewed, &pred, licensor.RenewalMeta{Successor: strconv.FormatInt(want.ID, 10)}, renewer(stop)).Data)
	if events[1].LicenseID != l.ID {
		t.Errorf("license.renewed names license %d, want the predecessor %d", events[1].LicenseID, l.ID)
	}
	if res := renew(t, s, stop+1, autoPass); res.Len() != 0 {
		t.Errorf("a second pass: %s, want nothing (each license renews once)", show(res))
	}
	if next, ok, err := s.NextRenewal(ctx, licensor.RenewalAutomatic); err != nil || !ok || next != *want.ExpiryDate {
		t.Errorf("NextRenewal after the renewal: %d %v %v, want the successor's %d", next, ok, err, *want.ExpiryDate)
	}
	// Deleting the successor does not renew the predecessor again.
	if _, _, err := s.DeleteLicenses(ctx, []int64{want.ID}, false, at(stop+2)); err != nil {
		t.Fatal(err)
	}
	if res := renew(t, s, stop+3, autoPass); res.Len() != 0 {
		t.Errorf("a pass after the successor's deletion: %s, want nothing", show(res))
	}
}

// testRenewBacklog renews after downtime: every missed period is made,
// each starting at the stop of the one before, none twice.
func testRenewBacklog(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0-day)
	start := unix(2024, time.January, 31, 10, 0, 0)
	first := monthlyFrom(t, s, p, "u1", start, start)
	other := monthlyFrom(t, s, p, "u2", start+3600, start)
	now := unix(2024, time.July, 15, 0, 0, 0)
	month, err := licensor.ParsePeriod("P1M")
	if err != nil {
		t.Fatal(err)
	}
	var renewed []licensor.Renewal
	small := autoPass
	small.Limit = 3
	for range 100 {
		res := renew(t, s, now, small)
		if res.Len() == 0 {
			break
		}
		if res.Len() > small.Limit {
			t.Fatalf("a pass handled %d licenses, limit %d", res.Len(), small.Limit)
		}
		renewed = append(renewed, res.Renewed...)
	}
	for _, root := range []licensor.License{first, other} {
		chain := []licensor.License{root}
		for {
			cur := findLicense(t, s, chain[len(chain)-1].ID)
			if cur.RenewedBy == nil {
				break
			}
			chain = append(chain, findLicense(t, s, *cur.RenewedBy))
		}
		// Jan 31 + P1M is Feb 29, then Mar 29, ...: each from the stop of
		// the one before, until the one that holds now.
		for i := 1; i < len(chain); i++ {
			prev, cur := chain[i-1], chain[i]
			if cur.StartDate != *prev.StopDate || *cur.RenewedFrom != prev.ID {
				t.Errorf("user %s period %d starts at %d from %v, want %d from %d", root.UserID, i, cur.StartDate, cur.RenewedFrom, *prev.StopDate, prev.ID)
			}
			if want := month.AddTo(time.Unix(cur.StartDate, 0)).Unix(); *cur.StopDate != want {
				t.Errorf("user %s period %d: stop %d, want %d (P1M after %d)", root.UserID, i, *cur.StopDate, want, cur.StartDate)
			}
		}
		last := chain[len(chain)-1]
		if *last.StopDate <= now || *chain[len(chain)-2].StopDate > now {
			t.Errorf("user %s: the chain ends with [%d, %d), want the period holding %d", root.UserID, last.StartDate, *last.StopDate, now)
		}
		if len(chain) != 6 { // [Jan 31, Feb 29) ... [Jun 29, Jul 29)
			t.Errorf("user %s: %d licenses in the chain, want 6", root.UserID, len(chain))
		}
	}
	if len(renewed) != 10 {
		t.Errorf("%d renewals, want 10", len(renewed))
	}
}

// testRenewNotify sends the notice once in notify mode, makes no successor
// itself, and links the one the BSS creates.
func testRenewNotify(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0-day)
	l := monthlyFrom(t, s, p, "u1", t0, t0)
	stop := *l.StopDate
	if res := renew(t, s, stop-3*day-1, notifyPass); res.Len() != 0 {
		t.Errorf("a pass before the notice: %s, want nothing", show(res))
	}
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	res := renew(t, s, stop-3*day, notifyPass)
	if len(res.Due) != 1 || res.Len() != 1 {
		t.Fatalf("the pass at the notice: %s, want the license DUE", show(res))
	}
	due := l
	due.Renewal = licensor.RenewalDue
	wantLicense(t, "due license", res.Due[0], due)
	wantLicense(t, "stored due license", findLicense(t, s, l.ID), due)
	events := eventsSince(t, s, n)
	if len(events) != 1 {
		t.Fatalf("events of the notice: %s, want license.renewal_due", show(events))
	}
	wantEvent(t, "license.renewal_due", events[0], licensor.EventLicenseRenewalDue, renewer(stop-3*day), licensor.LicenseResource(&due, stop-3*day))
	if res := renew(t, s, stop+day, notifyPass); res.Len() != 0 {
		t.Errorf("a pass after expiry_date in notify mode: %s, want nothing (the BSS renews)", show(res))
	}

	// The BSS creates the successor; start_date defaults to the stop.
	n = len(allEvents(t, s, licensor.EventFilter{}, 100))
	order := "bss-2"
	succ := createLicenses(t, s, stop-day, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: &order, RenewedFrom: &l.ID})[0]
	if succ.StartDate != stop || *succ.RenewedFrom != l.ID || succ.Renewal != licensor.RenewalPending {
		t.Errorf("the BSS's successor: %s, want from %d, renewing %d, PENDING", show(succ), stop, l.ID)
	}
	pred := due
	pred.Renewal, pred.RenewedBy = licensor.RenewalRenewed, &succ.ID
	wantLicense(t, "renewed predecessor", findLicense(t, s, l.ID), pred)
	events = eventsSince(t, s, n)
	if len(events) != 2 || events[0].Type != licensor.EventLicenseCreated || events[0].LicenseID != succ.ID ||
		events[1].Type != licensor.EventLicenseRenewed || events[1].LicenseID != l.ID {
		t.Fatalf("events of the BSS's successor: %s, want license.created of it and license.renewed of %d", show(events), l.ID)
	}
	wantEvent(t, "license.renewed", events[1], licensor.EventLicenseRenewed, at(stop-day),
		licensor.RenewalEvent(licensor.EventLicenseRenewed, &pred, licensor.RenewalMeta{Successor: strconv.FormatInt(succ.ID, 10)}, at(stop-day)).Data)
	// A second successor of the same license is refused.
	_, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u1", ProductID: p.ID, RenewedFrom: &l.ID}}, at(stop))
	errs := wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeRenewalClosed})
	wantPointer(t, errs[0], "/relationships/renewed_from")
}

// testRenewSuccessorRefused checks the successors a BSS may not create.
func testRenewSuccessorRefused(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0-day)
	a := monthlyFrom(t, s, p, "u1", t0, t0)
	b := monthlyFrom(t, s, p, "u1", t0, t0)
	c := monthlyFrom(t, s, p, "u1", t0, t0)
	plain := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, Recurring: new(false)})[0]
	wrongStart := *a.StopDate + 1
	missing := missingID
	drafts := []licensor.LicenseDraft{
		{UserID: "u1", ProductID: p.ID, RenewedFrom: &missing},                           // 0: no such license
		{UserID: "u2", ProductID: p.ID, RenewedFrom: &c.ID},                              // 1: another user
		{UserID: "u1", ProductID: p.ID, RenewedFrom: &b.ID, StartDate: &wrongStart},      // 2: not from the stop
		{UserID: "u1", ProductID: p.ID, RenewedFrom: &plain.ID},                          // 3: not renewable
		{UserID: "u1", ProductID: p.ID, RenewedFrom: &a.ID},                              // 4: fine alone
		{UserID: "u1", ProductID: p.ID, RenewedFrom: &a.ID},                              // 5: a's second successor
		{UserID: "u1", ProductID: p.ID, OrderID: new(licensor.RenewalOrderID(plain.ID))}, // 6: reserved order id
	}
	_, err := s.CreateLicenses(ctx, drafts, at(t0+1))
	got := wantItemErrors(t, err, map[int]licensor.Code{
		0: licensor.CodeLicenseNotFound, 1: licensor.CodeInvalidRelationship, 2: licensor.CodeInvalidAttribute,
		3: licensor.CodeRenewalClosed, 5: licensor.CodeDuplicateInBatch, 6: licensor.CodeInvalidAttribute,
	})
	for i, ptr := range map[int]string{0: "/relationships/renewed_from", 1: "/relationships/renewed_from",
		2: "/attributes/start_date", 3: "/relationships/renewed_from", 5: "/relationships/renewed_from", 6: "/attributes/order_id"} {
		wantPointer(t, got[i], ptr)
	}
	for _, l := range []licensor.License{a, b, c, plain} {
		wantLicense(t, "untouched license", findLicense(t, s, l.ID), l)
	}
}

// testRenewCancel cancels a renewal: the license keeps its period and
// status, the event carries the reason, a repeat changes nothing, and no
// successor is made; a renewal that happened cannot be cancelled.
func testRenewCancel(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0-day)
	l := monthlyFrom(t, s, p, "u1", t0, t0)
	other := monthlyFrom(t, s, p, "u2", t0, t0)
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	c := at(t0 + day)
	out, err := s.CancelRenewal(ctx, l.ID, "subscriber left", c)
	if err != nil {
		t.Fatal(err)
	}
	want := l
	want.Renewal = licensor.RenewalCancelled
	if !out.Changed || out.Previous != licensor.RenewalPending {
		t.Errorf("CancelRenewal: changed %v previous %q, want true PENDING", out.Changed, out.Previous)
	}
	wantLicense(t, "cancelled license", out.License, want)
	wantLicense(t, "stored cancelled license", findLicense(t, s, l.ID), want)
	events := eventsSince(t, s, n)
	if len(events) != 1 {
		t.Fatalf("events of the cancellation: %s", show(events))
	}
	wantEvent(t, "license.renewal_cancelled", events[0], licensor.EventLicenseRenewalCancelled, c,
		licensor.RenewalEvent(licensor.EventLicenseRenewalCancelled, &want, licensor.RenewalMeta{Reason: "subscriber left"}, c).Data)
	again, err := s.CancelRenewal(ctx, l.ID, "", at(t0+2*day))
	if err != nil || again.Changed || again.Previous != licensor.RenewalCancelled {
		t.Errorf("CancelRenewal again: %s, %v; want unchanged", show(again), err)
	}
	if len(eventsSince(t, s, n)) != 1 {
		t.Errorf("a repeated cancellation recorded an event")
	}
	res := renew(t, s, *l.StopDate, autoPass)
	if len(res.Renewed) != 1 || res.Renewed[0].Predecessor.ID != other.ID {
		t.Errorf("the pass at expiry_date: %s, want only license %d renewed", show(res), other.ID)
	}
	// The period stays: the cancelled license is ACTIVE until its stop.
	if got := findLicense(t, s, l.ID); got.EffectiveStatus(*l.StopDate-1) != licensor.StatusActive || *got.StopDate != *l.StopDate {
		t.Errorf("the cancelled license lost its period: %s", show(got))
	}
	_, err = s.CancelRenewal(ctx, other.ID, "", at(*l.StopDate+1))
	wantCode(t, err, licensor.CodeRenewalClosed)
	_, err = s.CancelRenewal(ctx, missingID, "", at(*l.StopDate+1))
	wantCode(t, err, licensor.CodeLicenseNotFound)
	// A BSS cannot renew a cancelled license either.
	_, err = s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u1", ProductID: p.ID, RenewedFrom: &l.ID}}, at(*l.StopDate))
	wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeRenewalClosed})
}

// testRenewLapse lapses a license that is suspended at its expiry_date,
// in either mode; one suspended in the notice window gets no notice.
func testRenewLapse(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0-day)
	for _, pass := range []licensor.RenewalPass{autoPass, notifyPass} {
		l := monthlyFrom(t, s, p, "u-"+string(pass.Mode), t0, t0)
		suspendOK(t, s, ids(l.ID), licensor.Suspension{Op: licensor.OpSuspend}, at(t0+1))
		if res := renew(t, s, *l.StopDate-day, pass); res.Len() != 0 {
			t.Errorf("%s: a pass in the notice window of a suspended license: %s, want nothing", pass.Mode, show(res))
		}
		res := renew(t, s, *l.StopDate, pass)
		if len(res.Lapsed) != 1 || res.Len() != 1 || res.Lapsed[0].ID != l.ID {
			t.Fatalf("%s: the pass at expiry_date: %s, want license %d LAPSED", pass.Mode, show(res), l.ID)
		}
		if got := findLicense(t, s, l.ID); got.Renewal != licensor.RenewalLapsed || got.Status != licensor.StatusSuspended {
			t.Errorf("%s: stored %s, want LAPSED and still SUSPENDED", pass.Mode, show(got))
		}
	}
}

// testRenewModeOverride checks that a product's mode wins over the
// deployment's, both ways.
func testRenewModeOverride(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	auto := monthly()
	auto.RenewalMode = licensor.RenewalAutomatic
	pa := createProduct(t, s, auto, t0-day)
	notify := monthly()
	notify.RenewalMode = licensor.RenewalNotify
	pn := createProduct(t, s, notify, t0-day)
	pd := createProduct(t, s, monthly(), t0-day) // the deployment's
	if got := findProduct(t, s, pa.ID); got.RenewalMode != licensor.RenewalAutomatic {
		t.Errorf("stored renewal_mode %q, want automatic", got.RenewalMode)
	}
	for _, pass := range []licensor.RenewalPass{autoPass, notifyPass} {
		la := monthlyFrom(t, s, pa, "a", t0, t0)
		ln := monthlyFrom(t, s, pn, "n", t0, t0)
		ld := monthlyFrom(t, s, pd, "d", t0, t0)
		if next, ok, err := s.NextRenewal(ctx, pass.Mode); err != nil || !ok || next != *la.ExpiryDate {
			t.Errorf("%s deployment: NextRenewal %d %v %v, want %d", pass.Mode, next, ok, err, *la.ExpiryDate)
		}
		res := renew(t, s, *la.StopDate, pass)
		renewed, due := map[int64]bool{}, map[int64]bool{}
		for _, r := range res.Renewed {
			renewed[r.Predecessor.ID] = true
		}
		for _, l := range res.Due {
			due[l.ID] = true
		}
		wantAutoD := pass.Mode == licensor.RenewalAutomatic
		if !renewed[la.ID] || due[la.ID] || renewed[ln.ID] || !due[ln.ID] || renewed[ld.ID] != wantAutoD || due[ld.ID] == wantAutoD {
			t.Errorf("%s deployment: renewed %v due %v; want %d renewed, %d due, %d by the deployment's mode",
				pass.Mode, renewed, due, la.ID, ln.ID, ld.ID)
		}
		// Clear the products' chains for the next deployment.
		for _, r := range res.Renewed {
			if _, err := s.CancelRenewal(ctx, r.Successor.ID, "", at(*la.StopDate)); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A product's mode is cleared with "".
	clear := licensor.RenewalMode("")
	got, err := s.UpdateProduct(ctx, pa.ID, licensor.ProductPatch{RenewalMode: &clear}, "", at(t0))
	if err != nil || got.RenewalMode != "" || findProduct(t, s, pa.ID).RenewalMode != "" {
		t.Errorf("UpdateProduct clearing renewal_mode: %v, %v", got, err)
	}
}

// testRenewConcurrent races renewers (as several instances would) with
// each other, with the expirer and with cancellations over a backlog: each
// license is renewed at most once and exactly once unless cancelled, and
// never both.
func testRenewConcurrent(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0-day)
	var drafts []licensor.LicenseDraft
	for i := range 60 {
		start := t0 - 40*day + int64(i)
		drafts = append(drafts, licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID, StartDate: &start})
	}
	ls := createLicenses(t, s, t0-40*day, drafts...)
	small := autoPass
	small.Limit = 7
	var wg sync.WaitGroup
	cancelled := make([]bool, len(ls))
	for w := range 6 {
		wg.Go(func() {
			for range 40 {
				var err error
				switch w {
				case 0:
					_, err = s.ExpireLicenses(ctx, system(t0), 5)
				case 1:
					for i := range ls {
						if i%5 == 0 {
							out, cerr := s.CancelRenewal(ctx, ls[i].ID, "", at(t0))
							if cerr == nil && out.Changed {
								cancelled[i] = true
							}
							if cerr != nil && licensor.ErrorCode(cerr) != licensor.CodeRenewalClosed {
								err = cerr
							}
						}
					}
				default:
					_, err = s.RenewLicenses(ctx, renewer(t0), small)
				}
				if err != nil {
					t.Errorf("racer %d: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	for {
		if res := renew(t, s, t0, autoPass); res.Len() == 0 {
			break
		}
	}
	successors := map[int64]int{}
	for _, l := range allLicenses(t, s, licensor.LicenseFilter{}, t0) {
		if l.RenewedFrom != nil {
			successors[*l.RenewedFrom]++
		}
	}
	for i, l := range ls {
		got := findLicense(t, s, l.ID)
		switch {
		case cancelled[i] && (got.Renewal != licensor.RenewalCancelled || successors[l.ID] != 0):
			t.Errorf("license %d: cancelled, yet %s with %d successors", l.ID, got.Renewal, successors[l.ID])
		case !cancelled[i] && (got.Renewal != licensor.RenewalRenewed || successors[l.ID] != 1):
			t.Errorf("license %d: %s with %d successors, want RENEWED with one", l.ID, got.Renewal, successors[l.ID])
		}
	}
	for id, n := range successors {
		if n != 1 {
			t.Errorf("license %d has %d successors", id, n)
		}
	}
	// Each renewal is announced once.
	renewedEvents := map[int64]int{}
	for _, e := range allEvents(t, s, licensor.EventFilter{Types: []licensor.EventType{licensor.EventLicenseRenewed}}, 100) {
		renewedEvents[e.LicenseID]++
	}
	for id, n := range successors {
		if renewedEvents[id] != n {
			t.Errorf("license %d: %d license.renewed events, want %d", id, renewedEvents[id], n)
		}
	}
}
