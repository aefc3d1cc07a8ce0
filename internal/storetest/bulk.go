package storetest

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// newBulkJob creates a job at ts.
func newBulkJob(t *testing.T, s licensor.Store, j licensor.BulkJob, ts int64) licensor.BulkJob {
	t.Helper()
	if err := j.Validate(); err != nil {
		t.Fatalf("job %s: %v", show(j), err)
	}
	if err := s.CreateBulkJob(t.Context(), &j, at(ts)); err != nil {
		t.Fatalf("CreateBulkJob %s: %v", show(j), err)
	}
	return j
}

func byUser(u string) licensor.LicenseFilter { return licensor.LicenseFilter{UserID: &u} }

// claimOne claims the one job that must be pending at now.
func claimOne(t *testing.T, s licensor.Store, now, leaseUntil int64) licensor.BulkClaim {
	t.Helper()
	jobs, err := s.ClaimBulkJobs(t.Context(), now, leaseUntil, 10)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ClaimBulkJobs(%d): %d jobs, %v; want 1", now, len(jobs), err)
	}
	j := jobs[0]
	if j.State != licensor.BulkRunning || j.LeaseUntil != leaseUntil || j.StartedAt == nil {
		t.Fatalf("claimed job: %s", show(j))
	}
	return licensor.BulkClaim{JobID: j.ID, Claims: j.Claims, LeaseUntil: leaseUntil}
}

// runChunk runs one chunk that must succeed.
func runChunk(t *testing.T, s licensor.Store, claim licensor.BulkClaim, limit int, now int64) *licensor.BulkChunk {
	t.Helper()
	chunk, err := s.RunBulkJob(t.Context(), claim, limit, now)
	if err != nil {
		t.Fatalf("RunBulkJob(%s, %d): %v", show(claim), limit, err)
	}
	return chunk
}

// runAll runs chunks of limit until the job is done and returns how many ran.
func runAll(t *testing.T, s licensor.Store, claim licensor.BulkClaim, limit int, now int64) int {
	t.Helper()
	for n := 1; n < 10000; n++ {
		if runChunk(t, s, claim, limit, now).Job.State == licensor.BulkDone {
			return n
		}
	}
	t.Fatal("the job never finished")
	return 0
}

func findJob(t *testing.T, s licensor.Store, id int64) licensor.BulkJob {
	t.Helper()
	j, err := s.FindBulkJobByID(t.Context(), id)
	if err != nil {
		t.Fatalf("FindBulkJobByID(%d): %v", id, err)
	}
	return *j
}

type counts struct{ matched, processed, changed, unchanged, refused int64 }

func wantCounts(t *testing.T, j licensor.BulkJob, want counts) {
	t.Helper()
	if got := (counts{j.Matched, j.Processed, j.Changed, j.Unchanged, j.Refused}); got != want {
		t.Errorf("job %d counts: got %+v, want %+v", j.ID, got, want)
	}
}

// testBulkCreateFind: a new job is queued with its snapshot (matches,
// largest license id) and reads back as it was stored.
func testBulkCreateFind(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u1", p.ID), draft("u1", p.ID), draft("u2", p.ID))
	if _, _, err := s.DeleteLicenses(t.Context(), []int64{ls[2].ID}, false, at(t0)); err != nil {
		t.Fatal(err)
	}
	recurring := true
	j := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkSuspend, Status: licensor.StatusSuspendedAdmin, Reason: "fraud",
		Filter: licensor.LicenseFilter{UserID: new("u1"), ProductID: &p.ID, Statuses: []licensor.Status{licensor.StatusActive, licensor.StatusSuspended},
			Recurring: &recurring, Ranges: []licensor.Range{{Field: "stop_date", Op: "gt", Value: t0}}}}, t0+5)
	if j.ID == 0 || j.State != licensor.BulkQueued || j.Matched != 2 || j.UntilID != ls[3].ID || j.Cursor != 0 ||
		j.Actor != "storetest" || j.RequestID != at(t0+5).RequestID || j.CreatedAt != t0+5 || j.UpdatedAt != t0+5 ||
		j.StartedAt != nil || j.FinishedAt != nil || j.Claims != 0 {
		t.Errorf("created: %s", show(j))
	}
	got := findJob(t, s, j.ID)
	if !reflect.DeepEqual(got, j) {
		t.Errorf("FindBulkJobByID:\n got %s\nwant %s", show(got), show(j))
	}
	_, err := s.FindBulkJobByID(t.Context(), missingID)
	wantCode(t, err, licensor.CodeBulkJobNotFound)

	// An empty database: nothing matches, the job covers no license.
	other := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("nobody")}, t0+6)
	if other.Matched != 0 || other.ID == j.ID {
		t.Errorf("second job: %s", show(other))
	}
}

