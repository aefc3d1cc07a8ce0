package webhook_test

import (
	"context"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

// TestPausedWebhook: a paused webhook's receiver gets nothing while
// another webhook's gets every event; its deliveries are queued all the
// same, and once it is resumed they all arrive, each license's in commit
// order.
func TestPausedWebhook(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		s := open(t)
		ctx := context.Background()
		paused, active := newReceiver(t, ok), newReceiver(t, ok)
		pw := subscribe(t, s, paused, "")
		subscribe(t, s, active, "")
		c := func() licensor.Change { return licensor.Change{Time: time.Now().Unix(), Actor: "ops"} }
		if _, err := s.UpdateWebhook(ctx, pw.ID, licensor.WebhookPatch{Paused: new(true)}, c()); err != nil {
			t.Fatal(err)
		}
		run(t, s, webhook.Options{Policy: loopback})
		events := workload(t, s, 20)
		waitFor(t, "the active receiver's deliveries", func() bool { return hasAll(active, events) })
		pending := licensor.DeliveryPending
		waitFor(t, "the paused webhook's deliveries to be queued", func() bool {
			page, err := s.FindDeliveries(ctx, licensor.DeliveryQuery{WebhookID: pw.ID, State: &pending, Limit: licensor.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			return len(page.Deliveries) == len(events)
		})
		time.Sleep(1500 * time.Millisecond) // more than a poll of the dispatcher
		paused.mu.Lock()
		requests := paused.requests
		paused.mu.Unlock()
		if requests != 0 {
			t.Fatalf("the paused webhook's receiver got %d requests", requests)
		}

		if _, err := s.UpdateWebhook(ctx, pw.ID, licensor.WebhookPatch{Paused: new(false)}, c()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the resumed webhook's backlog", func() bool { return hasAll(paused, events) })
		checkOrder(t, paused)
		if n := len(paused.snapshot()); n != len(events) {
			t.Errorf("the resumed webhook's receiver accepted %d requests for %d events", n, len(events))
		}
	})
}
