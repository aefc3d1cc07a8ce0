// Package lifecycle runs the changes that time, not a client, makes to the
// records: licenses expire at their stop_date, recurring licenses are
// renewed at their expiry_date, and history older than the retention
// period is pruned.
//
// # Exact-time expiry
//
// Reads report an ACTIVE license past its stop_date as EXPIRED at once
// (licensor.License.EffectiveStatus); the Expirer makes it so in storage,
// with its license.expired event for the change feed and the webhooks. It
// does not poll on a slow schedule: it asks the store for the earliest
// stop_date of the live ACTIVE licenses and sleeps until then, waking at
// least every Poll (1 s) to see licenses that other instances created
// meanwhile. Each expiry is an UPDATE guarded by status = 'ACTIVE' (on
// PostgreSQL over rows locked FOR UPDATE SKIP LOCKED), so with several
// instances every license expires once. A backlog (after downtime) is
// caught up in transactions of ExpiryBatch (100), earliest first: on
// SQLite the BSS's writes wait for the one in progress, and at 1000 a
// create waited about a quarter of a second behind each
// (TestRenewalBacklogBench).
//
// # Renewal
//
// The Renewer makes the renewals (licensor.RenewalState) the way the
// Expirer makes expiries: it asks the store for the earliest expiry_date
// of the pending automatic renewals and sleeps until then (at most Poll),
// then runs passes (Store.RenewLicenses) of RenewalBatch licenses (100),
// each its own transaction, until one is short. Each pass also sends the
// notices of notify mode (RenewalNotice before expiry_date; found at the
// next Poll, so within a second) and lapses what cannot be renewed.
//
// The passes are throttled to RenewalRate licenses per second (200; the
// flag --renewal-rate), renewals, notices and lapses alike (a notice or a
// lapse writes less than a renewal's three rows and two events, but on
// SQLite it takes the same single writer), by a token bucket of one pass:
// a pass is charged for what it handled once it is done, so a renewal due
// on its own, or the first pass of a backlog, runs at once, and the passes
// that find nothing (one every Poll) cost nothing. Without it a backlog
// takes the writer as fast as it can, and on SQLite the BSS's writes wait
// behind it (TestRenewalBacklogBench: the BSS's requests per second fell
// to a tenth). Each pass is made at the time it starts (its events' time
// and the successors' purchase_timestamp), not when the backlog was found.
//
// The store's locking makes each renewal once however many instances run
// it; a successor that is itself due (a backlog after downtime) is
// renewed by the next pass, so the periods are caught up one after the
// other, each from the stop of the one before. Its events carry the system actor and RequestIDRenewal.
//
// # Retention
//
// The Pruner deletes, every PruneInterval, the events, finished webhook
// deliveries and license and product tombstones older than Retention, in
// batches, each in a short transaction of its own.
//
// # Idempotency keys
//
// PruneIdempotencyKeys deletes, every KeyPruneInterval, the Idempotency-Keys
// whose kept response has expired (the API's --idempotency-ttl after the
// request). It runs in every instance that serves the API, workers or not.
package lifecycle

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/licensor/licensor"
)

// Defaults.
const (
	DefaultPoll  = time.Second
	DefaultBatch = 1000
	// DefaultExpiryBatch is how many licenses one expiry transaction
	// handles: on SQLite a BSS's writes wait for it, and at 1000 an
	// expiry backlog held them for a quarter of a second at a time
	// (TestRenewalBacklogBench).
	DefaultExpiryBatch = 100
	// DefaultRenewalBatch is smaller: a renewal writes three rows and two
	// events, and on SQLite a BSS's writes wait for the transaction
	// (TestRenewalBacklogBench: at 1000 a create waited seconds).
	DefaultRenewalBatch = 100
	// DefaultRenewalRate is how many licenses per second one instance's
	// renewer handles at most (renewals, notices and lapses): a backlog
	// is worked off at this pace beside the BSS's own traffic (see the
	// package comment).
	DefaultRenewalRate   = 200
	DefaultRetention     = 90 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
	// DefaultKeyPruneInterval is how often expired idempotency keys are
	// deleted.
	DefaultKeyPruneInterval = 10 * time.Second
)

