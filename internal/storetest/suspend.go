package storetest

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// Suspension actions used throughout.
var (
	suspend        = licensor.Suspension{Op: licensor.OpSuspend}
	suspendAdmin   = licensor.Suspension{Op: licensor.OpSuspend, Status: licensor.StatusSuspendedAdmin}
	reinstate      = licensor.Suspension{Op: licensor.OpReinstate}
	reinstateAdmin = licensor.Suspension{Op: licensor.OpReinstate, Status: licensor.StatusSuspendedAdmin}
)

func ids(ids ...int64) licensor.SuspensionTarget { return licensor.SuspensionTarget{IDs: ids} }

func ofUser(u string) licensor.SuspensionTarget { return licensor.SuspensionTarget{UserID: u} }

// suspendOK runs an action that must succeed and returns its outcomes.
func suspendOK(t *testing.T, s licensor.Store, target licensor.SuspensionTarget, a licensor.Suspension, c licensor.Change) []licensor.SuspensionOutcome {
	t.Helper()
	out, err := s.SuspendLicenses(t.Context(), target, a, c)
	if err != nil {
		t.Fatalf("SuspendLicenses %s %s: %v", a.Op, show(target), err)
	}
	return out
}

// wantOutcome checks one outcome: the license l with status to, from
// previous, changed or not.
func wantOutcome(t *testing.T, what string, got licensor.SuspensionOutcome, l licensor.License, previous, to licensor.Status, changed bool) {
	t.Helper()
	want := l
	want.Status = to
	wantLicense(t, what, got.License, want)
	if got.Previous != previous || got.Changed != changed {
		t.Errorf("%s: previous %s changed %v, want %s %v", what, got.Previous, got.Changed, previous, changed)
	}
}

// eventsSince returns the events after the first n.
func eventsSince(t *testing.T, s licensor.Store, n int) []licensor.Event {
	t.Helper()
	return allEvents(t, s, licensor.EventFilter{}, 100)[n:]
}

// testSuspendReinstate walks one license through suspend and reinstate:
// the status changes and nothing else, each change has its event with the
// actor and the reason, repeats change nothing.
func testSuspendReinstate(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	l := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, OrderID: new("o-1")})[0]
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))

	a := suspend
	a.Reason = "unpaid invoice 2025-03"
	out := suspendOK(t, s, ids(l.ID), a, at(t0+10))
	if len(out) != 1 {
		t.Fatalf("suspend: %d outcomes, want 1", len(out))
	}
	wantOutcome(t, "suspend", out[0], l, licensor.StatusActive, licensor.StatusSuspended, true)
	suspended := l
	suspended.Status = licensor.StatusSuspended
	wantLicense(t, "stored after suspend (period and all else unchanged)", findLicense(t, s, l.ID), suspended)
	events := eventsSince(t, s, n)
	if len(events) != 1 {
		t.Fatalf("events of the suspend: %s, want one", show(events))
	}
	wantEvent(t, "license.suspended", events[0], licensor.EventLicenseSuspended, at(t0+10),
		licensor.SuspensionEvent(a, &out[0], at(t0+10)).Data)
	if events[0].LicenseID != l.ID || events[0].UserID != "u1" || events[0].ProductID != p.ID {
		t.Errorf("license.suspended names %d %q %d, want %d u1 %d", events[0].LicenseID, events[0].UserID, events[0].ProductID, l.ID, p.ID)
	}
	if got := string(events[0].Data); !strings.Contains(got, `"meta":{"previous_status":"ACTIVE","reason":"unpaid invoice 2025-03"}`) ||
		!strings.Contains(got, `"status":"SUSPENDED"`) {
		t.Errorf("license.suspended data: %s", got)
	}
	// The list reads it as suspended, and it entitles nothing.
	if got := allLicenses(t, s, licensor.LicenseFilter{Statuses: []licensor.Status{licensor.StatusSuspended}}, t0+11); len(got) != 1 || got[0].ID != l.ID {
		t.Errorf("filter[status]=SUSPENDED: %s", show(got))
	}

	// Again: no change, no event.
	out = suspendOK(t, s, ids(l.ID), suspend, at(t0+11))
	wantOutcome(t, "suspend again", out[0], l, licensor.StatusSuspended, licensor.StatusSuspended, false)
	if got := eventsSince(t, s, n+1); len(got) != 0 {
		t.Errorf("suspend again recorded events: %s", show(got))
	}

	out = suspendOK(t, s, ids(l.ID), reinstate, at(t0+20))
	wantOutcome(t, "reinstate", out[0], l, licensor.StatusSuspended, licensor.StatusActive, true)
	wantLicense(t, "stored after reinstate", findLicense(t, s, l.ID), l)
	events = eventsSince(t, s, n+1)
	if len(events) != 1 {
		t.Fatalf("events of the reinstate: %s, want one", show(events))
	}
	wantEvent(t, "license.reinstated", events[0], licensor.EventLicenseReinstated, at(t0+20),
		licensor.SuspensionEvent(reinstate, &out[0], at(t0+20)).Data)

	out = suspendOK(t, s, ids(l.ID), reinstate, at(t0+21))
	wantOutcome(t, "reinstate again", out[0], l, licensor.StatusActive, licensor.StatusActive, false)
	if got := eventsSince(t, s, n+2); len(got) != 0 {
		t.Errorf("reinstate again recorded events: %s", show(got))
	}

	// Suspension does not stop the clock: reinstated, the license still
	// ends at its stop_date and the expirer moves it as any other.
	if got, err := s.ExpireLicenses(t.Context(), system(*l.StopDate), 10); err != nil || len(got) != 1 || got[0].ID != l.ID {
		t.Errorf("ExpireLicenses at the stop date after a reinstate: %s, %v", show(got), err)
	}
}

