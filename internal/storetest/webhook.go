package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/licensor/licensor"
)

// newWebhook stores a webhook for types at time ts.
func newWebhook(t *testing.T, s licensor.Store, ts int64, types ...licensor.EventType) licensor.Webhook {
	t.Helper()
	w := licensor.Webhook{URL: "https://example.com/hook", EventTypes: types, Secret: licensor.NewWebhookSecret()}
	if err := w.Validate(); err != nil {
		t.Fatalf("test webhook is invalid: %v", err)
	}
	if err := s.CreateWebhook(t.Context(), &w, at(ts)); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	return w
}

func testWebhookCRUD(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	if ws, err := s.FindWebhooks(ctx); err != nil || ws == nil || len(ws) != 0 {
		t.Errorf("FindWebhooks of none: %v, %v; want an empty list", ws, err)
	}
	a := newWebhook(t, s, t0)
	b := newWebhook(t, s, t0+1, licensor.EventLicenseCreated, licensor.EventLicenseDeleted)
	if a.ID <= 0 || b.ID <= a.ID || a.CreatedAt != t0 || a.UpdatedAt != t0 {
		t.Errorf("created webhooks: %s %s", show(a), show(b))
	}
	got, err := s.FindWebhookByID(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, b) {
		t.Errorf("FindWebhookByID:\n got %s\nwant %s", show(got), show(b))
	}
	ws, err := s.FindWebhooks(ctx)
	if err != nil || len(ws) != 2 || !reflect.DeepEqual(ws[0], a) || !reflect.DeepEqual(ws[1], b) {
		t.Errorf("FindWebhooks: %v %s", err, show(ws))
	}

	url, secret := "https://example.net/other", licensor.NewWebhookSecret()
	updated, err := s.UpdateWebhook(ctx, b.ID, licensor.WebhookPatch{URL: &url, EventTypes: &[]licensor.EventType{}, Secret: &secret}, at(t0+2))
	if err != nil {
		t.Fatal(err)
	}
	want := b
	want.URL, want.EventTypes, want.Secret, want.UpdatedAt = url, []licensor.EventType{}, secret, t0+2
	if !reflect.DeepEqual(*updated, want) {
		t.Errorf("UpdateWebhook:\n got %s\nwant %s", show(updated), show(want))
	}
	if got, _ := s.FindWebhookByID(ctx, b.ID); !reflect.DeepEqual(*got, want) {
		t.Errorf("after UpdateWebhook:\n got %s\nwant %s", show(got), show(want))
	}
	_, err = s.UpdateWebhook(ctx, b.ID, licensor.WebhookPatch{URL: new("ftp://x")}, at(t0+3))
	wantCode(t, err, licensor.CodeInvalidAttribute)
	_, err = s.UpdateWebhook(ctx, missingID, licensor.WebhookPatch{}, at(t0+3))
	wantCode(t, err, licensor.CodeWebhookNotFound)

	if err := s.DeleteWebhook(ctx, a.ID, at(t0+4)); err != nil {
		t.Fatal(err)
	}
	_, err = s.FindWebhookByID(ctx, a.ID)
	wantCode(t, err, licensor.CodeWebhookNotFound)
	wantCode(t, s.DeleteWebhook(ctx, a.ID, at(t0+5)), licensor.CodeWebhookNotFound)
	_, err = s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: a.ID})
	wantCode(t, err, licensor.CodeWebhookNotFound)
}

