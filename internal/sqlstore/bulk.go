package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// BulkJobColumns are the columns ScanBulkJob reads, in its order.
const BulkJobColumns = `id, action, status, reason, filter, state, until_id, cursor, matched, processed, changed,
	unchanged, refused, refused_sample, error, actor, request_id, created_at, updated_at, started_at, finished_at,
	lease_until, claims`

// ScanBulkJob reads a row of BulkJobColumns. The filter and the refused
// sample are JSON (BulkJobJSON).
func ScanBulkJob(s Scanner) (licensor.BulkJob, error) {
	var j licensor.BulkJob
	var action, status, state, filter, sample string
	err := s.Scan(&j.ID, &action, &status, &j.Reason, &filter, &state, &j.UntilID, &j.Cursor, &j.Matched,
		&j.Processed, &j.Changed, &j.Unchanged, &j.Refused, &sample, &j.Error, &j.Actor, &j.RequestID,
		&j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt, &j.LeaseUntil, &j.Claims)
	if err != nil {
		return j, err
	}
	j.Action, j.Status, j.State = licensor.BulkAction(action), licensor.Status(status), licensor.BulkJobState(state)
	if err := json.Unmarshal([]byte(filter), &j.Filter); err != nil {
		return j, fmt.Errorf("decode the filter of bulk job %d: %w", j.ID, err)
	}
	if err := json.Unmarshal([]byte(sample), &j.RefusedSample); err != nil {
		return j, fmt.Errorf("decode the refusals of bulk job %d: %w", j.ID, err)
	}
	if len(j.RefusedSample) == 0 {
		j.RefusedSample = nil
	}
	return j, nil
}

// BulkJobJSON is the text of a job's filter or refused sample (v) as its
// row holds it.
func BulkJobJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// The operations of bulk jobs (licensor.BulkJob), the same on both
// engines but for ClaimBulkJobs (PostgreSQL claims with SKIP LOCKED), which
// each engine writes itself.

// countBulkJob counts, on reader r, the matches of new job j at now and
// reads the largest license id (its Matched and UntilID), in one statement:
// one snapshot.
func countBulkJob(ctx context.Context, r Querier, j *licensor.BulkJob, now int64) error {
	ph := r.Dialect().Args()
	conds, err := sqlfilter.LicenseConditions(ph, j.Filter, now)
	if err != nil {
		return err
	}
	return r.QueryRow(ctx, `SELECT (SELECT count(*) FROM licenses WHERE `+strings.Join(conds, " AND ")+`),
	(SELECT coalesce(max(id), 0) FROM licenses)`, ph.Values...).Scan(&j.Matched, &j.UntilID)
}

// insertBulkJob inserts job j, counted (countBulkJob), queued, and stores
// the response of c's idempotency key with it.
func insertBulkJob(ctx context.Context, tx Tx, j *licensor.BulkJob, c licensor.Change) error {
	filter, err := BulkJobJSON(j.Filter)
	if err != nil {
		return err
	}
	j.State, j.Cursor, j.Actor, j.RequestID = licensor.BulkQueued, 0, c.Actor, c.RequestID
	j.CreatedAt, j.UpdatedAt = c.Time, c.Time
	j.RefusedSample = nil
	err = tx.QueryRow(ctx, `INSERT INTO bulk_jobs (action, status, reason, filter, state, until_id, matched,
	actor, request_id, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		string(j.Action), string(j.Status), j.Reason, filter, string(j.State), j.UntilID, j.Matched,
		j.Actor, j.RequestID, j.CreatedAt, j.UpdatedAt).Scan(&j.ID)
	if err != nil {
		return err
	}
	return tx.StoreWithWrite(ctx, c, licensor.BulkJobResult(j))
}

// findBulkJob reads job id; with lock, FOR UPDATE (in a transaction
// whose change depends on it).
func findBulkJob(ctx context.Context, q Querier, id int64, lock bool) (*licensor.BulkJob, error) {
	query := `SELECT ` + BulkJobColumns + ` FROM bulk_jobs WHERE id = ?`
	if lock {
		query += ForUpdate(q)
	}
	j, err := ScanBulkJob(q.QueryRow(ctx, query, id))
	if NoRow(err) {
		return nil, licensor.BulkJobNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return &j, nil
}

// cancelBulkJob cancels pending job id. Its row is locked, as every chunk
// locks it: a chunk in progress commits first, or finds the job
// cancelled.
func cancelBulkJob(ctx context.Context, tx Tx, id int64, c licensor.Change) (*licensor.BulkJob, error) {
	j, err := findBulkJob(ctx, tx, id, true)
	if err != nil {
		return nil, err
	}
	switch j.State {
	case licensor.BulkCancelled:
		return j, nil
	case licensor.BulkDone, licensor.BulkFailed:
		return nil, licensor.Errorf(licensor.CodeConflict, "bulk job %d is %s already: only a queued or running job can be cancelled", id, j.State)
	}
	j.State, j.FinishedAt, j.UpdatedAt, j.LeaseUntil = licensor.BulkCancelled, &c.Time, c.Time, 0
	_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET state = ?, finished_at = ?, updated_at = ?, lease_until = 0 WHERE id = ?`,
		string(j.State), c.Time, c.Time, id)
	if err != nil {
		return nil, err
	}
	return j, tx.StoreWithWrite(ctx, c, licensor.BulkJobResult(j))
}

