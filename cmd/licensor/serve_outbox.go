package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/lifecycle"
	"github.com/licensor/licensor/internal/webhook"
)

// outboxConfig is what serve is told about its background work: webhook
// deliveries, exact-time expiry, renewal, retention and bulk jobs.
type outboxConfig struct {
	workers             bool
	maxAge              time.Duration
	timeout             time.Duration
	concurrency         int
	endpointConcurrency int
	allowHTTP           bool
	allowPrivate        bool
	allowCIDRs          prefixList
	retention           durationOrPeriod
	backoff, maxBackoff time.Duration
	bulkRate            float64
	bulkChunk           int
	renewalMode         string
	renewalRate         float64
	renewalNotice       durationOrPeriod
}

// register adds the flags to fs.
func (c *outboxConfig) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.workers, "workers", true, "run the background work in this instance: webhook deliveries, license expiry, renewal, retention, bulk jobs (safe on any number of instances)")
	fs.DurationVar(&c.maxAge, "webhook-max-age", webhook.DefaultMaxAge, "how long a webhook delivery is retried before it is marked failed")
	fs.DurationVar(&c.timeout, "webhook-timeout", webhook.DefaultTimeout, "time limit of one webhook delivery attempt")
	fs.IntVar(&c.concurrency, "webhook-concurrency", webhook.DefaultConcurrency, "webhook delivery attempts in flight at once, per instance")
	fs.IntVar(&c.endpointConcurrency, "webhook-endpoint-concurrency", webhook.DefaultEndpointConcurrency, "webhook delivery attempts in flight at once to one webhook, per instance (a receiver that hangs holds at most these)")
	fs.BoolVar(&c.allowHTTP, "webhook-allow-http", false, "allow plain http:// webhook URLs (default: https only)")
	fs.BoolVar(&c.allowPrivate, "webhook-allow-private", false, "allow webhooks to reach loopback, private, link-local and other internal addresses (SSRF protection off)")
	fs.Var(&c.allowCIDRs, "webhook-allow-cidr", "an internal network webhooks may reach all the same (repeatable; CIDR or address)")
	fs.DurationVar(&c.backoff, "webhook-backoff", webhook.DefaultBackoff, "delay before the first retry of a failed delivery, doubled at each attempt (with jitter)")
	fs.DurationVar(&c.maxBackoff, "webhook-max-backoff", webhook.DefaultMaxBackoff, "longest delay between two attempts of a delivery")
	fs.Float64Var(&c.bulkRate, "bulk-rate", lifecycle.DefaultBulkRate, "most licenses per second a bulk job handles, so that the BSS's own requests keep their latency (one job at a time per instance)")
	fs.IntVar(&c.bulkChunk, "bulk-chunk", lifecycle.DefaultBulkChunk, "most licenses one transaction of a bulk job handles (how long it holds its locks; at most 1000)")
	c.retention = durationOrPeriod(lifecycle.DefaultRetention)
	fs.StringVar(&c.renewalMode, "renewal-mode", string(licensor.DefaultRenewalMode), "who makes the successor of a recurring license at its expiry_date, for products without a renewal_mode of their own: automatic (this server) or notify (the BSS, told by a license.renewal_due event)")
	fs.Float64Var(&c.renewalRate, "renewal-rate", lifecycle.DefaultRenewalRate, "most licenses per second this instance renews (or sends their notice, or lapses), so that a backlog of renewals leaves the BSS's own requests their latency")
	c.renewalNotice = durationOrPeriod(licensor.DefaultRenewalNotice)
	fs.Var(&c.renewalNotice, "renewal-notice", "in notify mode, how long before expiry_date license.renewal_due is sent: a duration (72h) or a period (P3D)")
	fs.Var(&c.retention, "retention", "how long events, finished webhook deliveries and license and product tombstones are kept: a duration (2160h) or a period (P90D); 0 keeps everything")
}