// dispatchAll queues every committed event.
func dispatchAll(t *testing.T, s licensor.Store, now int64) int {
	t.Helper()
	total := 0
	for {
		n, err := s.DispatchEvents(t.Context(), now, 3)
		if err != nil {
			t.Fatalf("DispatchEvents: %v", err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
}

func claim(t *testing.T, s licensor.Store, now int64) []licensor.DeliveryJob {
	t.Helper()
	jobs, err := s.ClaimDeliveries(t.Context(), licensor.DeliveryClaim{Now: now, LeaseUntil: now + 30, Limit: 100})
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	return jobs
}

func jobSeqs(jobs []licensor.DeliveryJob) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.EventSeq
	}
	slices.Sort(out)
	return out
}

func complete(t *testing.T, s licensor.Store, j licensor.DeliveryJob, o licensor.DeliveryOutcome) {
	t.Helper()
	o.ID, o.Attempt = j.ID, j.Attempts
	if err := s.CompleteDelivery(t.Context(), o); err != nil {
		t.Fatalf("CompleteDelivery: %v", err)
	}
}

// testWebhookDispatch checks what is queued: the events after the
// webhook's creation, of its types, once.
func testWebhookDispatch(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0) // before the webhooks: not delivered
	all := newWebhook(t, s, t0)
	created := newWebhook(t, s, t0, licensor.EventLicenseCreated)
	ls := createLicenses(t, s, t0+1, draft("u1", p.ID), draft("u2", p.ID)) // seqs 2, 3
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+2)); err != nil {
		t.Fatal(err)
	} // seq 4
	if n := dispatchAll(t, s, t0+3); n != 3+2 {
		t.Errorf("DispatchEvents queued %d deliveries, want 5", n)
	}
	if n := dispatchAll(t, s, t0+3); n != 0 {
		t.Errorf("DispatchEvents again queued %d deliveries, want 0", n)
	}
	log := func(w licensor.Webhook) []licensor.Delivery {
		page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: w.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return page.Deliveries
	}
	got := log(all)
	if len(got) != 3 || got[0].EventSeq != 4 || got[2].EventSeq != 2 || got[0].EventType != licensor.EventLicenseDeleted {
		t.Fatalf("deliveries of the webhook for everything (newest first): %s", show(got))
	}
	for _, d := range got {
		if d.State != licensor.DeliveryPending || d.Attempts != 0 || d.CreatedAt != t0+3 || d.NextAttemptAt != t0+3 ||
			d.WebhookID != all.ID || d.LastAttemptAt != nil || d.LastStatus != nil || d.DeliveredAt != nil {
			t.Errorf("new delivery: %s", show(d))
		}
	}
	if got := log(created); len(got) != 2 || got[0].EventSeq != 3 || got[1].EventSeq != 2 {
		t.Errorf("deliveries of the license.created webhook: %s", show(got))
	}
	// Paging and filters of the log.
	page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: all.ID, Limit: 2})
	if err != nil || len(page.Deliveries) != 2 || page.Next != page.Deliveries[1].ID {
		t.Fatalf("first page of the log: %v %s", err, show(page))
	}
	page, err = s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: all.ID, Limit: 2, Before: page.Next})
	if err != nil || len(page.Deliveries) != 1 || page.Next != 0 || page.Deliveries[0].EventSeq != 2 {
		t.Errorf("second page of the log: %v %s", err, show(page))
	}
	page, err = s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: all.ID, EventSeq: new(int64(3))})
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].EventSeq != 3 {
		t.Errorf("log filtered by event: %v %s", err, show(page))
	}
	delivered := licensor.DeliveryDelivered
	page, err = s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: all.ID, State: &delivered})
	if err != nil || len(page.Deliveries) != 0 {
		t.Errorf("log filtered by state: %v %s", err, show(page))
	}
}

