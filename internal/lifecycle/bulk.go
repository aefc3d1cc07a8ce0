package lifecycle

import (
	"context"
	"log/slog"
	"math"
	"time"

	"golang.org/x/time/rate"

	"github.com/licensor/licensor"
)

// Defaults of the bulk job worker.
const (
	// DefaultBulkRate is how many licenses per second one job handles at
	// most: a million in about 17 minutes, beside the BSS's own traffic.
	DefaultBulkRate = 1000
	// DefaultBulkChunk is how many licenses one transaction handles at
	// most (and so how long a chunk holds its locks).
	DefaultBulkChunk = 200
	// DefaultBulkLease is how long a claim on a job lasts without a
	// chunk: how long a job whose worker died waits for another.
	DefaultBulkLease = 10 * time.Second
)

// BulkOptions configure the bulk job worker. Zero values take the defaults.
type BulkOptions struct {
	Logger *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Poll is how often the store is asked for a job to run; default 1s.
	Poll time.Duration
	// Rate is the most licenses per second a job handles (the throttle
	// that keeps the BSS's latency); default DefaultBulkRate. Negative:
	// no throttle.
	Rate float64
	// Chunk is the most licenses one transaction handles; default
	// DefaultBulkChunk, at most licensor.MaxBulkChunk, and no more than
	// Rate (so that the pause between two chunks stays under a second).
	Chunk int
	// Lease is how long a claim lasts; each chunk renews it. Default
	// DefaultBulkLease.
	Lease time.Duration
}

func (o *BulkOptions) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.Rate == 0 {
		o.Rate = DefaultBulkRate
	}
	if o.Chunk <= 0 {
		o.Chunk = DefaultBulkChunk
	}
	o.Chunk = min(o.Chunk, licensor.MaxBulkChunk)
	if o.Rate > 0 && o.Rate < float64(o.Chunk) { // not int(o.Rate): +Inf
		o.Chunk = max(1, int(o.Rate))
	}
	if o.Lease <= 0 {
		o.Lease = DefaultBulkLease
	}
}

// maxChunkFailures is how many chunks of a job may fail in a row (other
// than because the database is unavailable) before the job fails.
const maxChunkFailures = 5

// Bulk runs bulk jobs until ctx ends, one at a time: it claims the oldest
// pending job (one whose worker died included, once its lease ran out)
// and runs it chunk by chunk, throttled to Rate licenses per second, until
// it is done, cancelled or taken over. Any number of instances may run
// it: each job runs in one of them at a time (licensor.Store.RunBulkJob).
func Bulk(ctx context.Context, store licensor.Store, opts BulkOptions) {
	opts.defaults()
	every(ctx, func() time.Duration {
		now := opts.Now()
		jobs, err := store.ClaimBulkJobs(ctx, now.Unix(), now.Add(opts.Lease).Unix(), 1)
		if err != nil && ctx.Err() == nil {
			opts.Logger.Warn("claim bulk jobs", "err", err)
		}
		for _, j := range jobs {
			runBulkJob(ctx, store, &j, opts)
		}
		wait := opts.Poll
		if len(jobs) > 0 {
			wait = 0 // look for the next one at once
		}
		return wait
	})
}

// runBulkJob runs a claimed job's chunks until it ends or ctx does.
func runBulkJob(ctx context.Context, store licensor.Store, j *licensor.BulkJob, opts BulkOptions) {
	log := opts.Logger.With("bulk_job", j.ID, "action", j.Action)
	if j.Claims == 1 {
		log.Info("bulk job started", "matched", j.Matched)
	} else {
		log.Info("bulk job resumed", "claim", j.Claims, "processed", j.Processed, "cursor", j.Cursor)
	}
	var limiter *rate.Limiter
	if opts.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(opts.Rate), opts.Chunk)
	}
	claim := licensor.BulkClaim{JobID: j.ID, Claims: j.Claims}
	started, from := opts.Now(), j.Processed
	failures := 0
	for ctx.Err() == nil {
		now := opts.Now()
		claim.LeaseUntil = now.Add(opts.Lease).Unix()
		chunk, err := store.RunBulkJob(ctx, claim, opts.Chunk, now.Unix())
		switch code := licensor.ErrorCode(err); {
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return
		case code == licensor.CodeConflict:
			log.Info("bulk job no longer held by this worker", "reason", err)
			return
		default:
			if code != licensor.CodeUnavailable {
				failures++
			}
			if failures >= maxChunkFailures {
				log.Error("bulk job failed", "err", err)
				if err := store.FailBulkJob(context.WithoutCancel(ctx), claim, "a chunk failed "+
					"repeatedly; see the server's log", opts.Now().Unix()); err != nil {
					log.Warn("mark the bulk job failed", "err", err)
				}
				return
			}
			log.Warn("bulk job chunk failed; retrying", "err", err, "failures", failures)
			if !sleep(ctx, time.Second) {
				return
			}
			continue
		}
		if chunk.Job.State == licensor.BulkDone {
			elapsed := opts.Now().Sub(started)
			log.Info("bulk job done", "processed", chunk.Job.Processed, "changed", chunk.Job.Changed,
				"unchanged", chunk.Job.Unchanged, "refused", chunk.Job.Refused, "elapsed", elapsed.Round(time.Millisecond).String(),
				"rows_per_second", math.Round(float64(chunk.Job.Processed-from)/max(elapsed.Seconds(), 1e-3)))
			return
		}
		if limiter != nil {
			n := int(chunk.Job.Processed - j.Processed)
			j = &chunk.Job
			if n > 0 && limiter.WaitN(ctx, min(n, opts.Chunk)) != nil {
				return
			}
		} else {
			j = &chunk.Job
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
