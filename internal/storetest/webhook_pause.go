package storetest

import (
	"slices"
	"testing"

	"github.com/licensor/licensor"
)

// testWebhookPause checks a paused webhook: its events are still queued,
// none of its deliveries is claimed while the other webhooks' are (also
// when its backlog is the oldest of the queue, with or without a room per
// webhook), pausing again keeps the time it was paused, an attempt in
// flight when it was paused is recorded but not retried, and once resumed
// its backlog is claimed in the usual order.
func testWebhookPause(t *testing.T, s licensor.Store) {
	ctx := t.Context()
	p := createProduct(t, s, licensor.NewProduct("P"), t0) // before the webhooks: not delivered
	a := licensor.Webhook{URL: "https://example.com/paused", Secret: licensor.NewWebhookSecret(), PausedAt: new(int64(1))}
	if err := s.CreateWebhook(ctx, &a, at(t0)); err != nil {
		t.Fatal(err)
	}
	if a.PausedAt == nil || *a.PausedAt != t0 || !a.Paused() {
		t.Fatalf("created paused: %s; want paused at t0", show(a))
	}
	if got, err := s.FindWebhookByID(ctx, a.ID); err != nil || got.PausedAt == nil || *got.PausedAt != t0 {
		t.Fatalf("FindWebhookByID of a paused webhook: %s, %v", show(got), err)
	}
	b := newWebhook(t, s, t0)
	ls := createLicenses(t, s, t0+1, draft("u1", p.ID), draft("u2", p.ID), draft("u3", p.ID)) // seqs 2..4
	if _, _, err := s.DeleteLicenses(ctx, []int64{ls[0].ID}, false, at(t0+1)); err != nil {
		t.Fatal(err)
	} // seq 5
	if n := dispatchAll(t, s, t0+1); n != 8 {
		t.Fatalf("DispatchEvents queued %d deliveries, want 4 for each webhook, the paused one included", n)
	}
	claimed := func(c licensor.DeliveryClaim) (ofA, ofB []licensor.DeliveryJob) {
		t.Helper()
		c.LeaseUntil = c.Now + 30
		jobs, err := s.ClaimDeliveries(ctx, c)
		if err != nil {
			t.Fatalf("ClaimDeliveries: %v", err)
		}
		for _, j := range jobs {
			if j.WebhookID == a.ID {
				ofA = append(ofA, j)
			} else {
				ofB = append(ofB, j)
			}
		}
		return ofA, ofB
	}
	deliver := func(now int64, jobs []licensor.DeliveryJob) {
		t.Helper()
		for _, j := range jobs {
			complete(t, s, j, licensor.DeliveryOutcome{At: now, Status: 204, Delivered: true})
		}
	}
	check := func(step string, got []licensor.DeliveryJob, want ...int64) {
		t.Helper()
		if seqs := jobSeqs(got); !slices.Equal(seqs, want) {
			t.Errorf("%s: claimed event seqs %v, want %v", step, seqs, want)
		}
	}

	now := t0 + 2
	ofA, ofB := claimed(licensor.DeliveryClaim{Now: now, Limit: 100})
	check("paused webhook", ofA)
	check("active webhook", ofB, 2, 3, 4)
	deliver(now, ofB)
	ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 100})
	check("paused webhook, second claim", ofA)
	check("active webhook, second claim", ofB, 5)
	deliver(now, ofB)
	if ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 100}); len(ofA)+len(ofB) != 0 {
		t.Errorf("only the paused backlog is left, yet claimed %v and %v", jobSeqs(ofA), jobSeqs(ofB))
	}

	// The paused backlog is the oldest of the queue: a claim smaller than
	// it still finds the active webhook's deliveries.
	createLicenses(t, s, t0+3, draft("u4", p.ID), draft("u5", p.ID)) // seqs 6, 7
	dispatchAll(t, s, t0+3)
	now = t0 + 3
	ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 2})
	check("limit 2 behind the paused backlog", ofA)
	check("limit 2 behind the paused backlog, active", ofB, 6, 7)
	deliver(now, ofB)
	createLicenses(t, s, t0+4, draft("u6", p.ID), draft("u7", p.ID)) // seqs 8, 9
	dispatchAll(t, s, t0+4)
	now = t0 + 4
	ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 2, PerWebhook: 5, InFlight: map[int64]int{b.ID: 1}})
	check("limit 2 and a room per webhook behind the paused backlog", ofA)
	check("limit 2 and a room per webhook behind the paused backlog, active", ofB, 8, 9)
	deliver(now, ofB)

	// Pausing again keeps the time; the update time moves.
	got, err := s.UpdateWebhook(ctx, a.ID, licensor.WebhookPatch{Paused: new(true)}, at(t0+5))
	if err != nil || got.PausedAt == nil || *got.PausedAt != t0 || got.UpdatedAt != t0+5 {
		t.Fatalf("pause again: %s, %v; want paused at t0, updated at t0+5", show(got), err)
	}
	// Resume: the backlog goes out, the first of each license first.
	got, err = s.UpdateWebhook(ctx, a.ID, licensor.WebhookPatch{Paused: new(false)}, at(t0+6))
	if err != nil || got.PausedAt != nil || got.Paused() || got.UpdatedAt != t0+6 {
		t.Fatalf("resume: %s, %v", show(got), err)
	}
	if got, _ := s.FindWebhookByID(ctx, a.ID); got.PausedAt != nil {
		t.Errorf("after resume, FindWebhookByID: %s", show(got))
	}
	now = t0 + 6
	ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 100})
	check("resumed", ofA, 2, 3, 4, 6, 7, 8, 9)
	check("resumed, active", ofB)
	deliver(now, ofA)
	ofA, _ = claimed(licensor.DeliveryClaim{Now: now, Limit: 100})
	check("resumed, the license's next event", ofA, 5)
	deliver(now, ofA)

	// Pause with an attempt in flight: its outcome is recorded, its retry
	// waits for the resumption.
	createLicenses(t, s, t0+7, draft("u8", p.ID)) // seq 10
	dispatchAll(t, s, t0+7)
	now = t0 + 7
	ofA, ofB = claimed(licensor.DeliveryClaim{Now: now, Limit: 100})
	check("before the pause", ofB, 10)
	deliver(now, ofA)
	if _, err := s.UpdateWebhook(ctx, b.ID, licensor.WebhookPatch{Paused: new(true)}, at(now)); err != nil {
		t.Fatal(err)
	}
	complete(t, s, ofB[0], licensor.DeliveryOutcome{At: now, Status: 503, Error: "HTTP 503", RetryAt: now + 1})
	page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: b.ID, EventSeq: new(int64(10))})
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].Attempts != 1 || page.Deliveries[0].LastError != "HTTP 503" ||
		page.Deliveries[0].State != licensor.DeliveryPending {
		t.Fatalf("the attempt in flight at the pause: %s, %v", show(page), err)
	}
	if ofA, ofB = claimed(licensor.DeliveryClaim{Now: now + 10, Limit: 100}); len(ofA)+len(ofB) != 0 {
		t.Errorf("the paused webhook's retry was claimed: %v %v", jobSeqs(ofA), jobSeqs(ofB))
	}
	if _, err := s.UpdateWebhook(ctx, b.ID, licensor.WebhookPatch{Paused: new(false)}, at(now+10)); err != nil {
		t.Fatal(err)
	}
	_, ofB = claimed(licensor.DeliveryClaim{Now: now + 10, Limit: 100})
	if check("retry after the resumption", ofB, 10); len(ofB) == 1 && ofB[0].Attempts != 2 {
		t.Errorf("retry after the resumption: attempt %d, want 2", ofB[0].Attempts)
	}
}
