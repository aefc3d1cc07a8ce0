package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// allEvents reads the whole feed matching f from the start, page by page,
// checking the paging rules on the way.
func allEvents(t *testing.T, s licensor.Store, f licensor.EventFilter, pageSize int) []licensor.Event {
	t.Helper()
	var out []licensor.Event
	after := int64(0)
	for range 10000 {
		page, err := s.Events(t.Context(), licensor.EventQuery{Filter: f, After: after, Limit: pageSize})
		if err != nil {
			t.Fatalf("Events(after %d): %v", after, err)
		}
		if page.Next < after {
			t.Fatalf("Events(after %d): Next %d goes backwards", after, page.Next)
		}
		for _, e := range page.Events {
			if e.Seq <= after || e.Seq > page.Next {
				t.Fatalf("Events(after %d): event seq %d outside (after, Next=%d]", after, e.Seq, page.Next)
			}
		}
		out = append(out, page.Events...)
		if len(page.Events) < pageSize {
			return out
		}
		after = page.Next
	}
	t.Fatal("Events: the feed does not end")
	return nil
}

// wantEvent checks the fields of one event.
func wantEvent(t *testing.T, what string, got licensor.Event, typ licensor.EventType, c licensor.Change, data []byte) {
	t.Helper()
	if got.Type != typ || got.Time != c.Time || got.Actor != c.Actor || got.RequestID != c.RequestID {
		t.Errorf("%s: got type %s time %d actor %q request %q, want %s %d %q %q",
			what, got.Type, got.Time, got.Actor, got.RequestID, typ, c.Time, c.Actor, c.RequestID)
	}
	if !bytes.Equal(got.Data, data) {
		t.Errorf("%s: data\n got %s\nwant %s", what, got.Data, data)
	}
}

// testEventsEveryWrite checks that each write records its events, in
// commit order, with gap-free positions and the resources as they were.
func testEventsEveryWrite(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0)
	updated, err := s.UpdateProduct(ctx, p.ID, licensor.ProductPatch{Title: new("Monthly sports")}, "", at(t0+1))
	if err != nil {
		t.Fatal(err)
	}
	ls := createLicenses(t, s, t0+2, draft("u1", p.ID), licensor.LicenseDraft{UserID: "u2", ProductID: p.ID, OrderID: new("o-2")})
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+3)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProduct(ctx, p.ID, licensor.DeleteProductOptions{Cascade: true}, at(t0+4)); err != nil {
		t.Fatal(err)
	}

	events := allEvents(t, s, licensor.EventFilter{}, 100)
	if len(events) != 7 {
		t.Fatalf("events: got %d, want 7: %s", len(events), show(events))
	}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Errorf("event %d: seq %d, want %d (gap-free from 1)", i, e.Seq, i+1)
		}
	}
	wantEvent(t, "product.created", events[0], licensor.EventProductCreated, at(t0), licensor.ProductResource(&p))
	wantEvent(t, "product.updated", events[1], licensor.EventProductUpdated, at(t0+1), licensor.ProductResource(updated))
	wantEvent(t, "license.created 0", events[2], licensor.EventLicenseCreated, at(t0+2), licensor.LicenseResource(&ls[0], t0+2))
	wantEvent(t, "license.created 1", events[3], licensor.EventLicenseCreated, at(t0+2), licensor.LicenseResource(&ls[1], t0+2))
	wantEvent(t, "license.deleted", events[4], licensor.EventLicenseDeleted, at(t0+3), licensor.LicenseResource(&ls[0], t0+3))
	wantEvent(t, "cascaded license.deleted", events[5], licensor.EventLicenseDeleted, at(t0+4), licensor.LicenseResource(&ls[1], t0+4))
	wantEvent(t, "product.deleted", events[6], licensor.EventProductDeleted, at(t0+4), licensor.ProductResource(updated))
	for i, e := range events {
		wantProductID := p.ID
		var wantLicenseID int64
		var wantUser string
		switch i {
		case 2, 4:
			wantLicenseID, wantUser = ls[0].ID, "u1"
		case 3, 5:
			wantLicenseID, wantUser = ls[1].ID, "u2"
		}
		if e.ProductID != wantProductID || e.LicenseID != wantLicenseID || e.UserID != wantUser {
			t.Errorf("event %d (%s): product %d license %d user %q, want %d %d %q",
				i, e.Type, e.ProductID, e.LicenseID, e.UserID, wantProductID, wantLicenseID, wantUser)
		}
	}
}

