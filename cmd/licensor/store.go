package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/postgres"
	"github.com/licensor/licensor/internal/sqlite"
)

// DefaultDatabase is where data lives when nothing is configured.
const DefaultDatabase = "licensor.db"

// database is a store that can also manage its schema.
type database interface {
	licensor.Store
	Migrate(ctx context.Context) error
	SchemaVersion(ctx context.Context) (current, latest int, err error)
}

// dbFlag registers --db, defaulting to $DATABASE_URL, then licensor.db.
func dbFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	def := getenv("DATABASE_URL")
	if def == "" {
		def = DefaultDatabase
	}
	return fs.String("db", def, "database: a SQLite file path or sqlite: URI, or a postgres:// URL (env DATABASE_URL)")
}

// openDatabase picks the engine from the URL scheme.
func openDatabase(ctx context.Context, dsn string, logger *slog.Logger) (database, error) {
	switch {
	case isPostgres(dsn):
		return postgres.Open(ctx, dsn, postgres.Options{Logger: logger})
	case strings.Contains(dsn, "://"):
		return nil, usageError{fmt.Sprintf("unsupported database URL scheme in %q: use a SQLite file path or postgres://", redact(dsn))}
	default:
		return sqlite.Open(ctx, strings.TrimPrefix(dsn, "sqlite:"), sqlite.Options{Logger: logger})
	}
}

// openMigrated opens the database and applies pending migrations.
func openMigrated(ctx context.Context, dsn string, logger *slog.Logger) (database, error) {
	db, err := openDatabase(ctx, dsn, logger)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redact(dsn), err)
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", redact(dsn), err)
	}
	return db, nil
}

// redact hides the password of a database URL.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}

// isPostgres reports whether dsn names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