// Options configure the workers. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Poll bounds how long the Expirer sleeps without asking the store
	// for the next stop_date; default 1s.
	Poll time.Duration
	// Batch is how many rows one transaction prunes; default 1000.
	Batch int
	// ExpiryBatch is how many licenses one transaction expires; default
	// DefaultExpiryBatch.
	ExpiryBatch int
	// RenewalBatch is how many licenses one renewal pass (one transaction)
	// handles; default DefaultRenewalBatch, and no more than RenewalRate
	// (so that the pause between two passes stays under a second).
	RenewalBatch int
	// RenewalRate is the most licenses per second the renewer handles
	// (renewed, sent their notice or lapsed): the throttle that keeps the
	// BSS's latency during a backlog; default DefaultRenewalRate.
	// Negative: no throttle.
	RenewalRate float64
	// Retention is how long history is kept; default 90 days. A negative
	// value turns pruning off.
	Retention time.Duration
	// PruneInterval is how often history is pruned; default 1h.
	PruneInterval time.Duration
	// KeyPruneInterval is how often expired idempotency keys are deleted;
	// default 10s.
	KeyPruneInterval time.Duration
	// RenewalMode is the deployment's renewal mode, for the products
	// without one; default licensor.DefaultRenewalMode (notify).
	RenewalMode licensor.RenewalMode
	// RenewalNotice is how long before expiry_date license.renewal_due is
	// sent in notify mode; default licensor.DefaultRenewalNotice. A
	// negative value sends it at expiry_date.
	RenewalNotice time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.ExpiryBatch <= 0 {
		o.ExpiryBatch = DefaultExpiryBatch
	}
	if o.RenewalBatch <= 0 {
		o.RenewalBatch = DefaultRenewalBatch
	}
	if o.RenewalRate == 0 {
		o.RenewalRate = DefaultRenewalRate
	}
	if o.RenewalRate > 0 && o.RenewalRate < float64(o.RenewalBatch) {
		o.RenewalBatch = max(1, int(o.RenewalRate))
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneInterval <= 0 {
		o.PruneInterval = DefaultPruneInterval
	}
	if o.KeyPruneInterval <= 0 {
		o.KeyPruneInterval = DefaultKeyPruneInterval
	}
	if o.RenewalMode == "" {
		o.RenewalMode = licensor.DefaultRenewalMode
	}
	switch {
	case o.RenewalNotice == 0:
		o.RenewalNotice = licensor.DefaultRenewalNotice
	case o.RenewalNotice < 0:
		o.RenewalNotice = 0
	}
}

// Run runs the Expirer, the Renewer and the Pruner until ctx ends.
func Run(ctx context.Context, store licensor.Store, opts Options) {
	opts.defaults()
	var wg sync.WaitGroup
	wg.Go(func() { Prune(ctx, store, opts) })
	wg.Go(func() { Renew(ctx, store, opts) })
	Expire(ctx, store, opts)
	wg.Wait()
}

// Renew makes the renewals due until ctx ends (see the package comment).
func Renew(ctx context.Context, store licensor.Store, opts Options) {
	opts.defaults()
	log := opts.Logger
	pass := licensor.RenewalPass{Mode: opts.RenewalMode, Notice: int64(opts.RenewalNotice / time.Second), Limit: opts.RenewalBatch}
	// The throttle charges each pass for what it handled once it is done,
	// as the bulk jobs' does: the passes that find nothing (one every
	// Poll) cost nothing, so the first pass of a backlog, or a renewal due
	// on its own, is not delayed; from then on the passes of a backlog
	// come at RenewalRate licenses per second.
	var limiter *rate.Limiter
	if opts.RenewalRate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.RenewalRate), opts.RenewalBatch)
	}
	every(ctx, func() time.Duration {
		for ctx.Err() == nil {
			now := opts.Now() // each pass's own: a throttled backlog takes minutes
			c := licensor.Change{Time: now.Unix(), Actor: licensor.ActorSystem, RequestID: licensor.RequestIDRenewal}
			res, err := store.RenewLicenses(ctx, c, pass)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("renew licenses", "err", err)
				}
				break
			}
			if n := len(res.Renewed); n > 0 {
				log.Info("renewed licenses", "count", n,
					"lag", now.Sub(time.Unix(*res.Renewed[0].Predecessor.ExpiryDate, 0)).Round(time.Millisecond).String())
			}
			if n := len(res.Due); n > 0 {
				log.Info("renewals due (license.renewal_due sent)", "count", n)
			}
			if n := len(res.Lapsed); n > 0 {
				log.Info("renewals lapsed (not ACTIVE at expiry_date)", "count", n)
			}
			n := res.Len()
			if limiter != nil && n > 0 && limiter.WaitN(ctx, min(n, opts.RenewalBatch)) != nil {
				// ctx ends before the throttle lets the next pass
				// start (WaitN says so at once, at a deadline).
				<-ctx.Done()
				return 0
			}
			if n < opts.RenewalBatch {
				break
			}
		}
		next, ok, err := store.NextRenewal(ctx, opts.RenewalMode)
		return opts.wait(ctx, "find the next renewal", next, ok, err)
	})
}