// testEventsFailedWrites checks that writes that fail record nothing.
func testEventsFailedWrites(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: new("o-1")})
	before := allEvents(t, s, licensor.EventFilter{}, 100)

	_, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{draft("u2", p.ID), draft("u3", missingID)}, at(t0+1))
	wantCode(t, err, licensor.CodeProductNotFound)
	_, err = s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u2", ProductID: p.ID, OrderID: new("o-1")}}, at(t0+1))
	wantCode(t, err, licensor.CodeOrderIDConflict)
	_, _, err = s.DeleteLicenses(ctx, []int64{missingID}, false, at(t0+1))
	wantCode(t, err, licensor.CodeLicenseNotFound)
	_, err = s.UpdateProduct(ctx, p.ID, licensor.ProductPatch{Title: new("")}, "", at(t0+1))
	wantCode(t, err, licensor.CodeInvalidAttribute)
	_, err = s.UpdateProduct(ctx, p.ID, licensor.ProductPatch{Title: new("x")}, `"stale"`, at(t0+1))
	wantCode(t, err, licensor.CodePreconditionFailed)
	err = s.DeleteProduct(ctx, p.ID, licensor.DeleteProductOptions{}, at(t0+1))
	wantCode(t, err, licensor.CodeProductInUse)
	if _, _, err := s.DeleteLicenses(ctx, []int64{missingID}, true, at(t0+1)); err != nil {
		t.Fatal(err)
	}

	after := allEvents(t, s, licensor.EventFilter{}, 100)
	if len(after) != len(before) {
		t.Errorf("failed writes recorded events: %s", show(after[len(before):]))
	}
}

func testEventsFilters(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	a := createProduct(t, s, licensor.NewProduct("A"), t0)
	b := createProduct(t, s, licensor.NewProduct("B"), t0)
	ls := createLicenses(t, s, t0+1, draft("u1", a.ID), draft("u2", a.ID), draft("u1", b.ID))
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+2)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateProduct(ctx, b.ID, licensor.ProductPatch{IsPremium: new(true)}, "", at(t0+3)); err != nil {
		t.Fatal(err)
	}
	// All: 1 a, 2 b, 3..5 licenses, 6 delete ls[0], 7 update b.
	seqs := func(es []licensor.Event) []int64 {
		out := make([]int64, len(es))
		for i, e := range es {
			out[i] = e.Seq
		}
		return out
	}
	cases := []struct {
		name string
		f    licensor.EventFilter
		want []int64
	}{
		{"all", licensor.EventFilter{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"type", licensor.EventFilter{Types: []licensor.EventType{licensor.EventLicenseDeleted}}, []int64{6}},
		{"types", licensor.EventFilter{Types: []licensor.EventType{licensor.EventProductCreated, licensor.EventProductUpdated}}, []int64{1, 2, 7}},
		{"license", licensor.EventFilter{LicenseID: &ls[0].ID}, []int64{3, 6}},
		{"product", licensor.EventFilter{ProductID: &b.ID}, []int64{2, 5, 7}},
		{"user", licensor.EventFilter{UserID: new("u1")}, []int64{3, 5, 6}},
		{"user and product", licensor.EventFilter{UserID: new("u1"), ProductID: &a.ID}, []int64{3, 6}},
		{"nothing", licensor.EventFilter{UserID: new("nobody")}, []int64{}},
	}
	for _, c := range cases {
		for _, size := range []int{1, 2, 100} {
			if got := seqs(allEvents(t, s, c.f, size)); !slices.Equal(got, c.want) {
				t.Errorf("%s (page size %d): got seqs %v, want %v", c.name, size, got, c.want)
			}
		}
	}
}