// testWebhookOrder checks the delivery rules: one license's events go out
// in commit order, one at a time; other licenses are not held up; a
// failure for good lets the next one go.
func testWebhookOrder(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, t0)
	p := createProduct(t, s, licensor.NewProduct("P"), t0)               // seq 1
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID)) // seqs 2, 3
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID, ls[1].ID}, false, at(t0+1)); err != nil {
		t.Fatal(err)
	} // seqs 4, 5
	dispatchAll(t, s, t0+1)

	now := t0 + 2
	jobs := claim(t, s, now)
	if got := jobSeqs(jobs); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Fatalf("first claim: event seqs %v, want [1 2 3] (one per license or product)", got)
	}
	for _, j := range jobs {
		if j.URL != w.URL || j.Secret != w.Secret || j.Attempts != 1 || j.Event.Seq != j.EventSeq {
			t.Errorf("job: %s", show(j))
		}
	}
	if j := jobs[1]; j.Event.Type != licensor.EventLicenseCreated || j.Event.LicenseID != ls[0].ID ||
		string(j.Event.Data) != string(licensor.LicenseResource(&ls[0], t0)) {
		t.Errorf("job's event: %s", show(j.Event))
	}
	if got := claim(t, s, now); len(got) != 0 {
		t.Errorf("claim while leased: %v, want none", jobSeqs(got))
	}
	byseq := map[int64]licensor.DeliveryJob{}
	for _, j := range jobs {
		byseq[j.EventSeq] = j
	}
	complete(t, s, byseq[1], licensor.DeliveryOutcome{At: now, Status: 204, Delivered: true})
	complete(t, s, byseq[2], licensor.DeliveryOutcome{At: now, Status: 500, Error: "HTTP 500", RetryAt: now + 10})
	complete(t, s, byseq[3], licensor.DeliveryOutcome{At: now, Status: 200, Delivered: true})

	// License 1 waits for its retry; license 2 goes on.
	if got := jobSeqs(claim(t, s, now)); !slices.Equal(got, []int64{5}) {
		t.Errorf("claim after the first round: %v, want [5]", got)
	}
	if got := claim(t, s, now+9); len(got) != 0 {
		t.Errorf("claim before the retry is due: %v, want none", jobSeqs(got))
	}
	retry := claim(t, s, now+10)
	if got := jobSeqs(retry); !slices.Equal(got, []int64{2}) || retry[0].Attempts != 2 {
		t.Fatalf("claim when the retry is due: %s, want seq 2 at attempt 2", show(retry))
	}
	// It fails for good: the next event of the license may go.
	complete(t, s, retry[0], licensor.DeliveryOutcome{At: now + 10, Error: "connection refused"})
	next := claim(t, s, now+10)
	if got := jobSeqs(next); !slices.Equal(got, []int64{4}) {
		t.Errorf("claim after a failure for good: %v, want [4]", got)
	}

	page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: w.ID, EventSeq: new(int64(2))})
	if err != nil || len(page.Deliveries) != 1 {
		t.Fatal(err, show(page))
	}
	d := page.Deliveries[0]
	if d.State != licensor.DeliveryFailed || d.Attempts != 2 || d.LastAttemptAt == nil || *d.LastAttemptAt != now+10 ||
		d.LastStatus != nil || d.LastError != "connection refused" || d.DeliveredAt != nil {
		t.Errorf("failed delivery: %s", show(d))
	}
	page, err = s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: w.ID, EventSeq: new(int64(1))})
	if err != nil || len(page.Deliveries) != 1 {
		t.Fatal(err, show(page))
	}
	d = page.Deliveries[0]
	if d.State != licensor.DeliveryDelivered || d.Attempts != 1 || d.LastStatus == nil || *d.LastStatus != 204 ||
		d.DeliveredAt == nil || *d.DeliveredAt != now {
		t.Errorf("delivered delivery: %s", show(d))
	}
}

