package sqlstore

import (
	"context"
	"fmt"
	"math"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// Engine is what an engine gives the Store methods written once here
// (Shared): its reader, its write transactions and its error
// classification.
type Engine interface {
	// Name prefixes the errors: "sqlite", "postgres".
	Name() string
	// Reader is the querier of reads outside a write whose texts are
	// fixed (on SQLite through the readers' prepared statements).
	Reader() Querier
	// Scans is the querier of reads whose texts vary with a filter (a bulk
	// job's counts and scans): not prepared.
	Scans() Querier
	// ReadSnapshot runs f in a read-only transaction: one snapshot (and
	// again from the start when the engine retries it).
	ReadSnapshot(ctx context.Context, f func(q Querier) error) error
	// Write runs f in a write transaction that writes about rows rows
	// (a large one, or Many, runs in a transaction of its own).
	Write(ctx context.Context, rows int, f func(ctx context.Context, tx Tx) error) error
	// Unavailable classifies a driver's error (licensor.CodeUnavailable).
	Unavailable(err error) error
	// Conflict classifies a constraint violation (licensor.CodeConflict).
	Conflict(err error) error
	// Committed is the signal of committed events (Store.EventsCommitted).
	Committed() *groupcommit.Signal
	// Renewer is the engine's own part of a renewer's pass.
	Renewer
}

// Many is the size of a write that may change any number of rows (a
// cascade): Engine.Write runs it in a transaction of its own.
const Many = -1

// Shared implements the licensor.Store methods that are the same
// statements and logic on both engines (bulk jobs, the renewer's pass and
// the cancellation of a renewal); each engine's DB embeds it.
type Shared struct{ Engine Engine }

func (s Shared) fail(op string, err error) error {
	return fmt.Errorf("%s: %s: %w", s.Engine.Name(), op, err)
}

// CreateBulkJob counts the matches and reads the largest license id in one
// statement on a reader (one snapshot, and no write lock held while it
// counts), then inserts the job.
func (s Shared) CreateBulkJob(ctx context.Context, j *licensor.BulkJob, c licensor.Change) error {
	err := s.Engine.Unavailable(countBulkJob(ctx, s.Engine.Scans(), j, c.Time))
	if err == nil {
		err = s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) error { return insertBulkJob(ctx, tx, j, c) })
	}
	if err != nil {
		return s.fail("create bulk job", err)
	}
	AfterCommit(c, false, s.Engine.Committed())
	return nil
}

// FindBulkJobByID returns a bulk job.
func (s Shared) FindBulkJobByID(ctx context.Context, id int64) (*licensor.BulkJob, error) {
	j, err := findBulkJob(ctx, s.Engine.Reader(), id, false)
	if err != nil {
		return nil, s.fail("find bulk job", s.Engine.Unavailable(err))
	}
	return j, nil
}

// CancelBulkJob cancels a pending job.
func (s Shared) CancelBulkJob(ctx context.Context, id int64, c licensor.Change) (out *licensor.BulkJob, err error) {
	err = s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) (err error) {
		out, err = cancelBulkJob(ctx, tx, id, c)
		return err
	})
	if err != nil {
		return nil, s.fail("cancel bulk job", err)
	}
	AfterCommit(c, false, s.Engine.Committed())
	return out, nil
}

// RunBulkJob runs one chunk: the next ids on a reader (nextBulkChunk),
// then the changes in one write transaction (runBulkChunk).
func (s Shared) RunBulkJob(ctx context.Context, claim licensor.BulkClaim, limit int, now int64) (*licensor.BulkChunk, error) {
	next, err := nextBulkChunk(ctx, s.Engine.Scans(), claim, limit, now)
	if err != nil {
		return nil, s.fail("run bulk job", s.Engine.Unavailable(err))
	}
	var chunk *licensor.BulkChunk
	err = s.Engine.Write(ctx, len(next.IDs), func(ctx context.Context, tx Tx) (err error) {
		chunk, err = runBulkChunk(ctx, tx, claim, next, now)
		return err
	})
	if err != nil {
		return nil, s.fail("run bulk job", err)
	}
	if len(chunk.Changed) > 0 {
		s.Engine.Committed().Fire()
	}
	return chunk, nil
}

// FailBulkJob marks a held job failed.
func (s Shared) FailBulkJob(ctx context.Context, claim licensor.BulkClaim, reason string, now int64) error {
	err := s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) error { return failBulkJob(ctx, tx, claim, reason, now) })
	if err != nil {
		return s.fail("fail bulk job", err)
	}
	return nil
}