// wait is how long a worker sleeps before its next pass, given the time
// of the next thing due (next, when ok; err when it could not be read,
// logged as what): until then, at most Poll; when it is due already
// (another instance is on it, or it was created just now), 50 ms: again
// soon, not at once.
func (o *Options) wait(ctx context.Context, what string, next int64, ok bool, err error) time.Duration {
	switch {
	case err != nil:
		if ctx.Err() == nil {
			o.Logger.Warn(what, "err", err)
		}
	case ok:
		if until := time.Unix(next, 0).Sub(o.Now()); until > 0 {
			return min(o.Poll, until)
		}
		return 50 * time.Millisecond
	}
	return o.Poll
}

// every runs pass at once, then again after the wait each pass returns,
// until ctx ends: the loop of every worker here.
func every(ctx context.Context, pass func() time.Duration) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		wait := pass()
		if ctx.Err() != nil {
			return
		}
		timer.Reset(wait)
	}
}

// Expire moves ACTIVE licenses to EXPIRED at their stop_date until ctx
// ends.
func Expire(ctx context.Context, store licensor.Store, opts Options) {
	opts.defaults()
	log := opts.Logger
	every(ctx, func() time.Duration {
		now := opts.Now()
		for {
			c := licensor.Change{Time: now.Unix(), Actor: licensor.ActorSystem, RequestID: licensor.RequestIDExpiry}
			ls, err := store.ExpireLicenses(ctx, c, opts.ExpiryBatch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("expire licenses", "err", err)
				}
				break
			}
			if len(ls) > 0 {
				log.Info("expired licenses", "count", len(ls), "lag", now.Sub(time.Unix(*ls[0].StopDate, 0)).Round(time.Millisecond).String())
			}
			if len(ls) < opts.ExpiryBatch {
				break
			}
		}
		next, ok, err := store.NextExpiry(ctx)
		return opts.wait(ctx, "find the next expiry", next, ok, err)
	})
}

// Prune deletes old history every PruneInterval until ctx ends, starting
// at once.
func Prune(ctx context.Context, store licensor.Store, opts Options) {
	opts.defaults()
	if opts.Retention < 0 {
		return
	}
	log := opts.Logger
	every(ctx, func() time.Duration {
		before := opts.Now().Add(-opts.Retention).Unix()
		var total int64
		for ctx.Err() == nil {
			n, err := store.PruneHistory(ctx, before, opts.Batch)
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("prune history", "err", err)
				}
				break
			}
			total += n
			if n == 0 {
				break
			}
		}
		if total > 0 {
			log.Info("pruned history", "rows", total, "before", time.Unix(before, 0).UTC())
		}
		return opts.PruneInterval
	})
}

// PruneIdempotencyKeys deletes expired idempotency keys every
// KeyPruneInterval until ctx ends, the first time one interval from now.
func PruneIdempotencyKeys(ctx context.Context, store licensor.Store, opts Options) {
	opts.defaults()
	log := opts.Logger
	t := time.NewTicker(opts.KeyPruneInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := store.PruneIdempotencyKeys(ctx, opts.Now().Unix())
		if err != nil {
			log.Warn("prune idempotency keys", "err", err)
			continue
		}
		if n > 0 {
			log.Debug("pruned idempotency keys", "count", n)
		}
	}
}