// testSuspendAdmin checks the precedence of SUSPENDEDADMIN over SUSPENDED.
func testSuspendAdmin(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	l := createLicenses(t, s, t0, draft("u1", p.ID))[0]
	suspendOK(t, s, ids(l.ID), suspend, at(t0+1))
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))

	// SUSPENDED → SUSPENDEDADMIN escalates.
	out := suspendOK(t, s, ids(l.ID), suspendAdmin, at(t0+2))
	wantOutcome(t, "escalate", out[0], l, licensor.StatusSuspended, licensor.StatusSuspendedAdmin, true)
	if got := eventsSince(t, s, n); len(got) != 1 || got[0].Type != licensor.EventLicenseSuspended {
		t.Errorf("events of the escalation: %s", show(got))
	}
	// A plain suspend leaves an administrative suspension as it is.
	out = suspendOK(t, s, ids(l.ID), suspend, at(t0+3))
	wantOutcome(t, "plain suspend of SUSPENDEDADMIN", out[0], l, licensor.StatusSuspendedAdmin, licensor.StatusSuspendedAdmin, false)
	// A plain reinstate does not lift it, and changes nothing.
	_, err := s.SuspendLicenses(t.Context(), ids(l.ID), reinstate, at(t0+4))
	wantItemErrors(t, err, map[int]licensor.Code{0: licensor.CodeLicenseSuspendedAdmin})
	if got := findLicense(t, s, l.ID); got.Status != licensor.StatusSuspendedAdmin {
		t.Errorf("after a refused reinstate: status %s", got.Status)
	}
	if got := eventsSince(t, s, n+1); len(got) != 0 {
		t.Errorf("refused and no-op actions recorded events: %s", show(got))
	}
	// A reinstate of SUSPENDEDADMIN lifts it, and lifts SUSPENDED too.
	out = suspendOK(t, s, ids(l.ID), reinstateAdmin, at(t0+5))
	wantOutcome(t, "reinstate SUSPENDEDADMIN", out[0], l, licensor.StatusSuspendedAdmin, licensor.StatusActive, true)
	suspendOK(t, s, ids(l.ID), suspend, at(t0+6))
	out = suspendOK(t, s, ids(l.ID), reinstateAdmin, at(t0+7))
	wantOutcome(t, "reinstate SUSPENDEDADMIN of SUSPENDED", out[0], l, licensor.StatusSuspended, licensor.StatusActive, true)
	// ACTIVE → SUSPENDEDADMIN directly.
	out = suspendOK(t, s, ids(l.ID), suspendAdmin, at(t0+8))
	wantOutcome(t, "suspend SUSPENDEDADMIN", out[0], l, licensor.StatusActive, licensor.StatusSuspendedAdmin, true)
}