// CancelRenewal cancels the open renewal of a live license, read locked.
func (s Shared) CancelRenewal(ctx context.Context, id int64, reason string, c licensor.Change) (out licensor.RenewalCancellation, err error) {
	err = s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) (err error) {
		out, err = cancelRenewal(ctx, tx, id, reason, c)
		return err
	})
	if err != nil {
		return licensor.RenewalCancellation{}, s.fail("cancel renewal", err)
	}
	AfterCommit(c, out.Changed, s.Engine.Committed())
	return out, nil
}

// ClaimBulkJobs claims up to limit pending jobs (queued, or running with
// their lease passed) until leaseUntil. It looks first, on a reader,
// whether any can be claimed, so that an idle worker costs no write
// transaction. On PostgreSQL workers claim at once without waiting for
// each other (FOR UPDATE SKIP LOCKED): a job whose chunk is being written
// (its row locked) is skipped, and a row another worker claimed meanwhile
// is re-checked on its committed version and left out, its lease being in
// the future. On SQLite writers are serialized.
func (s Shared) ClaimBulkJobs(ctx context.Context, now, leaseUntil int64, limit int) ([]licensor.BulkJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	var n int
	err := s.Engine.Reader().QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM bulk_jobs
WHERE state IN ('queued', 'running') AND lease_until <= ? LIMIT 1) AS due`, now).Scan(&n)
	if err != nil {
		return nil, s.fail("claim bulk jobs", s.Engine.Unavailable(err))
	}
	if n == 0 {
		return nil, nil
	}
	var out []licensor.BulkJob
	err = s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) (err error) {
		query, args := claimBulkJobs(tx.Dialect(), now, leaseUntil, limit)
		out, err = Collect(ctx, tx, ScanBulkJob, query, args...)
		return err
	})
	if err != nil {
		return nil, s.fail("claim bulk jobs", err)
	}
	return out, nil
}

// claimBulkJobs is the claim's statement in d, and its arguments.
func claimBulkJobs(d sqlfilter.Dialect, now, leaseUntil int64, limit int) (string, []any) {
	if d == sqlfilter.PostgreSQL {
		// The rows to claim, locked first (MATERIALIZED: the LIMIT
		// applies to the rows locked), then re-checked by the UPDATE.
		return `WITH due AS MATERIALIZED (
	SELECT id FROM bulk_jobs WHERE state IN ('queued', 'running') AND lease_until <= $1
	ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE bulk_jobs b SET state = 'running', started_at = coalesce(b.started_at, $1),
	lease_until = $3, claims = b.claims + 1, updated_at = $1
FROM due WHERE b.id = due.id AND b.state IN ('queued', 'running') AND b.lease_until <= $1
RETURNING ` + sqlfilter.Qualify("b.", BulkJobColumns), []any{now, limit, leaseUntil}
	}
	return `UPDATE bulk_jobs SET state = 'running', started_at = coalesce(started_at, ?),
	lease_until = ?, claims = claims + 1, updated_at = ?
WHERE id IN (SELECT id FROM bulk_jobs WHERE state IN ('queued', 'running') AND lease_until <= ? ORDER BY id LIMIT ?)
RETURNING ` + BulkJobColumns, []any{now, leaseUntil, now, now, limit}
}

// RenewLicenses runs one pass of the renewer (RenewalPass) in one write
// transaction.
func (s Shared) RenewLicenses(ctx context.Context, c licensor.Change, r licensor.RenewalPass) (res licensor.RenewalResult, err error) {
	err = s.Engine.Write(ctx, r.Limit, func(ctx context.Context, tx Tx) (err error) {
		res, err = RenewalPass(ctx, tx, c, r, s.Engine)
		return err
	})
	if err != nil {
		return licensor.RenewalResult{}, s.fail("renew licenses", err)
	}
	if res.Len() > 0 {
		s.Engine.Committed().Fire()
	}
	return res, nil
}

// NextRenewal returns the earliest expiry_date of the pending renewals
// that the server makes (automatic mode), def being the deployment's mode.
func (s Shared) NextRenewal(ctx context.Context, def licensor.RenewalMode) (int64, bool, error) {
	ls, err := s.Engine.RenewalCandidates(ctx, s.Engine.Reader(), licensor.RenewalAutomatic, def, 0, math.MaxInt64, 1, true)
	if err != nil {
		return 0, false, s.fail("next renewal", s.Engine.Unavailable(err))
	}
	if len(ls) == 0 {
		return 0, false, nil
	}
	return *ls[0].ExpiryDate, true, nil
}