// testWebhookClaimPerWebhook checks the room of each webhook in a claim
// (DeliveryClaim.PerWebhook and InFlight): no more of one webhook than its
// room, the oldest of each first, the others found even when the oldest
// of the whole queue are of a webhook without room (a hanging receiver's
// backlog), and a license's events still in order.
func testWebhookClaimPerWebhook(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0) // before the webhooks: not delivered
	a, b := newWebhook(t, s, t0), newWebhook(t, s, t0)
	ls := createLicenses(t, s, t0, draft("u1", p.ID), draft("u2", p.ID), draft("u3", p.ID),
		draft("u4", p.ID), draft("u5", p.ID), draft("u6", p.ID)) // seqs 2..7
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0)); err != nil {
		t.Fatal(err)
	} // seq 8, after seq 2 of the same license
	// In one round: a's deliveries first in the queue, then b's.
	if n, err := s.DispatchEvents(ctx, t0, 100); err != nil || n != 14 {
		t.Fatalf("DispatchEvents: %d, %v; want 14", n, err)
	}
	claimOf := func(c licensor.DeliveryClaim) (ofA, ofB []int64) {
		t.Helper()
		c.Now, c.LeaseUntil = t0, t0+3600
		jobs, err := s.ClaimDeliveries(ctx, c)
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		for _, j := range jobs {
			switch j.WebhookID {
			case a.ID:
				ofA = append(ofA, j.EventSeq)
			case b.ID:
				ofB = append(ofB, j.EventSeq)
			}
		}
		slices.Sort(ofA)
		slices.Sort(ofB)
		return ofA, ofB
	}
	check := func(step string, gotA, gotB, wantA, wantB []int64) {
		t.Helper()
		if !slices.Equal(gotA, wantA) || !slices.Equal(gotB, wantB) {
			t.Errorf("%s: claimed event seqs %v of a and %v of b, want %v and %v", step, gotA, gotB, wantA, wantB)
		}
	}
	// a has no room, and the oldest of the queue are all a's: b's
	// oldest are claimed all the same.
	gotA, gotB := claimOf(licensor.DeliveryClaim{Limit: 2, PerWebhook: 3, InFlight: map[int64]int{a.ID: 3}})
	check("a without room, limit 2", gotA, gotB, nil, []int64{2, 3})
	// b has no room: a's oldest, up to a's room.
	gotA, gotB = claimOf(licensor.DeliveryClaim{Limit: 100, PerWebhook: 2, InFlight: map[int64]int{b.ID: 2}})
	check("b without room", gotA, gotB, []int64{2, 3}, nil)
	// One more each.
	gotA, gotB = claimOf(licensor.DeliveryClaim{Limit: 100, PerWebhook: 3, InFlight: map[int64]int{a.ID: 2, b.ID: 2}})
	check("room for one each", gotA, gotB, []int64{4}, []int64{4})
	// Both full: nothing.
	gotA, gotB = claimOf(licensor.DeliveryClaim{Limit: 100, PerWebhook: 3, InFlight: map[int64]int{a.ID: 3, b.ID: 3}})
	check("both without room", gotA, gotB, nil, nil)
	// The room of each webhook counts what this claim takes: with 2 each
	// and a limit of 3, the three oldest that fit.
	gotA, gotB = claimOf(licensor.DeliveryClaim{Limit: 3, PerWebhook: 2})
	check("room of 2, limit 3", gotA, gotB, []int64{5, 6}, []int64{5})
	// Without a limit per webhook: the rest, but not license 1's
	// deletion (seq 8) while its creation (seq 2) is in flight.
	gotA, gotB = claimOf(licensor.DeliveryClaim{Limit: 100})
	check("the rest", gotA, gotB, []int64{7}, []int64{6, 7})
}

// testWebhookLease checks that an attempt whose lease ran out is claimed
// again, and that the late outcome of the first attempt is ignored.
func testWebhookLease(t *testing.T, s licensor.Store) {
	newWebhook(t, s, t0)
	createProduct(t, s, licensor.NewProduct("P"), t0)
	dispatchAll(t, s, t0)
	first := claim(t, s, t0)
	if len(first) != 1 {
		t.Fatalf("claim: %d jobs, want 1", len(first))
	}
	if got := claim(t, s, t0+29); len(got) != 0 {
		t.Errorf("claim before the lease ends: %d jobs, want none", len(got))
	}
	second := claim(t, s, t0+30)
	if len(second) != 1 || second[0].Attempts != 2 {
		t.Fatalf("claim after the lease: %s, want the delivery at attempt 2", show(second))
	}
	complete(t, s, first[0], licensor.DeliveryOutcome{At: t0 + 31, Error: "late", RetryAt: t0 + 40})
	complete(t, s, second[0], licensor.DeliveryOutcome{At: t0 + 31, Status: 200, Delivered: true})
	page, err := s.FindDeliveries(t.Context(), licensor.DeliveryQuery{WebhookID: second[0].WebhookID})
	if err != nil {
		t.Fatal(err)
	}
	if d := page.Deliveries[0]; d.State != licensor.DeliveryDelivered || d.LastError != "" {
		t.Errorf("delivery after a late outcome: %s", show(d))
	}
	// A delivered delivery is not claimed again.
	if got := claim(t, s, t0+100); len(got) != 0 {
		t.Errorf("claim after delivery: %d jobs", len(got))
	}
}