// testBulkDelete deletes every license of a user in chunks: each once,
// each with its ordinary event attributed to the job; other users' and
// later licenses are left alone.
func testBulkDelete(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	var drafts []licensor.LicenseDraft
	for i := range 27 {
		u := "u1"
		if i%10 == 9 {
			u = "u2"
		}
		drafts = append(drafts, draft(u, p.ID))
	}
	ls := createLicenses(t, s, t0, drafts...)
	j := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0+1)
	later := createLicenses(t, s, t0+2, draft("u1", p.ID))[0]
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	claim := claimOne(t, s, t0+3, t0+33)

	first := runChunk(t, s, claim, 10, t0+4)
	if first.Job.State != licensor.BulkRunning || first.Job.Processed != 10 || len(first.Changed) != 10 ||
		first.Job.Cursor != first.Changed[9].ID || first.Job.LeaseUntil != t0+33 {
		t.Fatalf("first chunk: %s", show(first.Job))
	}
	if chunks := runAll(t, s, claim, 10, t0+5); chunks != 2 { // 10, then 5 and done
		t.Errorf("%d more chunks, want 2", chunks)
	}
	done := findJob(t, s, j.ID)
	wantCounts(t, done, counts{25, 25, 25, 0, 0})
	if done.State != licensor.BulkDone || done.FinishedAt == nil || *done.FinishedAt != t0+5 || done.LeaseUntil != 0 {
		t.Errorf("done: %s", show(done))
	}
	for _, l := range ls {
		if l.UserID == "u1" {
			wantLicenseGone(t, s, l.ID)
		} else {
			findLicense(t, s, l.ID)
		}
	}
	findLicense(t, s, later.ID)
	events := eventsSince(t, s, n)
	if len(events) != 25 {
		t.Fatalf("%d events, want 25", len(events))
	}
	seen := map[int64]bool{}
	for _, e := range events {
		if e.Type != licensor.EventLicenseDeleted || e.Actor != "storetest" || e.RequestID != licensor.BulkJobRequestID(j.ID) ||
			e.UserID != "u1" || seen[e.LicenseID] {
			t.Errorf("event %s %s %s %s license %d", e.Type, e.Actor, e.RequestID, e.UserID, e.LicenseID)
		}
		seen[e.LicenseID] = true
	}
	// Finished: no claim, no chunk.
	if jobs, err := s.ClaimBulkJobs(t.Context(), t0+100, t0+130, 10); err != nil || len(jobs) != 0 {
		t.Errorf("claim after done: %d jobs, %v", len(jobs), err)
	}
	_, err := s.RunBulkJob(t.Context(), claim, 10, t0+6)
	wantCode(t, err, licensor.CodeConflict)
}

