package webhook_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/webhook"
)

// hangingReceiver is a real HTTP endpoint that never answers: each
// request blocks until the client gives up (its timeout, or the
// dispatcher stopping). It counts the requests it holds.
type hangingReceiver struct {
	srv *httptest.Server

	mu                      sync.Mutex
	holding, most, finished int
}

func newHangingReceiver(t *testing.T) *hangingReceiver {
	h := &hangingReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the body: only then does the server notice the client
		// hanging up (and cancel r's context).
		_, _ = io.Copy(io.Discard, r.Body)
		h.mu.Lock()
		h.holding++
		h.most = max(h.most, h.holding)
		h.mu.Unlock()
		<-r.Context().Done()
		h.mu.Lock()
		h.holding--
		h.finished++
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// counts returns the requests held now, the most held at once, and how
// many ended (timed out).
func (h *hangingReceiver) counts() (holding, most, finished int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.holding, h.most, h.finished
}

// hangingScenario subscribes a hanging receiver and gives it a backlog
// of backlog licenses (more than the dispatcher's pool), waits until it
// holds attempts, then subscribes a healthy receiver and creates n more
// licenses. It waits until the healthy receiver has all n
// license.created events or the hanging receiver's first attempt ended
// (its timeout), and returns both receivers and the time from the first
// of the n writes.
func hangingScenario(t *testing.T, s licensor.Store, opts webhook.Options, backlog, n int) (*hangingReceiver, *receiver, time.Time) {
	t.Helper()
	ctx := context.Background()
	c := func() licensor.Change { return licensor.Change{Time: time.Now().Unix(), Actor: "bss"} }
	hanging := newHangingReceiver(t)
	hw := licensor.Webhook{URL: hanging.srv.URL + "/hook", Secret: licensor.NewWebhookSecret()}
	if err := s.CreateWebhook(ctx, &hw, c()); err != nil {
		t.Fatal(err)
	}
	healthy := newReceiver(t, ok)
	run(t, s, opts)
	p := licensor.NewProduct("Sports")
	if err := s.CreateProduct(ctx, &p, c()); err != nil {
		t.Fatal(err)
	}
	for i := range backlog {
		if _, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: fmt.Sprint("backlog-", i), ProductID: p.ID}}, c()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the hanging receiver to hold attempts", func() bool {
		holding, _, _ := hanging.counts()
		return holding > 0
	})
	subscribe(t, s, healthy, "")
	start := time.Now()
	for i := range n {
		if _, err := s.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: fmt.Sprint("u-", i), ProductID: p.ID}}, c()); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the healthy receiver's deliveries or the hanging receiver's timeout", func() bool {
		_, _, finished := hanging.counts()
		return len(healthy.ids()) >= n || finished > 0
	})
	return hanging, healthy, start
}

// TestMeasureHangingReceiver logs how long 12 deliveries to a healthy
// receiver take while another webhook's receiver hangs, with the
// dispatcher's defaults (10 s timeout). It asserts nothing.
//
//	go test -count=1 -run TestMeasureHangingReceiver -v ./internal/webhook
func TestMeasureHangingReceiver(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		s := open(t)
		hanging, healthy, start := hangingScenario(t, s, webhook.Options{Policy: loopback}, 24, 12)
		waitFor(t, "the healthy receiver's deliveries", func() bool { return len(healthy.ids()) >= 12 })
		took := time.Since(start)
		holding, most, finished := hanging.counts()
		t.Logf("%s: 12 deliveries to the healthy receiver took %v; the hanging receiver held %d attempts then (at most %d at once), %d had timed out",
			t.Name(), took.Round(time.Millisecond), holding, most, finished)
	})
}

// TestHangingReceiverIsolated: a webhook whose receiver hangs, with a
// backlog larger than the dispatcher's pool, holds at most its share of
// the attempts (Options.EndpointConcurrency), and another webhook's
// deliveries all arrive, in order, before the hanging attempts time out.
func TestHangingReceiverIsolated(t *testing.T) {
	forEachEngine(t, func(t *testing.T, open func(t *testing.T) licensor.Store) {
		for _, tc := range []struct {
			name  string
			opts  webhook.Options
			share int
		}{
			{"Defaults", webhook.Options{}, webhook.DefaultEndpointConcurrency},
			{"Configured", webhook.Options{Concurrency: 5, EndpointConcurrency: 2}, 2},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := open(t)
				opts := tc.opts
				// Far longer than the healthy deliveries take, even on a
				// loaded machine: they must all be done before it.
				opts.Policy, opts.Timeout = loopback, time.Minute
				const n = 12
				hanging, healthy, _ := hangingScenario(t, s, opts, 24, n)
				if _, _, finished := hanging.counts(); finished > 0 {
					t.Fatalf("the healthy receiver had %d of %d deliveries when the first hanging attempt timed out", len(healthy.ids()), n)
				}
				// (Its last attempts may be on their way to it.)
				waitFor(t, "the hanging receiver to hold its share", func() bool {
					holding, _, _ := hanging.counts()
					return holding >= tc.share
				})
				if holding, most, _ := hanging.counts(); most != tc.share || holding != tc.share {
					t.Errorf("the hanging receiver holds %d attempts (at most %d at once), want its share of %d", holding, most, tc.share)
				}
				checkOrder(t, healthy)
				for _, m := range healthy.snapshot() {
					if m.msg.Type != licensor.EventLicenseCreated {
						t.Errorf("the healthy receiver got a %s", m.msg.Type)
					}
				}
			})
		}
	})
}