// check validates the flags.
func (c *outboxConfig) check() error {
	switch {
	case c.maxAge <= 0 || c.timeout <= 0 || c.concurrency <= 0 || c.endpointConcurrency <= 0 || c.backoff <= 0 || c.maxBackoff <= 0:
		return usageError{"--webhook-max-age, --webhook-timeout, --webhook-concurrency, --webhook-endpoint-concurrency, --webhook-backoff and --webhook-max-backoff must be positive"}
	case !(c.bulkRate > 0) || c.bulkChunk <= 0 || c.bulkChunk > licensor.MaxBulkChunk:
		return usageError{fmt.Sprintf("--bulk-rate must be positive and --bulk-chunk 1 to %d", licensor.MaxBulkChunk)}
	case !(c.renewalRate > 0): // and not NaN
		return usageError{"--renewal-rate must be positive"}
	case !licensor.RenewalMode(c.renewalMode).Valid():
		return usageError{fmt.Sprintf("--renewal-mode must be %s or %s", licensor.RenewalAutomatic, licensor.RenewalNotify)}
	case c.renewalNotice < 0:
		return usageError{"--renewal-notice must not be negative"}
	case c.retention < 0:
		return usageError{"--retention must not be negative"}
	case c.retention > 0 && time.Duration(c.retention) <= c.maxAge:
		return usageError{"--retention must be longer than --webhook-max-age, or deliveries would lose their events while still retried"}
	}
	return nil
}

// policy is the SSRF policy of webhook URLs and deliveries.
func (c *outboxConfig) policy() *webhook.Policy {
	return &webhook.Policy{AllowHTTP: c.allowHTTP, AllowPrivate: c.allowPrivate, Allow: c.allowCIDRs}
}

// start runs the background work until ctx ends; the returned function
// waits for it to stop. Expired idempotency keys are pruned in every
// instance; the workers (webhooks, expiry, renewal, retention, bulk jobs)
// run unless --workers=false. Renewals and bulk jobs write through writes,
// the API server's store (api.Server.Store), so that this instance's
// entitlement cache follows their changes at once.
func (c *outboxConfig) start(ctx context.Context, store, writes licensor.Store, logger *slog.Logger) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		lifecycle.PruneIdempotencyKeys(ctx, store, lifecycle.Options{Logger: logger})
	}()
	if !c.workers {
		logger.Info("background work off in this instance (--workers=false)")
		return wg.Wait
	}
	retention := time.Duration(c.retention)
	if retention == 0 {
		retention = -1 // keep everything
	}
	wg.Add(3)
	go func() {
		defer wg.Done()
		webhook.New(store, webhook.Options{
			Logger: logger, Policy: *c.policy(), MaxAge: c.maxAge, Timeout: c.timeout,
			Concurrency: c.concurrency, EndpointConcurrency: c.endpointConcurrency, Backoff: c.backoff, MaxBackoff: c.maxBackoff,
		}).Run(ctx)
	}()
	go func() {
		defer wg.Done()
		notice := time.Duration(c.renewalNotice)
		if notice == 0 {
			notice = -1 // at expiry_date
		}
		lifecycle.Run(ctx, writes, lifecycle.Options{Logger: logger, Retention: retention,
			RenewalMode: licensor.RenewalMode(c.renewalMode), RenewalNotice: notice, RenewalRate: c.renewalRate})
	}()
	go func() {
		defer wg.Done()
		lifecycle.Bulk(ctx, writes, lifecycle.BulkOptions{Logger: logger, Rate: c.bulkRate, Chunk: c.bulkChunk})
	}()
	return wg.Wait
}

// durationOrPeriod is a flag that takes a Go duration (2160h) or an
// ISO-8601 period (P90D), a period counted as from the Unix epoch.
type durationOrPeriod time.Duration

func (d *durationOrPeriod) String() string { return time.Duration(*d).String() }

func (d *durationOrPeriod) Set(s string) error {
	if v, err := time.ParseDuration(s); err == nil {
		*d = durationOrPeriod(v)
		return nil
	}
	p, err := licensor.ParsePeriod(s)
	if err != nil {
		return fmt.Errorf("%q is neither a duration like 2160h nor a period like P90D", s)
	}
	epoch := time.Unix(0, 0).UTC()
	*d = durationOrPeriod(p.AddTo(epoch).Sub(epoch))
	return nil
}