// testEventsNext checks EventPage.Next: the last event of a full page,
// else the head, so that a filtered reader does not scan the same
// positions again.
func testEventsNext(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	page, err := s.Events(ctx, licensor.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 0 || page.Next != 0 {
		t.Errorf("empty feed: got %d events, Next %d; want none, 0", len(page.Events), page.Next)
	}
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID), draft("u3", p.ID)) // seqs 2, 3, 4

	page, err = s.Events(ctx, licensor.EventQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 2 || page.Next != 2 {
		t.Errorf("full page: got %d events, Next %d; want 2, 2", len(page.Events), page.Next)
	}
	f := licensor.EventFilter{UserID: new("u1")}
	page, err = s.Events(ctx, licensor.EventQuery{Filter: f, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Seq != 2 || page.Next != 4 {
		t.Errorf("filtered partial page: got %s, Next %d; want seq 2, Next 4 (the head)", show(page.Events), page.Next)
	}
	page, err = s.Events(ctx, licensor.EventQuery{Filter: f, After: page.Next, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 0 || page.Next != 4 {
		t.Errorf("at the head: got %d events, Next %d; want none, 4", len(page.Events), page.Next)
	}
	// A position the feed has not reached comes from another database.
	_, err = s.Events(ctx, licensor.EventQuery{After: 5})
	wantCode(t, err, licensor.CodeInvalidCursor)
}

// testEventsConcurrentWriters follows the feed while many writers commit
// at once: the reader must see every position once, in order, and nothing
// that was not written. On PostgreSQL a plain sequence would fail this: a
// reader could pass a position whose transaction commits later.
func testEventsConcurrentWriters(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	const writers, perWriter = 8, 15
	var wg sync.WaitGroup
	created := make(chan int64, writers*perWriter*2)
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				ls, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{draft(fmt.Sprintf("w%d-%d", w, i), p.ID)}, at(t0+int64(i)))
				if err != nil {
					errs <- err
					return
				}
				created <- ls[0].ID
				if i%3 == 0 {
					if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+int64(i))); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var seen []licensor.Event
	after := int64(1) // past product.created
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true // one more read after the last commit
		default:
		}
		page, err := s.Events(ctx, licensor.EventQuery{After: after, Limit: 7})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.Seq != after+1 {
				t.Fatalf("the feed skipped from %d to %d", after, e.Seq)
			}
			after = e.Seq
			seen = append(seen, e)
		}
		if len(page.Events) == 7 {
			finished = false // more to read
		}
		after = max(after, page.Next)
	}
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	close(created)
	want := map[int64]int{}
	for id := range created {
		want[id]++
	}
	got := map[int64]int{}
	for _, e := range seen {
		if e.Type == licensor.EventLicenseCreated {
			got[e.LicenseID]++
		}
	}
	if len(got) != len(want) {
		t.Errorf("license.created events for %d licenses, want %d", len(got), len(want))
	}
	for id := range want {
		if got[id] != 1 {
			t.Errorf("license %d: %d license.created events, want 1", id, got[id])
		}
	}
	wantTotal := writers*perWriter + writers*((perWriter+2)/3)
	if len(seen) != wantTotal {
		t.Errorf("events seen: %d, want %d", len(seen), wantTotal)
	}
}

// testEventsPruned checks retention: old events go, and a reader whose
// position is older than what remains is told so instead of skipping.
func testEventsPruned(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	ls := createLicenses(t, s, t0+day, draft("u1", p.ID), draft("u2", p.ID))                    // seqs 2, 3
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+2*day)); err != nil { // seq 4
		t.Fatal(err)
	}
	createLicenses(t, s, t0+3*day, draft("u3", p.ID)) // seq 5

	// Everything before t0+2*day: events 1..3 (the license tombstone is
	// from t0+2*day and stays).
	total := int64(0)
	for {
		n, err := s.PruneHistory(ctx, t0+2*day, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 3 {
		t.Errorf("PruneHistory: deleted %d rows, want 3 events", total)
	}
	events := allEvents(t, s, licensor.EventFilter{}, 100)
	if len(events) != 2 || events[0].Seq != 4 || events[1].Seq != 5 {
		t.Errorf("after pruning: got %s, want seqs 4 and 5", show(events))
	}
	for _, after := range []int64{1, 2} {
		_, err := s.Events(ctx, licensor.EventQuery{After: after})
		wantCode(t, err, licensor.CodeInvalidCursor)
	}
	if page, err := s.Events(ctx, licensor.EventQuery{After: 3}); err != nil || len(page.Events) != 2 {
		t.Errorf("Events(after 3): %v, %d events; want 2", err, len(page.Events))
	}

	// Tombstones: the deleted license, then the deleted product once its
	// licenses are gone.
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[1].ID}, false, at(t0+3*day)); err != nil {
		t.Fatal(err)
	}
	page, err := s.FindLicenses(ctx, licensor.LicenseQuery{Limit: 10, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DeleteLicenses(ctx, licenseIDs(page.Licenses), false, at(t0+3*day)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProduct(ctx, p.ID, licensor.DeleteProductOptions{}, at(t0+3*day)); err != nil {
		t.Fatal(err)
	}
	n, err := s.PruneHistory(ctx, t0+10*day, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// Events 4..8 (seq 5 and, after it, two deletions and
	// product.deleted), three license tombstones, one product tombstone.
	if want := int64(5 + 3 + 1); n != want {
		t.Errorf("PruneHistory of everything: deleted %d rows, want %d", n, want)
	}
	if n, err := s.PruneHistory(ctx, t0+10*day, 1000); err != nil || n != 0 {
		t.Errorf("PruneHistory again: %d, %v; want 0, nil", n, err)
	}
	if page, err := s.Events(ctx, licensor.EventQuery{}); err != nil || len(page.Events) != 0 || page.Next != 8 {
		t.Errorf("Events after pruning everything: %v %s; want none, Next 8", err, show(page))
	}
}
