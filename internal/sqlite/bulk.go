package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateBulkJob counts the matches and reads the largest license id in one
// statement on a reader (one snapshot, and no write lock held while it
// counts), then inserts the job.
func (db *DB) CreateBulkJob(ctx context.Context, j *licensor.BulkJob, c licensor.Change) error {
	filter, err := sqlstore.BulkJobJSON(j.Filter)
	if err != nil {
		return fmt.Errorf("sqlite: create bulk job: %w", err)
	}
	ph := sqlfilter.SQLite.Args()
	conds, err := sqlfilter.LicenseConditions(ph, j.Filter, c.Time)
	if err != nil {
		return fmt.Errorf("sqlite: create bulk job: %w", err)
	}
	err = db.read.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM licenses WHERE `+strings.Join(conds, " AND ")+`),
	(SELECT coalesce(max(id), 0) FROM licenses)`, ph.Values...).Scan(&j.Matched, &j.UntilID)
	if err != nil {
		return fmt.Errorf("sqlite: create bulk job: %w", unavailable(err))
	}
	j.State, j.Cursor, j.Actor, j.RequestID = licensor.BulkQueued, 0, c.Actor, c.RequestID
	j.CreatedAt, j.UpdatedAt = c.Time, c.Time
	j.RefusedSample = nil
	err = db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		err := q.QueryRowContext(ctx, `INSERT INTO bulk_jobs (action, status, reason, filter, state, until_id, matched,
	actor, request_id, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			j.Action, j.Status, j.Reason, filter, j.State, j.UntilID, j.Matched,
			j.Actor, j.RequestID, j.CreatedAt, j.UpdatedAt).Scan(&j.ID)
		if err != nil {
			return err
		}
		return storeWithWrite(ctx, q, c, licensor.BulkJobResult(j))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create bulk job: %w", err)
	}
	sqlstore.AfterCommit(c, false, &db.committed)
	return nil
}

// FindBulkJobByID returns a bulk job.
func (db *DB) FindBulkJobByID(ctx context.Context, id int64) (*licensor.BulkJob, error) {
	j, err := findBulkJob(pointQuery(ctx), db.rq(), id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find bulk job: %w", unavailable(err))
	}
	return j, nil
}

func findBulkJob(ctx context.Context, q querier, id int64) (*licensor.BulkJob, error) {
	j, err := sqlstore.ScanBulkJob(q.QueryRowContext(ctx, `SELECT `+sqlstore.BulkJobColumns+` FROM bulk_jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, licensor.BulkJobNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// CancelBulkJob cancels a pending job. Writers are serialized: a chunk
// commits before the cancel or finds the job cancelled.
func (db *DB) CancelBulkJob(ctx context.Context, id int64, c licensor.Change) (*licensor.BulkJob, error) {
	var out *licensor.BulkJob
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		j, err := findBulkJob(ctx, q, id)
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
		_, err = q.ExecContext(ctx, `UPDATE bulk_jobs SET state = ?, finished_at = ?, updated_at = ?, lease_until = 0 WHERE id = ?`,
			j.State, c.Time, c.Time, id)
		if err != nil {
			return err
		}
		return storeWithWrite(ctx, q, c, licensor.BulkJobResult(j))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: cancel bulk job: %w", err)
	}
	sqlstore.AfterCommit(c, false, &db.committed)
	return out, nil
}

// ClaimBulkJobs claims pending jobs. It looks first, on a reader, whether
// any can be claimed, so that an idle worker costs no write transaction.
func (db *DB) ClaimBulkJobs(ctx context.Context, now, leaseUntil int64, limit int) ([]licensor.BulkJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	var n int
	err := db.rq().QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM bulk_jobs
WHERE state IN ('queued', 'running') AND lease_until <= ? LIMIT 1)`, now).Scan(&n)
	if err != nil || n == 0 {
		if err != nil {
			err = fmt.Errorf("sqlite: claim bulk jobs: %w", unavailable(err))
		}
		return nil, err
	}
	var out []licensor.BulkJob
	err = db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		rows, err := db.wq(tx).QueryContext(ctx, `UPDATE bulk_jobs SET state = 'running', started_at = coalesce(started_at, ?),
	lease_until = ?, claims = claims + 1, updated_at = ?
WHERE id IN (SELECT id FROM bulk_jobs WHERE state IN ('queued', 'running') AND lease_until <= ? ORDER BY id LIMIT ?)
RETURNING `+sqlstore.BulkJobColumns, now, leaseUntil, now, now, limit)
		if err != nil {
			return err
		}
		out, err = collect(rows, sqlstore.ScanBulkJob)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim bulk jobs: %w", err)
	}
	return out, nil
}

