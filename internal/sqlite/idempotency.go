package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/licensor/licensor"
)

// ClaimIdempotencyKey starts a request under claim's key; see
// licensor.Store. The write lock of the transaction serializes claims.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim, now, staleBefore int64) (*licensor.StoredResponse, error) {
	var replay *licensor.StoredResponse
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		replay = nil
		var (
			fingerprint          string
			startedAt, expiresAt int64
			completedAt, status  *int64
			headers              *string
			body                 []byte
		)
		err := q.QueryRowContext(ctx, `SELECT fingerprint, started_at, expires_at, completed_at, status, headers, body
FROM idempotency_keys WHERE api_key_id = ? AND idempotency_key = ?`, claim.APIKeyID, claim.Key).
			Scan(&fingerprint, &startedAt, &expiresAt, &completedAt, &status, &headers, &body)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = q.ExecContext(ctx, `INSERT INTO idempotency_keys (api_key_id, idempotency_key, fingerprint, started_at, expires_at)
VALUES (?, ?, ?, ?, ?)`, claim.APIKeyID, claim.Key, claim.Fingerprint, now, claim.ExpiresAt)
			return err
		case err != nil:
			return err
		case expiresAt < now:
			// Expired but not yet pruned: the key is free again.
			return db.takeOver(ctx, tx, claim, now)
		case fingerprint != claim.Fingerprint:
			return licensor.Errorf(licensor.CodeIdempotencyKeyReused,
				"the Idempotency-Key was already used with a different request")
		case completedAt != nil:
			replay, err = storedResponse(status, headers, body)
			return err
		case startedAt > staleBefore:
			return licensor.Errorf(licensor.CodeIdempotencyKeyInFlight,
				"a request with this Idempotency-Key is still in progress")
		default:
			// The holder is presumed dead; had it written, its response
			// would be stored with the write.
			return db.takeOver(ctx, tx, claim, now)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim idempotency key: %w", err)
	}
	if replay == nil {
		claim.HeldSince = now // the INSERT or take-over above set started_at = now
	}
	return replay, nil
}

// takeOver makes claim the holder of an existing key, forgetting the
// previous holder and any response.
func (db *DB) takeOver(ctx context.Context, tx *sql.Tx, claim *licensor.IdempotencyClaim, now int64) error {
	_, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET fingerprint = ?, started_at = ?, expires_at = ?,
	completed_at = NULL, status = NULL, headers = NULL, body = NULL
WHERE api_key_id = ? AND idempotency_key = ?`, claim.Fingerprint, now, claim.ExpiresAt, claim.APIKeyID, claim.Key)
	return err
}

func storedResponse(status *int64, headers *string, body []byte) (*licensor.StoredResponse, error) {
	r := &licensor.StoredResponse{Body: body}
	if status != nil {
		r.Status = int(*status)
	}
	if headers != nil {
		if err := json.Unmarshal([]byte(*headers), &r.Headers); err != nil {
			return nil, fmt.Errorf("decode stored headers: %w", err)
		}
	}
	return r, nil
}

// saveResponse stores the response of a held key; it reports whether the
// key was still held (pending, with the claim's fingerprint).
func saveResponse(ctx context.Context, tx querier, claim *licensor.IdempotencyClaim, resp licensor.StoredResponse, at int64) (bool, error) {
	headers, err := json.Marshal(resp.Headers)
	if err != nil {
		return false, fmt.Errorf("encode headers: %w", err)
	}
	var body any // NULL for no body, so that a replay sends none either
	if resp.Body != nil {
		body = resp.Body
	}
	res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET completed_at = ?, status = ?, headers = ?, body = ?
WHERE api_key_id = ? AND idempotency_key = ? AND fingerprint = ? AND started_at = ? AND completed_at IS NULL`,
		at, resp.Status, string(headers), body, claim.APIKeyID, claim.Key, claim.Fingerprint, claim.HeldSince)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// storeWithWrite renders the response of a successful write and stores it
// in the write's transaction (c.Idempotency, when set). A key no longer
// held (taken over, or completed by another request) fails the write, so
// that one key never stands for two writes.
func storeWithWrite(ctx context.Context, tx querier, c licensor.Change, result any) error {
	claim := c.Idempotency
	if claim == nil {
		return nil
	}
	if claim.Render == nil {
		return errors.New("idempotency claim without Render")
	}
	resp, err := claim.Render(result)
	if err != nil {
		return fmt.Errorf("render the response: %w", err)
	}
	held, err := saveResponse(ctx, tx, claim, resp, c.Time)
	if err != nil {
		return fmt.Errorf("store the response: %w", err)
	}
	if !held {
		return licensor.Errorf(licensor.CodeIdempotencyKeyInFlight,
			"another request with this Idempotency-Key took it over")
	}
	return nil
}

// markStored records on the claim that its response was committed with
// the write.
func markStored(c licensor.Change) {
	if c.Idempotency != nil {
		c.Idempotency.Stored = true
	}
}

// CompleteIdempotencyKey stores the response of a held key whose request
// wrote nothing. A key no longer held is left alone.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim, resp licensor.StoredResponse) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := saveResponse(ctx, tx, claim, resp, db.now().Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey forgets a held key, so that a retry runs afresh.
// A completed key is kept.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys
WHERE api_key_id = ? AND idempotency_key = ? AND fingerprint = ? AND started_at = ? AND completed_at IS NULL`,
			claim.APIKeyID, claim.Key, claim.Fingerprint, claim.HeldSince)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes the keys that expired before now.
func (db *DB) PruneIdempotencyKeys(ctx context.Context, now int64) (int64, error) {
	var n int64
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM idempotency_keys WHERE expires_at < ?`, now)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune idempotency keys: %w", err)
	}
	return n, nil
}