// testBulkSuspend suspends and reinstates by filter, following the rules
// of the single actions: refusals counted and sampled, repeats unchanged.
func testBulkSuspend(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	stop := t0 + 10
	st := func(s licensor.Status) *licensor.Status { return &s }
	ls := createLicenses(t, s, t0,
		draft("u1", p.ID), draft("u1", p.ID), draft("u1", p.ID),
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, StopDate: &stop}, // EXPIRED at t0+20
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, Status: st(licensor.StatusSuspendedAdmin)},
		licensor.LicenseDraft{UserID: "u1", ProductID: p.ID, Status: st(licensor.StatusSuspended)},
		draft("u2", p.ID))
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	j := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkSuspend, Reason: "unpaid", Filter: byUser("u1")}, t0+20)
	runAll(t, s, claimOne(t, s, t0+20, t0+50), 4, t0+20)
	done := findJob(t, s, j.ID)
	wantCounts(t, done, counts{6, 6, 3, 2, 1})
	if want := []licensor.BulkRefusal{{ID: ls[3].ID, Code: licensor.CodeLicenseNotActive}}; !reflect.DeepEqual(done.RefusedSample, want) {
		t.Errorf("refused sample %s, want %s", show(done.RefusedSample), show(want))
	}
	want := []licensor.Status{licensor.StatusSuspended, licensor.StatusSuspended, licensor.StatusSuspended, licensor.StatusActive,
		licensor.StatusSuspendedAdmin, licensor.StatusSuspended, licensor.StatusActive}
	for i, l := range ls {
		if got := findLicense(t, s, l.ID).Status; got != want[i] {
			t.Errorf("license %d: %s, want %s", i, got, want[i])
		}
	}
	events := eventsSince(t, s, n)
	if len(events) != 3 {
		t.Fatalf("%d events, want 3", len(events))
	}
	for _, e := range events {
		if e.Type != licensor.EventLicenseSuspended || e.RequestID != licensor.BulkJobRequestID(j.ID) ||
			!strings.Contains(string(e.Data), `"reason":"unpaid"`) || !strings.Contains(string(e.Data), `"previous_status":"ACTIVE"`) {
			t.Errorf("event %s %s %s", e.Type, e.RequestID, e.Data)
		}
	}

	// A plain reinstate of the SUSPENDED ones, by a status filter: the
	// administrative suspension is refused, as a single reinstate would be.
	r := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkReinstate,
		Filter: licensor.LicenseFilter{ProductID: &p.ID, Statuses: []licensor.Status{licensor.StatusSuspended, licensor.StatusSuspendedAdmin}}}, t0+30)
	runAll(t, s, claimOne(t, s, t0+30, t0+60), 100, t0+30)
	wantCounts(t, findJob(t, s, r.ID), counts{5, 5, 4, 0, 1})
	for i, l := range ls {
		w := want[i]
		if w == licensor.StatusSuspended {
			w = licensor.StatusActive
		}
		if got := findLicense(t, s, l.ID).Status; got != w {
			t.Errorf("license %d after reinstate: %s, want %s", i, got, w)
		}
	}

	// Matched on the effective status when the chunk reaches the license.
	a := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkSuspend, Status: licensor.StatusSuspendedAdmin,
		Filter: licensor.LicenseFilter{ProductID: &p.ID, Statuses: []licensor.Status{licensor.StatusActive}}}, t0+40)
	runAll(t, s, claimOne(t, s, t0+40, t0+70), 100, t0+40)
	wantCounts(t, findJob(t, s, a.ID), counts{5, 5, 5, 0, 0})
	if got := findLicense(t, s, ls[3].ID).Status; got != licensor.StatusActive { // stored ACTIVE, effective EXPIRED
		t.Errorf("expired license: %s", got)
	}
}

// testBulkLease: a claimed job is not claimed again before its lease
// ends; then it is, and the old claim writes nothing; the new one resumes
// at the cursor, so that every license is handled once.
func testBulkLease(t *testing.T, s licensor.Store) {
	p := createProduct(t, s, monthly(), t0)
	var drafts []licensor.LicenseDraft
	for range 7 {
		drafts = append(drafts, draft("u1", p.ID))
	}
	createLicenses(t, s, t0, drafts...)
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	j := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0)
	old := claimOne(t, s, t0+1, t0+30)
	runChunk(t, s, old, 3, t0+2)
	if jobs, err := s.ClaimBulkJobs(t.Context(), t0+29, t0+60, 10); err != nil || len(jobs) != 0 {
		t.Fatalf("claim under a lease: %d jobs, %v", len(jobs), err)
	}
	next := claimOne(t, s, t0+30, t0+60)
	if next.Claims != old.Claims+1 {
		t.Errorf("claims %d after %d", next.Claims, old.Claims)
	}
	if got := findJob(t, s, j.ID); got.Cursor == 0 || got.Processed != 3 || *got.StartedAt != t0+1 {
		t.Errorf("reclaimed: %s", show(got))
	}
	_, err := s.RunBulkJob(t.Context(), old, 3, t0+31)
	wantCode(t, err, licensor.CodeConflict)
	wantCode(t, s.FailBulkJob(t.Context(), old, "stale", t0+31), licensor.CodeConflict)
	runAll(t, s, next, 3, t0+31)
	wantCounts(t, findJob(t, s, j.ID), counts{7, 7, 7, 0, 0})
	events := eventsSince(t, s, n)
	var got []int64
	for _, e := range events {
		got = append(got, e.LicenseID)
	}
	if len(got) != 7 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 7 {
		t.Errorf("deleted %v, want 7 licenses once each in id order", got)
	}
}

