// Package testdb gives tests fresh, migrated databases of every engine:
// SQLite always, and PostgreSQL when LICENSOR_POSTGRES_URL is set (required,
// so that a missing server fails instead of skipping, when
// LICENSOR_POSTGRES_REQUIRED=1, as in CI). Each PostgreSQL database is a
// schema of its own on that server, dropped when the test ends.
package testdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/postgres"
	"github.com/licensor/licensor/internal/sqlite"
	"github.com/licensor/licensor/internal/storetest"
)

// Engine is a storage engine under test.
type Engine struct {
	Name string
	// Open returns a fresh, migrated store, closed when the test ends.
	Open func(t testing.TB) licensor.Store
	// URL returns the --db value of a fresh, empty database (a file path
	// or a postgres:// URL), for tests that run the binary.
	URL func(t testing.TB) string
	// OpenAt opens a migrated store on the database at a URL from URL, so
	// that several stores (several "instances") share one database.
	OpenAt func(t testing.TB, dsn string) licensor.Store
}

// Engines lists the engines to test against.
func Engines(t testing.TB) []Engine {
	t.Helper()
	es := []Engine{{
		Name: "sqlite",
		Open: func(t testing.TB) licensor.Store { return OpenSQLite(t) },
		URL:  func(t testing.TB) string { return filepath.Join(t.TempDir(), "licensor.db") },
		OpenAt: func(t testing.TB, dsn string) licensor.Store {
			return storetest.Migrated(t, func(ctx context.Context) (*sqlite.DB, error) { return sqlite.Open(ctx, dsn, sqlite.Options{}) })
		},
	}}
	if PostgresConfigured(t) {
		es = append(es, Engine{
			Name: "postgres",
			Open: func(t testing.TB) licensor.Store { return OpenPostgres(t) },
			URL:  PostgresURL,
			OpenAt: func(t testing.TB, dsn string) licensor.Store {
				return storetest.Migrated(t, func(ctx context.Context) (*postgres.DB, error) {
					return postgres.Open(ctx, dsn, postgres.Options{MaxConns: 8})
				})
			},
		})
	}
	return es
}

// ForEach runs f as a subtest per engine.
func ForEach(t *testing.T, f func(t *testing.T, e Engine)) {
	for _, e := range Engines(t) {
		t.Run(e.Name, func(t *testing.T) { f(t, e) })
	}
}

// OpenSQLite opens a migrated SQLite store in a file of the test's own.
func OpenSQLite(t testing.TB) *sqlite.DB {
	t.Helper()
	dsn := filepath.Join(t.TempDir(), "licensor.db")
	return storetest.Migrated(t, func(ctx context.Context) (*sqlite.DB, error) { return sqlite.Open(ctx, dsn, sqlite.Options{}) })
}

// PostgresConfigured reports whether PostgreSQL tests run: true when
// LICENSOR_POSTGRES_URL is set; a fatal error when it is not but
// LICENSOR_POSTGRES_REQUIRED=1.
func PostgresConfigured(t testing.TB) bool {
	t.Helper()
	if os.Getenv("LICENSOR_POSTGRES_URL") != "" {
		return true
	}
	if os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1" {
		t.Fatal("LICENSOR_POSTGRES_REQUIRED=1 but LICENSOR_POSTGRES_URL is not set")
	}
	return false
}

// PostgresURL creates a schema of the test's own on the PostgreSQL server
// of LICENSOR_POSTGRES_URL and returns a URL that works in it. The test is
// skipped when no server is configured (and fails when one is required).
func PostgresURL(t testing.TB) string {
	t.Helper()
	if !PostgresConfigured(t) {
		t.Skip("LICENSOR_POSTGRES_URL is not set")
	}
	raw := os.Getenv("LICENSOR_POSTGRES_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatalf("connect to PostgreSQL at LICENSOR_POSTGRES_URL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, raw); err == nil {
			_, _ = c.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			c.Close(ctx)
		}
	})
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("LICENSOR_POSTGRES_URL is not a URL")
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// OpenPostgres opens a migrated PostgreSQL store in a schema of the test's
// own (see PostgresURL).
func OpenPostgres(t testing.TB) *postgres.DB {
	t.Helper()
	dsn := PostgresURL(t)
	return storetest.Migrated(t, func(ctx context.Context) (*postgres.DB, error) {
		return postgres.Open(ctx, dsn, postgres.Options{MaxConns: 8})
	})
}
