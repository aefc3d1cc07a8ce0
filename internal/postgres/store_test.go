package postgres_test

import (
	"context"
	"crypto/rand"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/postgres"
	"github.com/licensor/licensor/internal/storetest"
)

// maxSchemas caps the test schemas (and connection pools) alive at once,
// whatever -parallel is, so that the server's max_connections holds.
const maxSchemas = 8

// databaseURL returns LICENSOR_POSTGRES_URL, skipping the test when it is not
// set, unless LICENSOR_POSTGRES_REQUIRED=1 (as in CI).
func databaseURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("LICENSOR_POSTGRES_URL")
	if u == "" {
		if os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1" {
			t.Fatal("LICENSOR_POSTGRES_URL is not set and LICENSOR_POSTGRES_REQUIRED=1")
		}
		t.Skip("LICENSOR_POSTGRES_URL is not set")
	}
	return u
}

// opener returns a function that opens a fresh, migrated store in a schema
// of its own, dropped when the test ends.
func opener(base string) func(t *testing.T) *postgres.DB {
	slots := make(chan struct{}, maxSchemas)
	return func(t *testing.T) *postgres.DB {
		t.Helper()
		slots <- struct{}{}
		t.Cleanup(func() { <-slots })

		u, err := url.Parse(base)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			t.Fatalf("LICENSOR_POSTGRES_URL must be a postgres:// URL (parse error: %v)", err)
		}
		schema := "t_" + strings.ToLower(rand.Text())
		ident := pgx.Identifier{schema}.Sanitize()
		exec(t, t.Context(), base, "CREATE SCHEMA "+ident)
		t.Cleanup(func() {
			// t.Context() is already canceled when cleanups run.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			exec(t, ctx, base, "DROP SCHEMA "+ident+" CASCADE")
		})

		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		db, err := postgres.Open(t.Context(), u.String(), postgres.Options{MaxConns: 4})
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		t.Cleanup(func() {
			if err := db.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		if err := db.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		return db
	}
}

// exec runs one statement on a connection of its own.
func exec(t *testing.T, ctx context.Context, url, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func TestStore(t *testing.T) {
	open := opener(databaseURL(t))
	storetest.Run(t, func(t *testing.T) licensor.Store { return open(t) })
}

func TestMigrate(t *testing.T) {
	db := opener(databaseURL(t))(t)
	// Migrating an up-to-date database changes nothing.
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	current, latest, err := db.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if latest < 1 || current != latest {
		t.Errorf("SchemaVersion: got current %d latest %d, want current == latest >= 1", current, latest)
	}
}