func testWebhookRedeliver(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, t0)
	other := newWebhook(t, s, t0)
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	createLicenses(t, s, t0, draft("u1", p.ID))
	dispatchAll(t, s, t0)
	jobs := claim(t, s, t0)
	var mine []licensor.DeliveryJob
	for _, j := range jobs {
		if j.WebhookID == w.ID {
			mine = append(mine, j)
		}
	}
	if len(mine) != 2 {
		t.Fatalf("claimed %d deliveries of the webhook, want 2", len(mine))
	}
	complete(t, s, mine[0], licensor.DeliveryOutcome{At: t0, Status: 200, Delivered: true})
	complete(t, s, mine[1], licensor.DeliveryOutcome{At: t0, Status: 503, RetryAt: t0 + 3600})

	// A finished delivery is queued again as a new one.
	again, err := s.Redeliver(ctx, w.ID, mine[0].ID, at(t0+5))
	if err != nil {
		t.Fatal(err)
	}
	if again.ID == mine[0].ID || again.EventSeq != mine[0].EventSeq || again.State != licensor.DeliveryPending ||
		again.Attempts != 0 || again.CreatedAt != t0+5 || again.NextAttemptAt != t0+5 {
		t.Errorf("redelivery of a delivered delivery: %s", show(again))
	}
	// A pending one is made due now.
	due, err := s.Redeliver(ctx, w.ID, mine[1].ID, at(t0+5))
	if err != nil {
		t.Fatal(err)
	}
	if due.ID != mine[1].ID || due.NextAttemptAt != t0+5 || due.State != licensor.DeliveryPending {
		t.Errorf("redelivery of a pending delivery: %s", show(due))
	}
	got := claim(t, s, t0+5)
	var ids []int64
	for _, j := range got {
		ids = append(ids, j.ID)
	}
	slices.Sort(ids)
	if want := []int64{mine[1].ID, again.ID}; !slices.Equal(ids, sortedIDs(want)) {
		t.Errorf("claim after redeliveries: %v, want %v", ids, sortedIDs(want))
	}

	_, err = s.Redeliver(ctx, other.ID, mine[0].ID, at(t0+6))
	wantCode(t, err, licensor.CodeDeliveryNotFound)
	_, err = s.Redeliver(ctx, w.ID, missingID, at(t0+6))
	wantCode(t, err, licensor.CodeDeliveryNotFound)
	_, err = s.Redeliver(ctx, missingID, mine[0].ID, at(t0+6))
	wantCode(t, err, licensor.CodeWebhookNotFound)

	// Deleting a webhook deletes its log.
	if err := s.DeleteWebhook(ctx, w.ID, at(t0+7)); err != nil {
		t.Fatal(err)
	}
	if got := claim(t, s, t0+1000); len(got) != 0 {
		for _, j := range got {
			if j.WebhookID == w.ID {
				t.Errorf("claimed a delivery of a deleted webhook: %s", show(j))
			}
		}
	}
}

