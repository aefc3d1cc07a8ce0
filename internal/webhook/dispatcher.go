// Package webhook delivers the change feed to webhook subscribers: signed
// as the Standard Webhooks specification says, at least once, in commit
// order per license, retried with exponential backoff and jitter until a
// maximum age, through an HTTP client that refuses internal addresses.
//
// The store does the bookkeeping (see licensor.Store): DispatchEvents
// queues a delivery of each new event for each subscribed webhook,
// ClaimDeliveries leases due deliveries — only the first pending one of
// each license per webhook, which is what keeps a license's events in
// order, and no more of one webhook than its share of the attempts, which
// is what keeps a hanging receiver from holding up the others — and
// CompleteDelivery records each attempt. A Dispatcher runs
// that loop in every serve process; on PostgreSQL, instances share the
// work through FOR UPDATE SKIP LOCKED, and a lease that runs out (its
// process died mid-attempt) makes the delivery due again. Nothing is sent
// that was not committed, and nothing committed is lost: the events are
// written in the transaction of their change.
package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/licensor/licensor"
)

// Defaults of a Dispatcher.
const (
	DefaultMaxAge      = 24 * time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 16
	// DefaultEndpointConcurrency is the default of Options.EndpointConcurrency.
	DefaultEndpointConcurrency = 4
	DefaultPoll                = time.Second
	DefaultBackoff             = time.Second
	DefaultMaxBackoff          = time.Hour
)

// Options configure a Dispatcher. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Policy guards the addresses deliveries may reach.
	Policy Policy
	// Client sends the deliveries; Policy.Client(Timeout) when nil. Tests
	// may pass their own, which then bypasses the policy.
	Client *http.Client
	// MaxAge is how long a delivery is retried before it fails for good,
	// counted from when it was queued; default 24h.
	MaxAge time.Duration
	// Timeout bounds one attempt; default 10s. A claim's lease is the
	// timeout plus a margin.
	Timeout time.Duration
	// Concurrency is how many attempts run at once; default 16.
	Concurrency int
	// EndpointConcurrency is how many of them may be to one webhook;
	// default 4. A receiver that hangs holds at most that many attempts
	// until they time out, and the others go on with the rest.
	EndpointConcurrency int
	// Poll is how often the store is asked for work when nothing signals
	// any (events committed by other instances, retries coming due);
	// default 1s.
	Poll time.Duration
	// Backoff is the delay before the first retry, doubled at each
	// attempt up to MaxBackoff (defaults 1s and 1h); each delay is drawn
	// between half and all of that ("equal jitter").
	Backoff, MaxBackoff time.Duration
}

// Dispatcher moves events from the store to the webhooks.
type Dispatcher struct {
	store licensor.Store
	opts  Options
	log   *slog.Logger
}

// New returns a Dispatcher over store.
func New(store licensor.Store, opts Options) *Dispatcher {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.EndpointConcurrency <= 0 {
		opts.EndpointConcurrency = DefaultEndpointConcurrency
	}
	if opts.Poll <= 0 {
		opts.Poll = DefaultPoll
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.Client == nil {
		opts.Client = opts.Policy.Client(opts.Timeout)
	}
	return &Dispatcher{store: store, opts: opts, log: opts.Logger}
}

// dispatchBatch is how many events are queued per webhook per round.
const dispatchBatch = 500

// Run delivers until ctx ends. Attempts in flight when it ends are
// abandoned: their leases run out and they are attempted again, here or
// by another instance.
func (d *Dispatcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	finished := make(chan int64, d.opts.Concurrency) // the webhook of each finished attempt
	inFlight := 0
	byWebhook := map[int64]int{} // attempts in flight per webhook
	done := func(webhookID int64) {
		inFlight--
		if byWebhook[webhookID]--; byWebhook[webhookID] <= 0 {
			delete(byWebhook, webhookID)
		}
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		committed := d.store.EventsCommitted()
		busy := false
		now := d.opts.Now()
		if n, err := d.store.DispatchEvents(ctx, now.Unix(), dispatchBatch); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Warn("webhook: queue deliveries", "err", err)
		} else if n > 0 {
			busy = true
		}
		if free := d.opts.Concurrency - inFlight; free > 0 {
			lease := now.Add(d.opts.Timeout + 5*time.Second).Unix()
			jobs, err := d.store.ClaimDeliveries(ctx, licensor.DeliveryClaim{
				Now: now.Unix(), LeaseUntil: lease, Limit: free,
				PerWebhook: d.opts.EndpointConcurrency, InFlight: byWebhook,
			})
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Warn("webhook: claim deliveries", "err", err)
			}
			for _, job := range jobs {
				inFlight++
				byWebhook[job.WebhookID]++
				wg.Add(1)
				go func() {
					defer wg.Done()
					d.attempt(ctx, job)
					finished <- job.WebhookID
				}()
			}
			busy = busy || len(jobs) == free
		}
		if busy && inFlight < d.opts.Concurrency {
			continue // more may be waiting
		}
		if !poll.Stop() {
			select {
			case <-poll.C:
			default:
			}
		}
		poll.Reset(d.opts.Poll)
		select {
		case <-ctx.Done():
			return
		case <-committed:
		case id := <-finished:
			done(id)
		case <-poll.C:
		}
		// Take every other finished attempt too.
		for drained := false; !drained; {
			select {
			case id := <-finished:
				done(id)
			default:
				drained = true
			}
		}
	}
}

