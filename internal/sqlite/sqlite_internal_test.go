package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
)

// openAt opens and migrates the database dsn, closed when the test ends.
func openAt(t testing.TB, dsn string, opts Options) *DB {
	t.Helper()
	return storetest.Migrated(t, func(ctx context.Context) (*DB, error) { return Open(ctx, dsn, opts) })
}

// openTest opens a migrated database in a file of the test's own.
func openTest(t *testing.T, name string) *DB {
	return openAt(t, filepath.Join(t.TempDir(), name), Options{})
}

func TestSplitDSN(t *testing.T) {
	for _, tc := range []struct {
		dsn, base, query string
		memory           bool
	}{
		{":memory:", "file::memory:", "", true},
		{"/tmp/a b.db", "file:/tmp/a b.db", "", false},
		{"/tmp/what?.db", "file:/tmp/what%3f.db", "", false},
		{"file:x.db?mode=rwc", "file:x.db", "mode=rwc", false},
		{"file:x?mode=memory&cache=shared", "file:x", "mode=memory&cache=shared", true},
	} {
		base, query, memory, err := splitDSN(tc.dsn)
		if err != nil || base != tc.base || query != tc.query || memory != tc.memory {
			t.Errorf("splitDSN(%q) = %q, %q, %v, %v", tc.dsn, base, query, memory, err)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	db := openTest(t, "m.db")
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	cur, latest, err := db.SchemaVersion(t.Context())
	if err != nil || cur != latest || latest < 1 {
		t.Fatalf("SchemaVersion = %d, %d, %v", cur, latest, err)
	}
}

func TestMemory(t *testing.T) {
	db, err := Open(t.Context(), ":memory:", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if cur, _, _ := db.SchemaVersion(t.Context()); cur != 0 {
		t.Fatalf("fresh database at version %d", cur)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	p := licensor.NewProduct("x")
	if err := db.CreateProduct(t.Context(), &p, licensor.Change{Time: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.FindProductByID(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
}

func TestSmoke(t *testing.T) {
	db := openTest(t, "s.db")
	ctx := t.Context()
	p := licensor.NewProduct("Sports HD")
	amount, cur := int64(1223), "EUR"
	p.PriceAmount, p.PriceCurrency, p.LicensePeriod = &amount, &cur, "P1M"
	p.Channels = licensor.Channels{licensor.ServiceLive: {"c1", "c2"}}
	if err := db.CreateProduct(ctx, &p, licensor.Change{Time: 100}); err != nil {
		t.Fatal(err)
	}
	got, err := db.FindProductByID(ctx, p.ID)
	if err != nil || got.Title != p.Title || *got.PriceAmount != 1223 || got.LicensePeriod != "P1M" || len(got.Channels["live"]) != 2 || got.IsBuyable != true {
		t.Fatalf("FindProductByID = %+v, %v", got, err)
	}
	order := "o-1"
	ls, err := db.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u1", ProductID: p.ID, OrderID: &order}, {UserID: "u2", ProductID: p.ID}}, licensor.Change{Time: 1000})
	if err != nil || len(ls) != 2 || ls[0].ID == 0 || ls[0].StopDate == nil {
		t.Fatalf("CreateLicenses = %+v, %v", ls, err)
	}
	_, err = db.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u3", ProductID: 999}, {UserID: "u1", ProductID: p.ID, OrderID: &order}}, licensor.Change{Time: 1000})
	var items licensor.ItemErrors
	if !errors.As(err, &items) || len(items) != 2 || items[1].Err.Meta["existing_id"] != fmt.Sprint(ls[0].ID) {
		t.Fatalf("conflict: %v", err)
	}
	page, err := db.FindLicenses(ctx, licensor.LicenseQuery{Limit: 1, Count: true, Sort: licensor.SortOrder{Field: "stop_date", Desc: true}, Now: 2000,
		Filter: licensor.LicenseFilter{Statuses: []licensor.Status{licensor.StatusActive}}})
	if err != nil || len(page.Licenses) != 1 || page.Next == nil || *page.Total != 2 {
		t.Fatalf("FindLicenses = %+v, %v", page, err)
	}
	err = db.DeleteProduct(ctx, p.ID, licensor.DeleteProductOptions{}, licensor.Change{Time: 3000})
	if licensor.ErrorCode(err) != licensor.CodeProductInUse {
		t.Fatalf("DeleteProduct: %v", err)
	}
	deleted, missing, err := db.DeleteLicenses(ctx, []int64{ls[0].ID, 12345}, true, licensor.Change{Time: 3000})
	if err != nil || len(deleted) != 1 || len(missing) != 1 {
		t.Fatalf("DeleteLicenses = %v, %v, %v", deleted, missing, err)
	}
	if err := db.DeleteProduct(ctx, p.ID, licensor.DeleteProductOptions{Cascade: true, IfMatch: p.ETag()}, licensor.Change{Time: 3000}); err != nil {
		t.Fatal(err)
	}

	k := licensor.APIKey{Name: "ops", Prefix: "lk_abcdefgh", Hash: []byte{1, 2}, Scope: licensor.ScopeWrite,
		Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	if err := db.CreateAPIKey(ctx, &k); err != nil {
		t.Fatal(err)
	}
	k2 := k
	k2.Prefix = "lk_other"
	if err := db.CreateAPIKey(ctx, &k2); licensor.ErrorCode(err) != licensor.CodeConflict {
		t.Fatalf("duplicate: %v", err)
	}
	if err := db.RevokeAPIKey(ctx, "lk_abcdefgh", licensor.Change{Time: 5}); err != nil {
		t.Fatal(err)
	}
	if err := db.TouchAPIKeys(ctx, map[int64]int64{k.ID: 9}); err != nil {
		t.Fatal(err)
	}
	got2, err := db.FindAPIKeyByPrefix(ctx, "lk_abcdefgh")
	if err != nil || *got2.RevokedAt != 5 || *got2.LastUsedAt != 9 || len(got2.Networks) != 1 {
		t.Fatalf("FindAPIKeyByPrefix = %+v, %v", got2, err)
	}
}

// Two handles on one file (two processes) racing for one order id: exactly
// one license, conflicts naming it, no errors.
func TestConcurrentOrderID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	var dbs []*DB
	for range 2 {
		db := openAt(t, path, Options{})
		dbs = append(dbs, db)
	}
	p := storetest.NewProduct(t, dbs[0])
	order := "same"
	var mu sync.Mutex
	var created []int64
	var conflicts []string
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			ls, err := dbs[i%2].CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID, OrderID: &order}}, licensor.Change{Time: 2})
			mu.Lock()
			defer mu.Unlock()
			var items licensor.ItemErrors
			switch {
			case err == nil:
				created = append(created, ls[0].ID)
			case errors.As(err, &items):
				conflicts = append(conflicts, items[0].Err.Meta["existing_id"].(string))
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if len(created) != 1 {
		t.Fatalf("created %v", created)
	}
	for _, c := range conflicts {
		if c != fmt.Sprint(created[0]) {
			t.Fatalf("conflict names %s, created %d", c, created[0])
		}
	}
}

// The connections are configured as the package documents: durability
// and concurrency depend on it.
func TestPragmas(t *testing.T) {
	db := openTest(t, "pragma.db")
	ctx := t.Context()
	for _, tc := range []struct {
		pool   *sql.DB
		pragma string
		want   string
	}{
		{db.write, "journal_mode", "wal"},
		{db.write, "synchronous", "2"}, // FULL
		{db.write, "foreign_keys", "1"},
		{db.write, "busy_timeout", "5000"},
		{db.write, "query_only", "0"},
		{db.write, "temp_store", "2"}, // MEMORY: the savepoints' journal
		{db.write, "cache_size", "-32768"},
		{db.read, "journal_mode", "wal"},
		{db.read, "busy_timeout", "5000"},
		{db.read, "query_only", "1"},
	} {
		var got string
		if err := tc.pool.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil || got != tc.want {
			t.Errorf("PRAGMA %s: got %q (%v), want %q", tc.pragma, got, err, tc.want)
		}
	}
	if _, err := db.read.ExecContext(ctx, `DELETE FROM products`); err == nil {
		t.Error("a reader connection could write")
	}
}

func TestLargeBatch(t *testing.T) {
	db := openTest(t, "batch.db")
	p := storetest.NewProduct(t, db)
	drafts := make([]licensor.LicenseDraft, licensor.DefaultMaxBatch)
	for i := range drafts {
		drafts[i] = licensor.LicenseDraft{UserID: "u", ProductID: p.ID, OrderID: new(fmt.Sprint("order-", i))}
	}
	start := time.Now()
	ls, err := db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 2})
	if err != nil || len(ls) != len(drafts) {
		t.Fatalf("CreateLicenses: %d, %v", len(ls), err)
	}
	t.Logf("%d licenses in %v", len(ls), time.Since(start))
	_, err = db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 3})
	var items licensor.ItemErrors
	if !errors.As(err, &items) || len(items) != len(drafts) || items[7].Err.Meta["existing_id"] != fmt.Sprint(ls[7].ID) {
		t.Fatalf("second CreateLicenses: %v", err)
	}
}

// TestOpenMustExist: with MustExist a missing file is an error, never a
// new empty database; an existing one opens read-write.
func TestOpenMustExist(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "typo.db")
	if db, err := Open(ctx, path, Options{MustExist: true}); err == nil {
		db.Close()
		t.Fatal("Open(MustExist) of a missing file succeeded")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(MustExist) created the file: %v", err)
	}
	db, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = Open(ctx, path, Options{MustExist: true})
	if err != nil {
		t.Fatalf("Open(MustExist) of an existing file: %v", err)
	}
	defer db.Close()
	if pending, err := db.PendingMigrations(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending after Migrate: %v %v", pending, err)
	}
}
