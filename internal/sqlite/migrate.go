package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/licensor/licensor/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]sqlstore.Migration, error) { return sqlstore.Migrations(migrationFiles) }

// Migrate applies the pending embedded migrations, each in its own write
// transaction together with its row in schema_migrations. It is idempotent,
// and safe when several processes start at once: BEGIN IMMEDIATE
// serializes them and each re-checks the version inside its transaction.
func (db *DB) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT`
	if err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, create)
		return err
	}); err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, m := range ms {
		applied := false
		// A migration may rewrite whole tables: alone, without a savepoint.
		err := db.writeTxSized(ctx, aloneAbove+1, func(ctx context.Context, tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, db.now().Unix())
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %s: %w", m.Name, err)
		}
		if applied {
			db.log.Info("sqlite: applied migration", "version", m.Version, "name", m.Name)
		}
	}
	current, latest, err := db.SchemaVersion(ctx)
	if err == nil && current > latest {
		db.log.Warn("sqlite: the database schema is newer than this program", "current", current, "latest", latest)
	}
	return nil
}

// SchemaVersion returns the version of the database schema (0 before the
// first migration) and the latest version this program knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	latest = len(ms)
	var exists int
	err = db.read.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&exists)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	if exists == 0 {
		return 0, latest, nil
	}
	err = db.read.QueryRowContext(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: schema version: %w", err)
	}
	return current, latest, nil
}

// PendingMigrations returns the names of the embedded migrations the
// database has not applied yet, in the order Migrate would apply them.
func (db *DB) PendingMigrations(ctx context.Context) ([]string, error) {
	current, _, err := db.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := migrations()
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending migrations: %w", err)
	}
	return sqlstore.Pending(ms, current), nil
}
