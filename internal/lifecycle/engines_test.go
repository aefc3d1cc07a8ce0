package lifecycle_test

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
)

// engine opens a fresh, migrated store.
type engine struct {
	name string
	open func(t *testing.T) licensor.Store
}

// forEachEngine runs f against SQLite, and against PostgreSQL when
// LICENSOR_POSTGRES_URL is set (required with LICENSOR_POSTGRES_REQUIRED=1).
func forEachEngine(t *testing.T, f func(t *testing.T, open func(t *testing.T) licensor.Store)) {
	es := []engine{{"sqlite", openSQLite}}
	switch raw := os.Getenv("LICENSOR_POSTGRES_URL"); {
	case raw != "":
		es = append(es, engine{"postgres", func(t *testing.T) licensor.Store { return openPostgres(t, raw) }})
	case os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1":
		t.Fatal("LICENSOR_POSTGRES_REQUIRED=1 but LICENSOR_POSTGRES_URL is not set")
	}
	for _, e := range es {
		t.Run(e.name, func(t *testing.T) { f(t, e.open) })
	}
}

func openSQLite(t *testing.T) licensor.Store {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "licensor.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

// openPostgres gives the test a schema of its own, dropped afterwards.
func openPostgres(t *testing.T, raw string) licensor.Store {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_lc_" + hex.EncodeToString(b[:])
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatalf("connect to PostgreSQL: %v", err)
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
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	db, err := postgres.Open(ctx, u.String(), postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}