// failBulkJob marks the job claim holds failed.
func failBulkJob(ctx context.Context, tx Tx, claim licensor.BulkClaim, reason string, now int64) error {
	j, err := findBulkJob(ctx, tx, claim.JobID, true)
	if err != nil {
		return err
	}
	if !j.HeldBy(claim) {
		return licensor.BulkClaimLost(j)
	}
	_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET state = 'failed', error = ?, finished_at = ?, updated_at = ?, lease_until = 0
WHERE id = ?`, reason, now, now, j.ID)
	return err
}

// bulkNext is the next chunk of a job: the ids of up to Limit matching
// licenses after the job's cursor From.
type bulkNext struct {
	From  int64
	IDs   []int64
	Limit int
}

// nextBulkChunk finds, on reader r (before the chunk's write transaction,
// so that a filter that matches sparsely holds no write lock), the next
// chunk of up to limit licenses (sqlfilter.PageLimit) of the job claim
// holds.
func nextBulkChunk(ctx context.Context, r Querier, claim licensor.BulkClaim, limit int, now int64) (*bulkNext, error) {
	j, err := findBulkJob(ctx, r, claim.JobID, false)
	if err != nil {
		return nil, err
	}
	if !j.HeldBy(claim) {
		return nil, licensor.BulkClaimLost(j)
	}
	next := &bulkNext{From: j.Cursor, Limit: sqlfilter.PageLimit(limit)}
	query, args, err := sqlfilter.BulkNext(r.Dialect(), j.Filter, now, j.Cursor, j.UntilID, next.Limit)
	if err != nil {
		return nil, err
	}
	next.IDs, err = Collect(ctx, r, ScanID, query, args...)
	return next, err
}

// runBulkChunk changes, in write transaction tx, the licenses of next
// (nextBulkChunk) that still are live and match the job's
// filter, with their ordinary events attributed to the job, and stores
// the job's new position under claim. The job's row is locked (a cancel or
// another claim waits), then the licenses in id order (as SuspendLicenses
// locks them: no deadlock between the two; the expirer skips locked rows),
// re-checked on the versions locked.
func runBulkChunk(ctx context.Context, tx Tx, claim licensor.BulkClaim, next *bulkNext, now int64) (*licensor.BulkChunk, error) {
	ids := next.IDs
	j, err := findBulkJob(ctx, tx, claim.JobID, true)
	if err != nil {
		return nil, err
	}
	if !j.HeldBy(claim) || j.Cursor != next.From {
		return nil, licensor.BulkClaimLost(j)
	}
	var found []licensor.License
	if len(ids) > 0 {
		query, args, err := sqlfilter.BulkRecheck(tx.Dialect(), j.Filter, now, ids)
		if err != nil {
			return nil, err
		}
		found, err = Collect(ctx, tx, ScanLicense, fmt.Sprintf(query, LicenseColumns)+ForUpdate(tx), args...)
		if err != nil {
			return nil, err
		}
	}
	out := licensor.ApplyBulk(j, found, now)
	if len(ids) < next.Limit {
		j.Cursor, j.State, j.FinishedAt = j.UntilID, licensor.BulkDone, &now
	} else {
		j.Cursor = ids[len(ids)-1]
	}
	c := j.Change(now)
	chunk := &licensor.BulkChunk{}
	// One statement for each (status to, status from) of the changes.
	type move struct{ to, from licensor.Status }
	var moves []move
	byMove := map[move][]int64{}
	for i := range out {
		o := &out[i]
		if !o.Changed {
			continue
		}
		m := move{o.License.Status, o.Previous}
		if j.Action == licensor.BulkDelete {
			m = move{}
		}
		if _, ok := byMove[m]; !ok {
			moves = append(moves, m)
		}
		byMove[m] = append(byMove[m], o.License.ID)
		chunk.Changed = append(chunk.Changed, o.License)
	}
	for _, m := range moves {
		ph := tx.Dialect().Args()
		var query string
		if j.Action == licensor.BulkDelete {
			query = `UPDATE licenses SET deleted_at = ` + ph.Arg(c.Time) + `, deleted_by = ` + ph.Arg(c.Actor) +
				`, deleted_request_id = ` + ph.Arg(c.RequestID) + ` WHERE `
		} else {
			query = `UPDATE licenses SET status = ` + ph.Arg(string(m.to)) + ` WHERE status = ` + ph.Arg(string(m.from)) + ` AND `
		}
		query += ph.InIDs("id", byMove[m]) + ` AND deleted_at IS NULL`
		n, err := tx.Exec(ctx, query, ph.Values...)
		if err != nil {
			return nil, err
		}
		if n != int64(len(byMove[m])) {
			return nil, fmt.Errorf("changed %d licenses of %d re-checked", n, len(byMove[m]))
		}
	}
	if err := tx.AppendEvents(ctx, licensor.BulkEvents(j, out, c)); err != nil {
		return nil, err
	}
	sample, err := BulkJobJSON(j.RefusedSample)
	if err != nil {
		return nil, err
	}
	j.LeaseUntil, j.UpdatedAt = claim.LeaseUntil, now
	if j.State.Final() {
		j.LeaseUntil = 0
	}
	_, err = tx.Exec(ctx, `UPDATE bulk_jobs SET cursor = ?, processed = ?, changed = ?, unchanged = ?, refused = ?,
	refused_sample = ?, state = ?, finished_at = ?, lease_until = ?, updated_at = ?
WHERE id = ?`, j.Cursor, j.Processed, j.Changed, j.Unchanged, j.Refused, sample, string(j.State), j.FinishedAt,
		j.LeaseUntil, j.UpdatedAt, j.ID)
	if err != nil {
		return nil, err
	}
	chunk.Job = *j
	return chunk, nil
}