// testBulkCancel: a cancelled job stops (what it did stays), a finished
// one cannot be cancelled; a failed job keeps its reason.
func testBulkCancel(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u1", p.ID), draft("u1", p.ID), draft("u1", p.ID))

	q := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0)
	c, err := s.CancelBulkJob(ctx, q.ID, at(t0+1))
	if err != nil || c.State != licensor.BulkCancelled || c.FinishedAt == nil || *c.FinishedAt != t0+1 {
		t.Fatalf("cancel queued: %s, %v", show(c), err)
	}
	if again, err := s.CancelBulkJob(ctx, q.ID, at(t0+2)); err != nil || !reflect.DeepEqual(*again, *c) {
		t.Errorf("cancel again: %s, %v", show(again), err)
	}
	if jobs, err := s.ClaimBulkJobs(ctx, t0+3, t0+33, 10); err != nil || len(jobs) != 0 {
		t.Errorf("claimed a cancelled job: %d, %v", len(jobs), err)
	}

	r := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0+4)
	claim := claimOne(t, s, t0+4, t0+34)
	runChunk(t, s, claim, 2, t0+5)
	if c, err := s.CancelBulkJob(ctx, r.ID, at(t0+6)); err != nil || c.State != licensor.BulkCancelled || c.Processed != 2 {
		t.Fatalf("cancel running: %s, %v", show(c), err)
	}
	_, err = s.RunBulkJob(ctx, claim, 2, t0+7)
	wantCode(t, err, licensor.CodeConflict)
	wantLicenseGone(t, s, ls[0].ID)
	wantLicenseGone(t, s, ls[1].ID)
	findLicense(t, s, ls[2].ID)
	findLicense(t, s, ls[3].ID)

	d := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkSuspend, Filter: byUser("u1")}, t0+8)
	runAll(t, s, claimOne(t, s, t0+8, t0+38), 10, t0+8)
	_, err = s.CancelBulkJob(ctx, d.ID, at(t0+9))
	wantCode(t, err, licensor.CodeConflict)
	_, err = s.CancelBulkJob(ctx, missingID, at(t0+9))
	wantCode(t, err, licensor.CodeBulkJobNotFound)

	f := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkReinstate, Filter: byUser("u1")}, t0+10)
	fc := claimOne(t, s, t0+10, t0+40)
	if err := s.FailBulkJob(ctx, fc, "boom", t0+11); err != nil {
		t.Fatal(err)
	}
	if got := findJob(t, s, f.ID); got.State != licensor.BulkFailed || got.Error != "boom" || *got.FinishedAt != t0+11 {
		t.Errorf("failed: %s", show(got))
	}
	wantCode(t, s.FailBulkJob(ctx, fc, "again", t0+12), licensor.CodeConflict)
	_, err = s.CancelBulkJob(ctx, f.ID, at(t0+12))
	wantCode(t, err, licensor.CodeConflict)
}