// held reports whether claim is the current claim of running job j.
func held(j *licensor.BulkJob, claim licensor.BulkClaim) bool {
	return j.State == licensor.BulkRunning && j.Claims == claim.Claims
}

// RunBulkJob runs one chunk: the next matching ids are found on a reader,
// then re-checked (still live, still matching) and changed in one write
// transaction with the job's new position. Writers are serialized, so the
// statuses read in it are those the changes are made from.
func (db *DB) RunBulkJob(ctx context.Context, claim licensor.BulkClaim, limit int, now int64) (*licensor.BulkChunk, error) {
	limit = sqlfilter.PageLimit(limit)
	j, err := db.FindBulkJobByID(ctx, claim.JobID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", err)
	}
	if !held(j, claim) {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", licensor.BulkClaimLost(j))
	}
	query, args, err := sqlfilter.BulkNext(sqlfilter.SQLite, j.Filter, now, j.Cursor, j.UntilID, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", unavailable(err))
	}
	ids, err := collect(rows, func(r sqlstore.Scanner) (id int64, err error) { return id, r.Scan(&id) })
	if err != nil {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", unavailable(err))
	}
	from := j.Cursor
	var chunk *licensor.BulkChunk
	err = db.writeTxSized(ctx, len(ids), func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		j, err := findBulkJob(ctx, q, claim.JobID)
		if err != nil {
			return err
		}
		if !held(j, claim) || j.Cursor != from {
			return licensor.BulkClaimLost(j)
		}
		var found []licensor.License
		if len(ids) > 0 {
			query, args, err := sqlfilter.BulkRecheck(sqlfilter.SQLite, j.Filter, now, ids)
			if err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, fmt.Sprintf(query, sqlstore.LicenseColumns), args...)
			if err != nil {
				return err
			}
			if found, err = collect(rows, sqlstore.ScanLicense); err != nil {
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
		for i := range out {
			o := &out[i]
			if !o.Changed {
				continue
			}
			var res sql.Result
			if j.Action == licensor.BulkDelete {
				res, err = q.ExecContext(ctx, `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE id = ? AND deleted_at IS NULL`, c.Time, c.Actor, c.RequestID, o.License.ID)
			} else {
				res, err = q.ExecContext(ctx, `UPDATE licenses SET status = ? WHERE id = ? AND status = ? AND deleted_at IS NULL`,
					o.License.Status, o.License.ID, o.Previous)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("license %d changed under a write transaction (%d rows, %v)", o.License.ID, n, err)
			}
			chunk.Changed = append(chunk.Changed, o.License)
		}
		if err := appendEvents(ctx, q, licensor.BulkEvents(j, out, c)); err != nil {
			return err
		}
		sample, err := sqlstore.BulkJobJSON(j.RefusedSample)
		if err != nil {
			return err
		}
		j.LeaseUntil, j.UpdatedAt = claim.LeaseUntil, now
		if j.State.Final() {
			j.LeaseUntil = 0
		}
		_, err = q.ExecContext(ctx, `UPDATE bulk_jobs SET cursor = ?, processed = ?, changed = ?, unchanged = ?, refused = ?,
	refused_sample = ?, state = ?, finished_at = ?, lease_until = ?, updated_at = ?
WHERE id = ?`, j.Cursor, j.Processed, j.Changed, j.Unchanged, j.Refused, sample, j.State, j.FinishedAt,
			j.LeaseUntil, j.UpdatedAt, j.ID)
		chunk.Job = *j
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: run bulk job: %w", err)
	}
	if len(chunk.Changed) > 0 {
		db.committed.Fire()
	}
	return chunk, nil
}

// FailBulkJob marks a held job failed.
func (db *DB) FailBulkJob(ctx context.Context, claim licensor.BulkClaim, reason string, now int64) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		j, err := findBulkJob(ctx, q, claim.JobID)
		if err != nil {
			return err
		}
		if !held(j, claim) {
			return licensor.BulkClaimLost(j)
		}
		_, err = q.ExecContext(ctx, `UPDATE bulk_jobs SET state = 'failed', error = ?, finished_at = ?, updated_at = ?, lease_until = 0
WHERE id = ?`, reason, now, now, j.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: fail bulk job: %w", err)
	}
	return nil
}
