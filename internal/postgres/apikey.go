package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateAPIKey stores k and sets its ID, and its CreatedAt when zero.
func (db *DB) CreateAPIKey(ctx context.Context, k *licensor.APIKey) error {
	created := k.CreatedAt
	if created == 0 {
		created = db.now().Unix()
	}
	hash := k.Hash
	if hash == nil {
		hash = []byte{}
	}
	var id int64
	err := db.pool.QueryRow(ctx, `INSERT INTO api_keys (name, prefix, hash, scope, networks, expires_at,
	created_at, revoked_at, last_used_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id`,
		k.Name, k.Prefix, hash, string(k.Scope), licensor.FormatNetworks(k.Networks), k.ExpiresAt,
		created, k.RevokedAt, k.LastUsedAt).Scan(&id)
	if err != nil {
		return fmt.Errorf("postgres: create API key: %w", interpretError(err))
	}
	k.ID, k.CreatedAt = id, created
	return nil
}

// FindAPIKeys lists every key, revoked ones included, by id.
func (db *DB) FindAPIKeys(ctx context.Context) ([]licensor.APIKey, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: find API keys: %w", err)
	}
	defer rows.Close()
	keys := []licensor.APIKey{}
	for rows.Next() {
		k, err := sqlstore.ScanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: find API keys: %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: find API keys: %w", err)
	}
	return keys, nil
}

// FindAPIKeyByPrefix returns the key with that prefix, usable or not.
func (db *DB) FindAPIKeyByPrefix(ctx context.Context, prefix string) (*licensor.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(db.pool.QueryRow(ctx, `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys WHERE prefix = $1`, prefix))
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("postgres: find API key: %w", licensor.Errorf(licensor.CodeAPIKeyInvalid, "unknown API key"))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find API key: %w", unavailable(err))
	}
	return &k, nil
}

// RevokeAPIKey revokes the keys with that name that still work (the
// current one and one in a rotation's grace period), or else the key with
// that prefix.
func (db *DB) RevokeAPIKey(ctx context.Context, nameOrPrefix string, c licensor.Change) error {
	err := db.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		for _, col := range []string{"name", "prefix"} {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE `+col+` = $1`, nameOrPrefix).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			tag, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1
WHERE `+col+` = $2 AND (revoked_at IS NULL OR revoked_at > $1)`, c.Time, nameOrPrefix)
			if err != nil || tag.RowsAffected() > 0 {
				return err
			}
			return licensor.Errorf(licensor.CodeConflict, "the API key %q was already revoked", nameOrPrefix)
		}
		return licensor.Errorf(licensor.CodeNotFound, "no API key is named %q or has that prefix", nameOrPrefix)
	})
	if err != nil {
		return fmt.Errorf("postgres: revoke API key: %w", err)
	}
	return nil
}

// RotateAPIKey replaces the current key named name by next; the old one
// works until graceUntil.
func (db *DB) RotateAPIKey(ctx context.Context, name string, next *licensor.APIKey, graceUntil int64, c licensor.Change) (*licensor.APIKey, error) {
	graceUntil = max(graceUntil, c.Time)
	var old licensor.APIKey
	var n licensor.APIKey
	err := db.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		old, err = sqlstore.ScanAPIKey(tx.QueryRow(ctx, `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys WHERE name = $1 AND revoked_at IS NULL FOR UPDATE`, name))
		if sqlstore.NoRow(err) {
			return licensor.Errorf(licensor.CodeNotFound, "no current API key is named %q", name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $1 WHERE id = $2`, graceUntil, old.ID); err != nil {
			return err
		}
		old.RevokedAt = &graceUntil
		n = *next
		n.Name, n.Scope, n.Networks, n.ExpiresAt, n.CreatedAt, n.RevokedAt, n.LastUsedAt = old.Name, old.Scope, old.Networks, old.ExpiresAt, c.Time, nil, nil
		return interpretError(tx.QueryRow(ctx, `INSERT INTO api_keys (name, prefix, hash, scope, networks, expires_at, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING id`, n.Name, n.Prefix, n.Hash, string(n.Scope), licensor.FormatNetworks(n.Networks), n.ExpiresAt, n.CreatedAt).Scan(&n.ID))
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: rotate API key: %w", err)
	}
	*next = n
	return &old, nil
}

// TouchAPIKeys records the last use of keys; older times are ignored, and
// so are unknown ids.
func (db *DB) TouchAPIKeys(ctx context.Context, lastUsed map[int64]int64) error {
	if len(lastUsed) == 0 {
		return nil
	}
	ids := make([]int64, 0, len(lastUsed))
	for id := range lastUsed {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	times := make([]int64, len(ids))
	for i, id := range ids {
		times[i] = lastUsed[id]
	}
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		_, err := tx.Exec(ctx, `UPDATE api_keys AS k SET last_used_at = u.t
FROM unnest($1::bigint[], $2::bigint[]) AS u(id, t)
WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.t)`, ids, times)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: touch API keys: %w", err)
	}
	return nil
}
