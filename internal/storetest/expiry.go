package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// system is the Change of the expiry worker at unix time ts.
func system(ts int64) licensor.Change {
	return licensor.Change{Time: ts, Actor: licensor.ActorSystem, RequestID: licensor.RequestIDExpiry}
}

// expiring creates, at t0, a license of p for user that stops at stop.
func expiring(t *testing.T, s licensor.Store, p licensor.Product, user string, stop int64, status licensor.Status) licensor.License {
	t.Helper()
	start := t0 - day
	return createLicenses(t, s, t0, licensor.LicenseDraft{UserID: user, ProductID: p.ID,
		StartDate: &start, StopDate: &stop, Status: &status})[0]
}

func testExpireLicenses(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	if _, ok, err := s.NextExpiry(ctx); err != nil || ok {
		t.Errorf("NextExpiry with no licenses: %v, %v; want none", ok, err)
	}
	a := expiring(t, s, p, "a", t0+10, licensor.StatusActive)
	b := expiring(t, s, p, "b", t0+20, licensor.StatusActive)
	expiring(t, s, p, "c", t0+5, licensor.StatusSuspended) // not ACTIVE: never expires
	createLicenses(t, s, t0, draft("d", p.ID))             // no stop date
	gone := expiring(t, s, p, "e", t0+1, licensor.StatusActive)
	if _, _, err := s.DeleteLicenses(ctx, []int64{gone.ID}, false, at(t0)); err != nil {
		t.Fatal(err)
	}

	if next, ok, err := s.NextExpiry(ctx); err != nil || !ok || next != t0+10 {
		t.Errorf("NextExpiry: %d, %v, %v; want %d", next, ok, err, t0+10)
	}
	// Half-open interval: at its stop_date the license has ended.
	if got, err := s.ExpireLicenses(ctx, system(t0+9), 100); err != nil || len(got) != 0 {
		t.Errorf("ExpireLicenses before any stop date: %s, %v; want none", show(got), err)
	}
	before := allEvents(t, s, licensor.EventFilter{}, 100)
	got, err := s.ExpireLicenses(ctx, system(t0+10), 100)
	if err != nil {
		t.Fatal(err)
	}
	want := a
	want.Status = licensor.StatusExpired
	if len(got) != 1 {
		t.Fatalf("ExpireLicenses at the first stop date: got %s, want license %d", show(got), a.ID)
	}
	wantLicense(t, "expired license", got[0], want)
	wantLicense(t, "stored status", findLicense(t, s, a.ID), want)
	events := allEvents(t, s, licensor.EventFilter{}, 100)[len(before):]
	if len(events) != 1 {
		t.Fatalf("events of the expiry: got %s, want one", show(events))
	}
	wantEvent(t, "license.expired", events[0], licensor.EventLicenseExpired, system(t0+10), licensor.LicenseResource(&want, t0+10))
	if events[0].LicenseID != a.ID || events[0].UserID != "a" {
		t.Errorf("license.expired names license %d user %q, want %d %q", events[0].LicenseID, events[0].UserID, a.ID, "a")
	}

	if got, err := s.ExpireLicenses(ctx, system(t0+15), 100); err != nil || len(got) != 0 {
		t.Errorf("ExpireLicenses again: %s, %v; want none (each license expires once)", show(got), err)
	}
	if next, ok, err := s.NextExpiry(ctx); err != nil || !ok || next != t0+20 {
		t.Errorf("NextExpiry after the first expiry: %d, %v, %v; want %d", next, ok, err, t0+20)
	}
	got, err = s.ExpireLicenses(ctx, system(t0+day), 100)
	if err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("ExpireLicenses later: %s, %v; want license %d", show(got), err, b.ID)
	}
	if _, ok, err := s.NextExpiry(ctx); err != nil || ok {
		t.Errorf("NextExpiry with nothing left to expire: %v, %v; want none", ok, err)
	}
}

// testExpireLicensesBacklog checks that a backlog is caught up in
// batches, earliest first.
func testExpireLicensesBacklog(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	var ids []int64
	for i := range 25 {
		ids = append(ids, expiring(t, s, p, fmt.Sprint("u", i), t0+int64(100-i), licensor.StatusActive).ID)
	}
	slices.Reverse(ids) // earliest stop date first
	var order []int64
	for _, want := range []int{10, 10, 5, 0} {
		got, err := s.ExpireLicenses(ctx, system(t0+day), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != want {
			t.Fatalf("ExpireLicenses batch: got %d, want %d", len(got), want)
		}
		order = append(order, licenseIDs(got)...)
	}
	if !slices.Equal(order, ids) {
		t.Errorf("expiry order: got %v, want %v (earliest stop date first)", order, ids)
	}
	var expired []int64
	for _, e := range allEvents(t, s, licensor.EventFilter{Types: []licensor.EventType{licensor.EventLicenseExpired}}, 100) {
		expired = append(expired, e.LicenseID)
	}
	if !slices.Equal(expired, ids) {
		t.Errorf("license.expired events: got %v, want %v", expired, ids)
	}
}

// testExpireLicensesConcurrent races several expirers (as several
// instances would): every license expires once, with one event.
func testExpireLicensesConcurrent(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	const n = 40
	drafts := make([]licensor.LicenseDraft, n)
	start, stop, active := t0-day, t0+1, licensor.StatusActive
	for i := range drafts {
		drafts[i] = licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID, StartDate: &start, StopDate: &stop, Status: &active}
	}
	createLicenses(t, s, t0, drafts...)
	var (
		mu    sync.Mutex
		count = map[int64]int{}
		wg    sync.WaitGroup
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ExpireLicenses(ctx, system(t0+2), 3)
				if err != nil {
					t.Errorf("ExpireLicenses: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, l := range got {
					count[l.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(count) != n {
		t.Errorf("expired %d distinct licenses, want %d", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("license %d expired %d times", id, c)
		}
	}
	events := allEvents(t, s, licensor.EventFilter{Types: []licensor.EventType{licensor.EventLicenseExpired}}, 100)
	if len(events) != n {
		t.Errorf("license.expired events: %d, want %d", len(events), n)
	}
	for _, e := range events {
		if !bytes.Contains(e.Data, []byte(`"status":"EXPIRED"`)) {
			t.Errorf("license.expired of %d does not show EXPIRED: %s", e.LicenseID, e.Data)
		}
	}
}
