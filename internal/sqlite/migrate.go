package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered, forward-only schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in order. Versions must be
// 1, 2, 3, ... without gaps: the file names are NNNN_what.sql.
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %q is not named NNNN_name.sql", e.Name())
		}
		b, err := fs.ReadFile(migrationFiles, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: expected version %d", m.name, i+1)
		}
	}
	return ms, nil
}

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
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.version, db.now().Unix())
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate: %s: %w", m.name, err)
		}
		if applied {
			db.log.Info("sqlite: applied migration", "version", m.version, "name", m.name)
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
	var names []string
	for _, m := range ms {
		if m.version > current {
			names = append(names, m.name)
		}
	}
	return names, nil
}
