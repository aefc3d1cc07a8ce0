package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

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
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO api_keys (name, prefix, hash, scope, networks, expires_at,
	created_at, revoked_at, last_used_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING id`,
			k.Name, k.Prefix, hash, k.Scope, licensor.FormatNetworks(k.Networks), k.ExpiresAt,
			created, k.RevokedAt, k.LastUsedAt).Scan(&id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create API key: %w", interpretError(err))
	}
	k.ID, k.CreatedAt = id, created
	return nil
}

// FindAPIKeys lists every key, revoked ones included, by id.
func (db *DB) FindAPIKeys(ctx context.Context) ([]licensor.APIKey, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find API keys: %w", err)
	}
	keys, err := collect(rows, sqlstore.ScanAPIKey)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find API keys: %w", err)
	}
	return keys, nil
}

// FindAPIKeyByPrefix returns the key with that prefix, usable or not.
func (db *DB) FindAPIKeyByPrefix(ctx context.Context, prefix string) (*licensor.APIKey, error) {
	k, err := sqlstore.ScanAPIKey(db.rq().QueryRowContext(pointQuery(ctx), `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys WHERE prefix = ?`, prefix))
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("sqlite: find API key: %w", licensor.Errorf(licensor.CodeAPIKeyInvalid, "unknown API key"))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find API key: %w", unavailable(err))
	}
	return &k, nil
}

// RevokeAPIKey revokes the keys with that name that still work (the
// current one and one in a rotation's grace period), or else the key with
// that prefix.
func (db *DB) RevokeAPIKey(ctx context.Context, nameOrPrefix string, c licensor.Change) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		for _, col := range []string{"name", "prefix"} {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE `+col+` = ?`, nameOrPrefix).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			res, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ?
WHERE `+col+` = ? AND (revoked_at IS NULL OR revoked_at > ?)`, c.Time, nameOrPrefix, c.Time)
			if err != nil {
				return err
			}
			if changed, err := res.RowsAffected(); err != nil || changed > 0 {
				return err
			}
			return licensor.Errorf(licensor.CodeConflict, "the API key %q was already revoked", nameOrPrefix)
		}
		return licensor.Errorf(licensor.CodeNotFound, "no API key is named %q or has that prefix", nameOrPrefix)
	})
	if err != nil {
		return fmt.Errorf("sqlite: revoke API key: %w", err)
	}
	return nil
}

// RotateAPIKey replaces the current key named name by next; the old one
// works until graceUntil.
func (db *DB) RotateAPIKey(ctx context.Context, name string, next *licensor.APIKey, graceUntil int64, c licensor.Change) (*licensor.APIKey, error) {
	graceUntil = max(graceUntil, c.Time)
	var old licensor.APIKey
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		old, err = sqlstore.ScanAPIKey(tx.QueryRowContext(ctx, `SELECT `+sqlstore.APIKeyColumns+` FROM api_keys WHERE name = ? AND revoked_at IS NULL`, name))
		if sqlstore.NoRow(err) {
			return licensor.Errorf(licensor.CodeNotFound, "no current API key is named %q", name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE id = ?`, graceUntil, old.ID); err != nil {
			return err
		}
		old.RevokedAt = &graceUntil
		n := *next
		n.Name, n.Scope, n.Networks, n.ExpiresAt, n.CreatedAt, n.RevokedAt, n.LastUsedAt = old.Name, old.Scope, old.Networks, old.ExpiresAt, c.Time, nil, nil
		if err := tx.QueryRowContext(ctx, `INSERT INTO api_keys (name, prefix, hash, scope, networks, expires_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING id`, n.Name, n.Prefix, n.Hash, n.Scope, licensor.FormatNetworks(n.Networks), n.ExpiresAt, n.CreatedAt).Scan(&n.ID); err != nil {
			return interpretError(err)
		}
		*next = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: rotate API key: %w", err)
	}
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
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE api_keys SET last_used_at = ?
WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, id := range ids {
			if _, err := stmt.ExecContext(ctx, lastUsed[id], id, lastUsed[id]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: touch API keys: %w", err)
	}
	return nil
}
