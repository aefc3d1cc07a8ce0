package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// ClaimIdempotencyKey starts a request under claim's key; see
// licensor.Store. A new key is inserted with ON CONFLICT DO NOTHING, which
// waits for a concurrent claim of the same key; an existing one is read
// FOR UPDATE, which waits for a write storing its response.
func (db *DB) ClaimIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim, now, staleBefore int64) (*licensor.StoredResponse, error) {
	var replay *licensor.StoredResponse
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		replay = nil
		for range 3 {
			tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (api_key_id, idempotency_key, fingerprint, started_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (api_key_id, idempotency_key) DO NOTHING`, claim.APIKeyID, claim.Key, claim.Fingerprint, now, claim.ExpiresAt)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 1 {
				return nil
			}
			var row sqlstore.IdempotencyRow
			err = tx.QueryRow(ctx, `SELECT `+sqlstore.IdempotencyColumns+`
FROM idempotency_keys WHERE api_key_id = $1 AND idempotency_key = $2 FOR UPDATE`, claim.APIKeyID, claim.Key).Scan(row.Dest()...)
			if sqlstore.NoRow(err) {
				continue // released meanwhile: insert again
			}
			if err != nil {
				return err
			}
			var take bool
			if replay, take, err = row.Claim(claim, now, staleBefore); err != nil || !take {
				return err
			}
			return takeOver(ctx, tx, claim, now)
		}
		return errors.New("the idempotency key keeps changing hands")
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim idempotency key: %w", err)
	}
	if replay == nil {
		claim.HeldSince = now // the INSERT or take-over above set started_at = now
	}
	return replay, nil
}

// takeOver makes claim the holder of an existing key, forgetting the
// previous holder and any response.
func takeOver(ctx context.Context, tx *wtx, claim *licensor.IdempotencyClaim, now int64) error {
	_, err := tx.Exec(ctx, `UPDATE idempotency_keys SET fingerprint = $1, started_at = $2, expires_at = $3,
	completed_at = NULL, status = NULL, headers = NULL, body = NULL
WHERE api_key_id = $4 AND idempotency_key = $5`, claim.Fingerprint, now, claim.ExpiresAt, claim.APIKeyID, claim.Key)
	return err
}

// saveResponse stores the response of a held key; it reports whether the
// key was still held (pending, with the claim's fingerprint).
func saveResponse(ctx context.Context, tx *wtx, claim *licensor.IdempotencyClaim, resp licensor.StoredResponse, at int64) (bool, error) {
	headers, body, err := sqlstore.ResponseValues(resp)
	if err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, `UPDATE idempotency_keys SET completed_at = $1, status = $2, headers = $3, body = $4
WHERE api_key_id = $5 AND idempotency_key = $6 AND fingerprint = $7 AND started_at = $8 AND completed_at IS NULL`,
		at, resp.Status, headers, body, claim.APIKeyID, claim.Key, claim.Fingerprint, claim.HeldSince)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// storeWithWrite stores the response of a successful write in its
// transaction (sqlstore.StoreWithWrite).
func storeWithWrite(ctx context.Context, tx *wtx, c licensor.Change, written licensor.Written) error {
	return sqlstore.StoreWithWrite(c, written, func(claim *licensor.IdempotencyClaim, resp licensor.StoredResponse) (bool, error) {
		return saveResponse(ctx, tx, claim, resp, c.Time)
	})
}

// CompleteIdempotencyKey stores the response of a held key whose request
// wrote nothing. A key no longer held is left alone.
func (db *DB) CompleteIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim, resp licensor.StoredResponse) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := saveResponse(ctx, tx, claim, resp, db.now().Unix())
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: complete idempotency key: %w", err)
	}
	return nil
}

// ReleaseIdempotencyKey forgets a held key, so that a retry runs afresh.
// A completed key is kept.
func (db *DB) ReleaseIdempotencyKey(ctx context.Context, claim *licensor.IdempotencyClaim) error {
	_, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys
WHERE api_key_id = $1 AND idempotency_key = $2 AND fingerprint = $3 AND started_at = $4 AND completed_at IS NULL`,
		claim.APIKeyID, claim.Key, claim.Fingerprint, claim.HeldSince)
	if err != nil {
		return fmt.Errorf("postgres: release idempotency key: %w", err)
	}
	return nil
}

// PruneIdempotencyKeys deletes the keys that expired before now.
func (db *DB) PruneIdempotencyKeys(ctx context.Context, now int64) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM idempotency_keys WHERE expires_at < $1`, now)
	if err != nil {
		return 0, fmt.Errorf("postgres: prune idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}