// testSuspendRefused checks that a list of ids is all or nothing: a
// missing, deleted, duplicate or not ACTIVE license fails the call and
// nothing changes.
func testSuspendRefused(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0)
	stop := t0 + 5
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID),
		licensor.LicenseDraft{UserID: "u3", ProductID: p.ID, StopDate: &stop},
		licensor.LicenseDraft{UserID: "u4", ProductID: p.ID, Status: new(licensor.StatusProcessing)})
	gone := createLicenses(t, s, t0, draft("u5", p.ID))[0]
	if _, _, err := s.DeleteLicenses(ctx, []int64{gone.ID}, false, at(t0)); err != nil {
		t.Fatal(err)
	}
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))

	_, err := s.SuspendLicenses(ctx, ids(ls[0].ID, missingID, ls[1].ID, gone.ID), suspend, at(t0+10))
	errs := wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeLicenseNotFound, 3: licensor.CodeLicenseNotFound})
	wantPointer(t, errs[1], "/id")
	// Past its stop_date (EXPIRED though not yet moved), and PROCESSING.
	_, err = s.SuspendLicenses(ctx, ids(ls[0].ID, ls[2].ID, ls[3].ID), suspend, at(t0+10))
	wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeLicenseNotActive, 2: licensor.CodeLicenseNotActive})
	_, err = s.SuspendLicenses(ctx, ids(ls[0].ID, ls[0].ID), suspend, at(t0+10))
	wantItemErrors(t, err, map[int]licensor.Code{1: licensor.CodeDuplicateInBatch})
	for _, l := range ls {
		wantLicense(t, "after refused actions", findLicense(t, s, l.ID), l)
	}
	if got := eventsSince(t, s, n); len(got) != 0 {
		t.Errorf("refused actions recorded events: %s", show(got))
	}
	// Before its stop_date the same license can be suspended; a license
	// not yet started (ACTIVE, start in the future) too.
	future := t0 + day
	later := createLicenses(t, s, t0, licensor.LicenseDraft{UserID: "u6", ProductID: p.ID, StartDate: &future})[0]
	out := suspendOK(t, s, ids(ls[2].ID, later.ID), suspend, at(t0+4))
	if len(out) != 2 || out[0].License.ID != ls[2].ID || out[1].License.ID != later.ID || !out[0].Changed || !out[1].Changed {
		t.Errorf("suspend before the stop date and before the start: %s", show(out))
	}
	// Reinstating what is not suspended changes nothing and succeeds.
	out = suspendOK(t, s, ids(ls[3].ID, ls[0].ID), reinstate, at(t0+11))
	if len(out) != 2 || out[0].Changed || out[1].Changed || out[0].License.Status != licensor.StatusProcessing {
		t.Errorf("reinstate of licenses not suspended: %s", show(out))
	}
}

