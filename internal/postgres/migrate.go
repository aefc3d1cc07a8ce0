package postgres

import (
	"context"
	"embed"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensor/licensor/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in order.
func migrations() ([]sqlstore.Migration, error) { return sqlstore.Migrations(migrationFiles) }

// Migrate applies the pending embedded migrations, each in its own
// transaction together with its row in schema_migrations. It is idempotent,
// and safe when several instances start at once: they take turns on a
// session advisory lock named after the search_path, and each reads the
// applied versions only once it holds the lock.
//
// When the URL named a search_path whose first schema does not exist yet,
// Migrate creates it (tests give every store its own schema).
func (db *DB) Migrate(ctx context.Context) error {
	if err := db.migrate(ctx); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

func (db *DB) migrate(ctx context.Context) (err error) {
	ms, err := migrations()
	if err != nil {
		return err
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	const key = `hashtext('licensor.migrate:' || current_setting('search_path'))`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+key+`)`); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer func() {
		// A session lock outlives errors: release it, or else drop the
		// connection (and the session with it).
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(ctx, `SELECT pg_advisory_unlock(`+key+`)`); uerr != nil {
			conn.Conn().Close(ctx)
		}
	}()

	if err := db.createSchema(ctx, conn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT  NOT NULL
)`); err != nil {
		return err
	}
	applied := map[int]bool{}
	rows, err := conn.Query(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return err
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return err
	}
	current := 0
	for _, v := range versions {
		applied[v] = true
		current = max(current, v)
	}
	if current > len(ms) {
		db.log.Warn("postgres: the database schema is newer than this program", "current", current, "latest", len(ms))
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, m.Version, db.now().Unix())
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		db.log.Info("postgres: applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

// createSchema creates the first schema of the URL's search_path when no
// schema of the search_path exists.
func (db *DB) createSchema(ctx context.Context, conn *pgxpool.Conn) error {
	if db.searchPath == "" {
		return nil
	}
	var current *string
	if err := conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&current); err != nil {
		return err
	}
	if current != nil {
		return nil
	}
	first, _, _ := strings.Cut(db.searchPath, ",")
	first = strings.TrimSpace(first)
	if unq, ok := strings.CutPrefix(first, `"`); ok {
		first = strings.ReplaceAll(strings.TrimSuffix(unq, `"`), `""`, `"`)
	}
	if first == "" || first == "$user" {
		return nil
	}
	_, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{first}.Sanitize())
	if err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	return nil
}

// SchemaVersion returns the version of the database schema (0 before the
// first migration) and the latest version this program knows.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int, err error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	latest = len(ms)
	var exists bool
	if err := db.pool.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	if !exists {
		return 0, latest, nil
	}
	err = db.pool.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&current)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
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
		return nil, fmt.Errorf("postgres: pending migrations: %w", err)
	}
	return sqlstore.Pending(ms, current), nil
}