// testWebhookConcurrentDispatch races dispatchers and claimers (as several
// instances would): every event is queued once per webhook, and no
// delivery is claimed by two at once.
func testWebhookConcurrentDispatch(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	hooks := []licensor.Webhook{newWebhook(t, s, t0), newWebhook(t, s, t0, licensor.EventLicenseCreated)}
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	const licenses = 30
	var wg sync.WaitGroup
	var mu sync.Mutex
	claimed := map[int64]int{}
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.DispatchEvents(ctx, t0, 5); err != nil {
					t.Errorf("DispatchEvents: %v", err)
					return
				}
				// A room of one per webhook: the oldest of the queue are
				// often of one webhook, and the claim looks further.
				jobs, err := s.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: t0, LeaseUntil: t0 + 3600, Limit: 4, PerWebhook: 1})
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				perHook := map[int64]int{}
				for _, j := range jobs {
					if perHook[j.WebhookID]++; perHook[j.WebhookID] > 1 {
						t.Errorf("a claim with a room of one per webhook took %d of webhook %d", perHook[j.WebhookID], j.WebhookID)
					}
				}
				mu.Lock()
				for _, j := range jobs {
					claimed[j.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	for i := range licenses {
		createLicenses(t, s, t0, draft(fmt.Sprint("u", i), p.ID))
	}
	close(stop)
	wg.Wait()
	// What the racers left (a dispatcher skips webhooks another holds).
	dispatchAll(t, s, t0)
	for range 3 {
		jobs, err := s.ClaimDeliveries(ctx, licensor.DeliveryClaim{Now: t0, LeaseUntil: t0 + 3600, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		for _, j := range jobs {
			claimed[j.ID]++
		}
		mu.Unlock()
	}
	for i, h := range hooks {
		var seqs []int64
		before := int64(0)
		for {
			page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: h.ID, Before: before, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range page.Deliveries {
				seqs = append(seqs, d.EventSeq)
			}
			if page.Next == 0 {
				break
			}
			before = page.Next
		}
		want := licenses
		if i == 0 {
			want++ // product.created
		}
		slices.Sort(seqs)
		if len(seqs) != want || len(slices.Compact(slices.Clone(seqs))) != want {
			t.Errorf("webhook %d: %d deliveries (%d distinct events), want %d once each", h.ID, len(seqs), len(slices.Compact(seqs)), want)
		}
	}
	if len(claimed) != 2*licenses+1 {
		t.Errorf("claimed %d distinct deliveries, want %d", len(claimed), 2*licenses+1)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %d claimed %d times within its lease", id, n)
		}
	}
}

// testWebhookPrune checks that finished deliveries are pruned with the
// history, and pending ones only when their event goes.
func testWebhookPrune(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	w := newWebhook(t, s, t0)
	p := createProduct(t, s, licensor.NewProduct("P"), t0)
	createLicenses(t, s, t0+5*day, draft("u1", p.ID))
	dispatchAll(t, s, t0)
	jobs := claim(t, s, t0)
	if len(jobs) != 2 {
		t.Fatalf("claimed %d, want 2", len(jobs))
	}
	for _, j := range jobs {
		if j.EventSeq == 1 {
			complete(t, s, j, licensor.DeliveryOutcome{At: t0, Status: 200, Delivered: true})
		} else {
			complete(t, s, j, licensor.DeliveryOutcome{At: t0, Status: 500, RetryAt: t0 + 60})
		}
	}
	// Before t0+day: event 1 and its delivered delivery.
	n, err := s.PruneHistory(ctx, t0+day, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneHistory: %d rows, want 2 (one event, one delivery)", n)
	}
	page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: w.ID})
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].EventSeq != 2 {
		t.Errorf("deliveries after pruning: %v %s; want the pending one of event 2", err, show(page))
	}
	// Pruning event 2 takes its pending delivery with it.
	n, err = s.PruneHistory(ctx, t0+6*day, 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("PruneHistory: %d rows, want 2 (one event, one pending delivery)", n)
	}
	if got := claim(t, s, t0+100); len(got) != 0 {
		t.Errorf("claimed a delivery of a pruned event: %s", show(got))
	}
}
