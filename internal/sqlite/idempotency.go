package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// ClaimIdempotencyKey starts a request under claim's key; see
// licensor.Store. The write lock of the transaction serializes claims.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim, now, staleBefore int64) (*licensor.StoredResponse, error) {
	var replay *licensor.StoredResponse
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		replay = nil
		var row sqlstore.IdempotencyRow
		err := q.QueryRowContext(ctx, `SELECT `+sqlstore.IdempotencyColumns+`
FROM idempotency_keys WHERE api_key_id = ? AND idempotency_key = ?`, claim.APIKeyID, claim.Key).Scan(row.Dest()...)
		if sqlstore.NoRow(err) {
			_, err = q.ExecContext(ctx, `INSERT INTO idempotency_keys (api_key_id, idempotency_key, fingerprint, started_at, expires_at)
VALUES (?, ?, ?, ?, ?)`, claim.APIKeyID, claim.Key, claim.Fingerprint, now, claim.ExpiresAt)
			return err
		}
		if err != nil {
			return err
		}
		var take bool
		if replay, take, err = row.Claim(claim, now, staleBefore); err != nil || !take {
			return err
		}
		return db.takeOver(ctx, tx, claim, now)
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

// saveResponse stores the response of a held key; it reports whether the
// key was still held (pending, with the claim's fingerprint).
func saveResponse(ctx context.Context, tx querier, claim *licensor.IdempotencyClaim, resp licensor.StoredResponse, at int64) (bool, error) {
	headers, body, err := sqlstore.ResponseValues(resp)
	if err != nil {
		return false, err
	}
	res, err := tx.ExecContext(ctx, `UPDATE idempotency_keys SET completed_at = ?, status = ?, headers = ?, body = ?
WHERE api_key_id = ? AND idempotency_key = ? AND fingerprint = ? AND started_at = ? AND completed_at IS NULL`,
		at, resp.Status, headers, body, claim.APIKeyID, claim.Key, claim.Fingerprint, claim.HeldSince)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// storeWithWrite stores the response of a successful write in its
// transaction (sqlstore.StoreWithWrite).
func storeWithWrite(ctx context.Context, tx querier, c licensor.Change, written licensor.Written) error {
	return sqlstore.StoreWithWrite(c, written, func(claim *licensor.IdempotencyClaim, resp licensor.StoredResponse) (bool, error) {
		return saveResponse(ctx, tx, claim, resp, c.Time)
	})
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
	n, err := db.writeOne(ctx, `DELETE FROM idempotency_keys WHERE expires_at < ?`, now)
	if err != nil {
		return 0, fmt.Errorf("sqlite: prune idempotency keys: %w", err)
	}
	return n, nil
}
