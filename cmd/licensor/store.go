package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"regexp"
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
	PendingMigrations(ctx context.Context) ([]string, error)
	Engine() licensor.Engine
}

// dbFlag registers --db; envFlags fills it from $DATABASE_URL when the
// command line does not set it. The default shown by -h is never the
// environment's value, which may hold a password.
func dbFlag(fs *flag.FlagSet, getenv func(string) string) *string {
	return fs.String("db", DefaultDatabase, "database: a SQLite file path or sqlite: URI, or a postgres:// URL (env DATABASE_URL)")
}

// dbTarget is a checked --db: a PostgreSQL URL or a SQLite file.
type dbTarget struct {
	dsn      string
	postgres bool
	path     string // SQLite: the file (or file: URI), without "sqlite:"
}

// keywordDSN matches a libpq keyword/value connection string
// ("host=db user=licensor password=..."), which pgx would accept but which
// is no path and no URL.
var keywordDSN = regexp.MustCompile(`^\s*[A-Za-z_][A-Za-z0-9_]*\s*=`)

// parseDB classifies --db, refusing what is neither a path nor a URL.
// Its errors never quote the value, which may hold a password.
func parseDB(dsn string) (dbTarget, error) {
	switch {
	case dsn == "":
		return dbTarget{}, usageError{"--db is empty: give a SQLite file path or a postgres:// URL"}
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return dbTarget{dsn: dsn, postgres: true}, nil
	case strings.Contains(dsn, "://"):
		return dbTarget{}, usageError{fmt.Sprintf("unsupported database URL scheme in %q: use a SQLite file path or postgres://", redact(dsn))}
	case keywordDSN.MatchString(dsn):
		return dbTarget{}, usageError{"--db looks like a keyword/value connection string (host=... dbname=...): write it as a URL, " +
			"postgres://USER:PASSWORD@HOST:5432/DBNAME?sslmode=verify-full (a SQLite file whose name starts with NAME= can be given as ./NAME=...)"}
	}
	return dbTarget{dsn: dsn, path: strings.TrimPrefix(dsn, "sqlite:")}, nil
}

// inMemory reports whether the SQLite database lives in memory (tests).
func (t dbTarget) inMemory() bool {
	return t.path == ":memory:" || strings.HasPrefix(t.path, "file::memory:") || strings.Contains(t.path, "mode=memory")
}

// file is the SQLite file's path in the file system ("" for a URI).
func (t dbTarget) file() string {
	if t.postgres || t.inMemory() || strings.HasPrefix(t.path, "file:") {
		return ""
	}
	return t.path
}

// open connects to the database; with mustExist, a SQLite file is never
// created.
func (t dbTarget) open(ctx context.Context, logger *slog.Logger, mustExist bool) (database, error) {
	var (
		db  database
		err error
	)
	if t.postgres {
		db, err = postgres.Open(ctx, t.dsn, postgres.Options{Logger: logger})
	} else {
		db, err = sqlite.Open(ctx, t.path, sqlite.Options{Logger: logger, MustExist: mustExist})
	}
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redact(t.dsn), err)
	}
	return db, nil
}

// openMigrated opens the database, creating a SQLite file if needed, and
// applies pending migrations: what migrate and serve do.
func openMigrated(ctx context.Context, dsn string, logger *slog.Logger) (database, error) {
	t, err := parseDB(dsn)
	if err != nil {
		return nil, err
	}
	db, err := t.open(ctx, logger, false)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database %s: %w", redact(dsn), err)
	}
	return db, nil
}

// openExisting opens a database that must exist with a current schema:
// what every command but migrate and serve does. It never creates a file
// nor changes a schema, and says which command to run when it cannot go on.
func openExisting(ctx context.Context, dsn string, logger *slog.Logger) (database, error) {
	t, err := parseDB(dsn)
	if err != nil {
		return nil, err
	}
	if f := t.file(); f != "" {
		if err := fileExists(f); err != nil {
			return nil, err
		}
	}
	db, err := t.open(ctx, logger, true)
	if err != nil {
		return nil, err
	}
	if err := checkSchema(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", redact(dsn), err)
	}
	return db, nil
}

// fileExists refuses a SQLite path with no file, saying how to create one.
func fileExists(path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no database at %s: create it with licensor migrate --db %s (or start licensor serve)", path, path)
	}
	return nil
}

// checkSchema refuses a database whose schema is behind this binary.
func checkSchema(ctx context.Context, db database) error {
	current, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	switch {
	case current == 0:
		return errors.New("it has no licensor schema: run licensor migrate first (or start licensor serve, which migrates)")
	case current < latest:
		return fmt.Errorf("the schema is at version %d but this licensor needs %d: run licensor migrate (or serve without --migrate=false)", current, latest)
	}
	return nil
}

// The secrets of connection strings: a URL's password, and a password=
// parameter (libpq keyword string or URL query).
var (
	urlPassword = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):\S*@`)
	kvPassword  = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s&]*)`)
)

// redact hides every password in s: a URL's (postgres://u:xxxxx@host) and
// a password= parameter's. It is the one redaction of the program, for
// errors, logs, help text and /debug/pprof/cmdline.
func redact(s string) string {
	s = urlPassword.ReplaceAllString(s, "${1}:xxxxx@")
	return kvPassword.ReplaceAllString(s, "${1}xxxxx")
}

// redactArgs returns a copy of a command line with every password hidden.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = redact(a)
	}
	return out
}

// isPostgres reports whether dsn names a PostgreSQL database.
func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}