// testBulkConcurrent races workers that steal the job from each other at
// every claim (a lease that has always run out) with single deletes of
// the same licenses: every license is deleted once, by one of them.
func testBulkConcurrent(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, monthly(), t0)
	var drafts []licensor.LicenseDraft
	for range 60 {
		drafts = append(drafts, draft("u1", p.ID))
	}
	ls := createLicenses(t, s, t0, drafts...)
	n := len(allEvents(t, s, licensor.EventFilter{}, 100))
	j := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for range 2000 {
				if cur, err := s.FindBulkJobByID(ctx, j.ID); err != nil || cur.State == licensor.BulkDone {
					if err != nil {
						t.Errorf("worker %d: %v", w, err)
					}
					return
				}
				jobs, err := s.ClaimBulkJobs(ctx, t0+1, t0+1, 1)
				if err != nil {
					t.Errorf("worker %d: claim: %v", w, err)
					return
				}
				for _, got := range jobs {
					claim := licensor.BulkClaim{JobID: got.ID, Claims: got.Claims, LeaseUntil: t0 + 1}
					for {
						chunk, err := s.RunBulkJob(ctx, claim, 4, t0+1)
						if licensor.ErrorCode(err) == licensor.CodeConflict {
							break
						}
						if err != nil {
							t.Errorf("worker %d: run: %v", w, err)
							return
						}
						if chunk.Job.State == licensor.BulkDone {
							return
						}
					}
				}
			}
			t.Errorf("worker %d gave up", w)
		})
	}
	wg.Go(func() {
		for i := 0; i < len(ls); i += 3 {
			if _, _, err := s.DeleteLicenses(ctx, []int64{ls[i].ID}, true, at(t0+1)); err != nil {
				t.Errorf("delete: %v", err)
			}
		}
	})
	wg.Wait()
	seen := map[int64]int{}
	bulk := 0
	for _, e := range eventsSince(t, s, n) {
		seen[e.LicenseID]++
		if e.RequestID == licensor.BulkJobRequestID(j.ID) {
			bulk++
		}
	}
	for _, l := range ls {
		if seen[l.ID] != 1 {
			t.Errorf("license %d deleted %d times", l.ID, seen[l.ID])
		}
		wantLicenseGone(t, s, l.ID)
	}
	done := findJob(t, s, j.ID)
	if done.State != licensor.BulkDone || done.Changed != int64(bulk) || done.Processed != done.Changed {
		t.Errorf("job %s, %d bulk events", show(done), bulk)
	}
}

// testBulkIdempotency: the response of a create is stored with the job.
func testBulkIdempotency(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	claim := &licensor.IdempotencyClaim{APIKeyID: 1, Key: "k", Fingerprint: "fp", ExpiresAt: t0 + day,
		Render: licensor.Renders{BulkJob: func(j *licensor.BulkJob) (licensor.StoredResponse, error) {
			return licensor.StoredResponse{Status: 202, Body: []byte(show(j.ID))}, nil
		}}}
	if r, err := s.ClaimIdempotencyKey(ctx, claim, t0, t0-60); err != nil || r != nil {
		t.Fatalf("claim: %v %v", r, err)
	}
	c := at(t0)
	c.Idempotency = claim
	j := licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}
	if err := s.CreateBulkJob(ctx, &j, c); err != nil {
		t.Fatal(err)
	}
	if !claim.Stored {
		t.Error("the response was not stored with the job")
	}
	r, err := s.ClaimIdempotencyKey(ctx, &licensor.IdempotencyClaim{APIKeyID: 1, Key: "k", Fingerprint: "fp", ExpiresAt: t0 + day}, t0+1, t0-59)
	if err != nil || r == nil || r.Status != 202 || string(r.Body) != show(j.ID) {
		t.Errorf("replay: %+v, %v", r, err)
	}
}

// testBulkPrune: finished jobs go with the history, pending ones stay.
func testBulkPrune(t *testing.T, s licensor.Store) {
	done := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0)
	runAll(t, s, claimOne(t, s, t0, t0+30), 10, t0)
	pending := newBulkJob(t, s, licensor.BulkJob{Action: licensor.BulkDelete, Filter: byUser("u1")}, t0)
	for {
		n, err := s.PruneHistory(t.Context(), t0+1, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	_, err := s.FindBulkJobByID(t.Context(), done.ID)
	wantCode(t, err, licensor.CodeBulkJobNotFound)
	findJob(t, s, pending.ID)
}