// attempt sends one delivery and records its outcome.
func (d *Dispatcher) attempt(ctx context.Context, job licensor.DeliveryJob) {
	start := d.opts.Now()
	status, err := d.send(ctx, &job, start)
	if ctx.Err() != nil {
		return // shutting down: the lease runs out and it is tried again
	}
	o := licensor.DeliveryOutcome{ID: job.ID, Attempt: job.Attempts, At: start.Unix(), Status: status}
	if err == nil {
		o.Delivered = true
	} else {
		// The log line has the cause; the delivery log, which write keys
		// read, a stable message without addresses or Go error text.
		o.Error = describe(err, d.opts.Timeout)
		cause := truncate(err.Error(), 500)
		if age := start.Sub(time.Unix(job.CreatedAt, 0)); age < d.opts.MaxAge {
			o.RetryAt = start.Add(d.backoff(job.Attempts)).Unix()
			d.log.Info("webhook: delivery failed; will retry", "webhook", job.WebhookID, "delivery", job.ID,
				"event", job.EventSeq, "attempt", job.Attempts, "status", status, "reason", o.Error, "err", cause,
				"retry_at", time.Unix(o.RetryAt, 0).UTC())
		} else {
			d.log.Warn("webhook: delivery failed for good", "webhook", job.WebhookID, "delivery", job.ID,
				"event", job.EventSeq, "attempts", job.Attempts, "status", status, "reason", o.Error, "err", cause)
		}
	}
	// Record even if ctx ends now: an attempt that was made should not
	// be made again for nothing.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := d.store.CompleteDelivery(rctx, o); err != nil {
		d.log.Warn("webhook: record delivery attempt", "delivery", job.ID, "err", err)
	}
}

// send makes the HTTP request of one attempt. Any 2xx is a success.
func (d *Dispatcher) send(ctx context.Context, job *licensor.DeliveryJob, now time.Time) (int, error) {
	body, err := Body(&job.Event)
	if err != nil {
		return 0, requestError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.URL, bytes.NewReader(body))
	if err != nil {
		return 0, requestError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "licensor-webhooks/1")
	if err := Sign(req.Header, job.Secret, MessageID(&job.Event), now.Unix(), body); err != nil {
		return 0, requestError{err}
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, httpStatusError(resp.StatusCode)
	}
	return resp.StatusCode, nil
}

// backoff is the delay after the attempt-th failed attempt: Backoff
// doubled attempt-1 times, capped at MaxBackoff, then drawn between half
// and all of it.
func (d *Dispatcher) backoff(attempt int) time.Duration {
	b := d.opts.Backoff
	for i := 1; i < attempt && b < d.opts.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.opts.MaxBackoff)
	half := b / 2
	b = half + time.Duration(rand.Int64N(int64(half)+1))
	return max(b, time.Second) // the schedule counts whole seconds
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