// testSuspendUser checks the per-user action: every live license of the
// user, those it does not apply to left alone and reported, in id order;
// other users untouched.
func testSuspendUser(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	stop := t0 + 5
	ls := createLicenses(t, s, t0, draft("u1", p.ID),
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, StopDate: &stop},
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, Status: new(licensor.StatusSuspendedAdmin)},
		draft("u2", p.ID), draft("u1", p.ID))
	a, ended, admin, other, b := ls[0], ls[1], ls[2], ls[3], ls[4]
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))

	out := suspendOK(t, s, ofUser("u1"), suspend, at(t0+10))
	if len(out) != 4 {
		t.Fatalf("suspend user u1: %s, want 4 outcomes", show(out))
	}
	wantOutcome(t, "u1 active", out[0], a, licensor.StatusActive, licensor.StatusSuspended, true)
	wantOutcome(t, "u1 ended", out[1], ended, licensor.StatusActive, licensor.StatusActive, false)
	if out[1].Refused == nil || out[1].Refused.Code != licensor.CodeLicenseNotActive {
		t.Errorf("u1 ended: refused %v, want %s", out[1].Refused, licensor.CodeLicenseNotActive)
	}
	wantOutcome(t, "u1 admin", out[2], admin, licensor.StatusSuspendedAdmin, licensor.StatusSuspendedAdmin, false)
	wantOutcome(t, "u1 second active", out[3], b, licensor.StatusActive, licensor.StatusSuspended, true)
	wantLicense(t, "other user", findLicense(t, s, other.ID), other)
	events := eventsSince(t, s, n)
	if got := []int64{}; len(events) == 2 {
		for _, e := range events {
			got = append(got, e.LicenseID)
		}
		if !slices.Equal(got, []int64{a.ID, b.ID}) {
			t.Errorf("license.suspended of licenses %v, want %v", got, []int64{a.ID, b.ID})
		}
	} else {
		t.Errorf("events of the user suspend: %s, want two", show(events))
	}

	out = suspendOK(t, s, ofUser("u1"), reinstate, at(t0+20))
	changed := 0
	for _, o := range out {
		if o.Changed {
			changed++
			if o.License.Status != licensor.StatusActive {
				t.Errorf("reinstated %d: %s", o.License.ID, o.License.Status)
			}
		}
		if o.License.ID == admin.ID && (o.Refused == nil || o.Refused.Code != licensor.CodeLicenseSuspendedAdmin) {
			t.Errorf("a plain reinstate of u1's SUSPENDEDADMIN license: %s", show(o))
		}
	}
	if changed != 2 {
		t.Errorf("reinstate user u1: %d changed, want 2: %s", changed, show(out))
	}
	if out := suspendOK(t, s, ofUser("nobody"), suspend, at(t0+21)); len(out) != 0 {
		t.Errorf("suspend of a user without licenses: %s", show(out))
	}
}

// testSuspendConcurrent races suspends of the same licenses with each
// other and with the expirer: each license changes once, from the status
// it was decided on.
func testSuspendConcurrent(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0)
	stop := t0 + 2
	var drafts []licensor.LicenseDraft
	for range 10 {
		drafts = append(drafts, licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, StopDate: &stop})
	}
	ls := createLicenses(t, s, t0, drafts...)
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = s.SuspendLicenses(ctx, ofUser("u1"), suspend, at(t0+1))
			case 1:
				_, err = s.SuspendLicenses(ctx, ids(ls[i].ID, ls[i+1].ID), suspendAdmin, at(t0+1))
			default:
				_, err = s.ExpireLicenses(ctx, system(t0+2), 3)
			}
			if err != nil && licensor.ErrorCode(err) != licensor.CodeLicenseNotActive {
				t.Errorf("racer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	// Replay the events over the initial statuses: they must lead to the
	// stored statuses, each step from the status it names.
	status := map[int64]licensor.Status{}
	for _, l := range ls {
		status[l.ID] = licensor.StatusActive
	}
	for _, e := range eventsSince(t, s, n) {
		var to licensor.Status
		switch e.Type {
		case licensor.EventLicenseExpired:
			to = licensor.StatusExpired
			if status[e.LicenseID] != licensor.StatusActive {
				t.Errorf("license %d expired from %s", e.LicenseID, status[e.LicenseID])
			}
		case licensor.EventLicenseSuspended:
			to = licensor.StatusSuspended
			if strings.Contains(string(e.Data), `"status":"SUSPENDEDADMIN"`) {
				to = licensor.StatusSuspendedAdmin
			}
			if !strings.Contains(string(e.Data), `"previous_status":"`+string(status[e.LicenseID])+`"`) {
				t.Errorf("license %d suspended from %s: %s", e.LicenseID, status[e.LicenseID], e.Data)
			}
		default:
			t.Errorf("unexpected event %s", e.Type)
		}
		if to == status[e.LicenseID] {
			t.Errorf("license %d: event %s without a change", e.LicenseID, e.Type)
		}
		status[e.LicenseID] = to
	}
	for _, l := range ls {
		if got := findLicense(t, s, l.ID).Status; got != status[l.ID] {
			t.Errorf("license %d: stored %s, events say %s", l.ID, got, status[l.ID])
		}
	}
}
