package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateBulkJob counts the matches and reads the largest license id in one
// statement (one snapshot), then inserts the job.
func (db *DB) CreateBulkJob(ctx context.Context, j *licensor.BulkJob, c licensor.Change) error {
	filter, err := sqlstore.BulkJobJSON(j.Filter)
	if err != nil {
		return fmt.Errorf("postgres: create bulk job: %w", err)
	}
	ph := sqlfilter.PostgreSQL.Args()
	conds, err := sqlfilter.LicenseConditions(ph, j.Filter, c.Time)
	if err != nil {
		return fmt.Errorf("postgres: create bulk job: %w", err)
	}
	err = db.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM licenses WHERE `+strings.Join(conds, " AND ")+`),
	(SELECT coalesce(max(id), 0) FROM licenses)`, ph.Values...).Scan(&j.Matched, &j.UntilID)
	if err != nil {
		return fmt.Errorf("postgres: create bulk job: %w", unavailable(err))
	}
	j.State, j.Cursor, j.Actor, j.RequestID = licensor.BulkQueued, 0, c.Actor, c.RequestID
	j.CreatedAt, j.UpdatedAt = c.Time, c.Time
	j.RefusedSample = nil
	err = db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRow(ctx, `INSERT INTO bulk_jobs (action, status, reason, filter, state, until_id, matched,
	actor, request_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id`,
			string(j.Action), string(j.Status), j.Reason, filter, string(j.State), j.UntilID, j.Matched,
			j.Actor, j.RequestID, j.CreatedAt, j.UpdatedAt).Scan(&j.ID)
		if err != nil {
			return err
		}
		return storeWithWrite(ctx, tx, c, licensor.BulkJobResult(j))
	})
	if err != nil {
		return fmt.Errorf("postgres: create bulk job: %w", err)
	}
	sqlstore.AfterCommit(c, false, &db.committed)
	return nil
}

// FindBulkJobByID returns a bulk job.
func (db *DB) FindBulkJobByID(ctx context.Context, id int64) (*licensor.BulkJob, error) {
	j, err := findBulkJob(ctx, db.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: find bulk job: %w", unavailable(err))
	}
	return j, nil
}

// findBulkJob reads a job; lock is "" or a locking clause (FOR UPDATE).
func findBulkJob(ctx context.Context, q querier, id int64, lock string) (*licensor.BulkJob, error) {
	j, err := sqlstore.ScanBulkJob(q.QueryRow(ctx, `SELECT `+sqlstore.BulkJobColumns+` FROM bulk_jobs WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, licensor.BulkJobNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// CancelBulkJob cancels a pending job. It locks the job's row, as every
// chunk does: a chunk in progress commits first, or finds the job
// cancelled.
func (db *DB) CancelBulkJob(ctx context.Context, id int64, c licensor.Change) (*licensor.BulkJob, error) {
	var out *licensor.BulkJob
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		j, err := findBulkJob(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		out = j
		switch j.State {
		case licensor.BulkCancelled:
			return nil
		case licensor.BulkDone, licensor.BulkFailed:
			return licensor.Errorf(licensor.CodeConflict, "bulk job %d is %s already: only a queued or running job can be cancelled", id, j.State)
		}
		j.State, j.FinishedAt, j.UpdatedAt, j.LeaseUntil = licensor.BulkCancelled, &c.Time, c.Time, 0
		_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET state = $1, finished_at = $2, updated_at = $2, lease_until = 0 WHERE id = $3`,
			string(j.State), c.Time, id)
		if err != nil {
			return err
		}
		return storeWithWrite(ctx, tx, c, licensor.BulkJobResult(j))
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: cancel bulk job: %w", err)
	}
	sqlstore.AfterCommit(c, false, &db.committed)
	return out, nil
}

// ClaimBulkJobs claims pending jobs. Workers claim at once without waiting
// for each other (FOR UPDATE SKIP LOCKED): a job whose chunk is being
// written (its row locked) is skipped, and a row another worker claimed
// meanwhile is re-checked on its committed version and left out, its lease
// being in the future.
func (db *DB) ClaimBulkJobs(ctx context.Context, now, leaseUntil int64, limit int) ([]licensor.BulkJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []licensor.BulkJob
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		rows, err := tx.Query(ctx, `WITH due AS MATERIALIZED (
	SELECT id FROM bulk_jobs WHERE state IN ('queued', 'running') AND lease_until <= $1
	ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE bulk_jobs b SET state = 'running', started_at = coalesce(b.started_at, $1),
	lease_until = $3, claims = b.claims + 1, updated_at = $1
FROM due WHERE b.id = due.id AND b.state IN ('queued', 'running') AND b.lease_until <= $1
RETURNING `+sqlfilter.Qualify("b.", sqlstore.BulkJobColumns), now, limit, leaseUntil)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (licensor.BulkJob, error) { return sqlstore.ScanBulkJob(r) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim bulk jobs: %w", err)
	}
	return out, nil
}

// held reports whether claim is the current claim of running job j.
func held(j *licensor.BulkJob, claim licensor.BulkClaim) bool {
	return j.State == licensor.BulkRunning && j.Claims == claim.Claims
}

// RunBulkJob runs one chunk: the next matching ids are found first, then,
// in one transaction, the job's row is locked (against a cancel or another
// claim), the licenses are locked FOR UPDATE in id order (as
// SuspendLicenses does: no deadlock between them; the expirer skips locked
// rows) and re-checked on their locked versions (still live, still
// matching), changed, and the job's new position is written.
func (db *DB) RunBulkJob(ctx context.Context, claim licensor.BulkClaim, limit int, now int64) (*licensor.BulkChunk, error) {
	limit = sqlfilter.PageLimit(limit)
	j, err := db.FindBulkJobByID(ctx, claim.JobID)
	if err != nil {
		return nil, fmt.Errorf("postgres: run bulk job: %w", err)
	}
	if !held(j, claim) {
		return nil, fmt.Errorf("postgres: run bulk job: %w", licensor.BulkClaimLost(j))
	}
	query, args, err := sqlfilter.BulkNext(sqlfilter.PostgreSQL, j.Filter, now, j.Cursor, j.UntilID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: run bulk job: %w", err)
	}
	rows, err := db.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: run bulk job: %w", unavailable(err))
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("postgres: run bulk job: %w", unavailable(err))
	}
	from := j.Cursor
	write := db.writeTx
	if len(ids) > soloThreshold {
		write = db.bigWriteTx
	}
	var chunk *licensor.BulkChunk
	err = write(ctx, func(ctx context.Context, tx *wtx) error {
		j, err := findBulkJob(ctx, tx, claim.JobID, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !held(j, claim) || j.Cursor != from {
			return licensor.BulkClaimLost(j)
		}
		var found []licensor.License
		if len(ids) > 0 {
			query, args, err := sqlfilter.BulkRecheck(sqlfilter.PostgreSQL, j.Filter, now, ids)
			if err != nil {
				return err
			}
			rows, err := tx.Query(ctx, fmt.Sprintf(query, sqlstore.LicenseColumns)+" FOR UPDATE", args...)
			if err != nil {
				return err
			}
			found, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (licensor.License, error) { return sqlstore.ScanLicense(r) })
			if err != nil {
				return err
			}
		}
		out := licensor.ApplyBulk(j, found, now)
		if len(ids) < limit {
			j.Cursor, j.State, j.FinishedAt = j.UntilID, licensor.BulkDone, &now
		} else {
			j.Cursor = ids[len(ids)-1]
		}
		c := j.Change(now)
		chunk = &licensor.BulkChunk{}
		var changed []int64
		var statuses []string
		for i := range out {
			if o := &out[i]; o.Changed {
				changed = append(changed, o.License.ID)
				statuses = append(statuses, string(o.License.Status))
				chunk.Changed = append(chunk.Changed, o.License)
			}
		}
		if len(changed) > 0 {
			var err error
			var n int64
			if j.Action == licensor.BulkDelete {
				tag, e := tx.Exec(ctx, `UPDATE licenses SET deleted_at = $1, deleted_by = $2, deleted_request_id = $3
WHERE id = ANY($4) AND deleted_at IS NULL`, c.Time, c.Actor, c.RequestID, changed)
				n, err = tag.RowsAffected(), e
			} else {
				tag, e := tx.Exec(ctx, `UPDATE licenses l SET status = u.status
FROM unnest($1::bigint[], $2::text[]) AS u(id, status) WHERE l.id = u.id`, changed, statuses)
				n, err = tag.RowsAffected(), e
			}
			if err != nil {
				return err
			}
			if n != int64(len(changed)) {
				return fmt.Errorf("changed %d licenses of %d locked", n, len(changed))
			}
		}
		tx.appendEvents(licensor.BulkEvents(j, out, c))
		sample, err := sqlstore.BulkJobJSON(j.RefusedSample)
		if err != nil {
			return err
		}
		j.LeaseUntil, j.UpdatedAt = claim.LeaseUntil, now
		if j.State.Final() {
			j.LeaseUntil = 0
		}
		_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET cursor = $1, processed = $2, changed = $3, unchanged = $4, refused = $5,
	refused_sample = $6, state = $7, finished_at = $8, lease_until = $9, updated_at = $10
WHERE id = $11`, j.Cursor, j.Processed, j.Changed, j.Unchanged, j.Refused, sample, string(j.State), j.FinishedAt,
			j.LeaseUntil, j.UpdatedAt, j.ID)
		chunk.Job = *j
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: run bulk job: %w", err)
	}
	if len(chunk.Changed) > 0 {
		db.committed.Fire()
	}
	return chunk, nil
}

// FailBulkJob marks a held job failed.
func (db *DB) FailBulkJob(ctx context.Context, claim licensor.BulkClaim, reason string, now int64) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		j, err := findBulkJob(ctx, tx, claim.JobID, "FOR UPDATE")
		if err != nil {
			return err
		}
		if !held(j, claim) {
			return licensor.BulkClaimLost(j)
		}
		_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET state = 'failed', error = $1, finished_at = $2, updated_at = $2, lease_until = 0
WHERE id = $3`, reason, now, j.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: fail bulk job: %w", err)
	}
	return nil
}
