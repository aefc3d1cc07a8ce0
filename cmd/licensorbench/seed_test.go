package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/postgres"
	"github.com/licensor/licensor/internal/sqlite"
)

func queryInt(t *testing.T, db benchDB, q string) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	var err error
	switch d := db.(type) {
	case *sqliteDB:
		err = d.db.QueryRowContext(ctx, q).Scan(&n)
	case *pgDB:
		err = d.conn.QueryRow(ctx, q).Scan(&n)
	}
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// checkSeed seeds 10,000 licenses (bulk, indexes rebuilt) and 1,000 more
// (a delete pool), then checks the data against the schema's rules and
// the distributions the harness promises, and reads it back through
// licensor's store.
func checkSeed(t *testing.T, kind, dsn string, store licensor.Store) {
	ctx := context.Background()
	db, err := openBenchDB(ctx, kind, dsn, true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.close()
	const n, users, products = 10_000, 2_500, 300
	now := nowUnix()
	if err := db.seedProducts(ctx, seedCatalogue(products)); err != nil {
		t.Fatal(err)
	}
	if err := db.seedLicenses(ctx, licenseSeed{count: n, users: users, products: products,
		createdBase: now - 94608000, createdSpan: 94608000, now: now, bulk: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.seedLicenses(ctx, licenseSeed{from: n, count: 1000, users: users, products: products,
		createdBase: now - 3600, createdSpan: 3600, now: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.settle(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.maxLicenseID(ctx); got != n+1000 {
		t.Errorf("max license id = %d, want %d", got, n+1000)
	}
	checks := []struct {
		what     string
		query    string
		min, max int64
	}{
		{"licenses", "SELECT count(*) FROM licenses", n + 1000, n + 1000},
		{"distinct order ids", "SELECT count(DISTINCT order_id) FROM licenses", 9500, 10500},
		{"licenses without order id (10 %)", "SELECT count(*) FROM licenses WHERE order_id IS NULL", 800, 1400},
		{"users out of range", "SELECT count(*) FROM licenses WHERE CAST(user_id AS INTEGER) NOT BETWEEN 1 AND 2500", 0, 0},
		{"distinct users", "SELECT count(DISTINCT user_id) FROM licenses", 2000, 2500},
		{"products out of range", "SELECT count(*) FROM licenses WHERE product_id NOT BETWEEN 1 AND 300", 0, 0},
		{"product 1 (about 6 %)", "SELECT count(*) FROM licenses WHERE product_id = 1", 400, 900},
		{"stored ACTIVE past its stop date", "SELECT count(*) FROM licenses WHERE status = 'ACTIVE' AND stop_date <= " + itoa(now), 0, 0},
		{"ACTIVE now", "SELECT count(*) FROM licenses WHERE status = 'ACTIVE'", 1000, 4500},
		{"stop dates in the future", "SELECT count(*) FROM licenses WHERE stop_date > " + itoa(now), 1000, 5000},
		{"stop dates in the past", "SELECT count(*) FROM licenses WHERE stop_date <= " + itoa(now), 4000, 9000},
		{"never ending", "SELECT count(*) FROM licenses WHERE stop_date IS NULL", 300, 2000},
		{"SUSPENDED (4 %)", "SELECT count(*) FROM licenses WHERE status = 'SUSPENDED'", 250, 600},
		{"start after stop", "SELECT count(*) FROM licenses WHERE stop_date <= start_date", 0, 0},
		{"expiry differs from stop", "SELECT count(*) FROM licenses WHERE expiry_date <> stop_date", 0, 0},
		{"deleted", "SELECT count(*) FROM licenses WHERE deleted_at IS NOT NULL", 0, 0},
	}
	for _, c := range checks {
		if got := queryInt(t, db, c.query); got < c.min || got > c.max {
			t.Errorf("%s: %d, want %d..%d", c.what, got, c.min, c.max)
		}
	}

	// licensor reads the rows: types, nulls and booleans are what it wrote.
	l, err := store.FindLicenseByID(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := store.FindProductByID(ctx, l.ProductID)
	if err != nil {
		t.Fatal(err)
	}
	if l.Recurring != p.Recurring || l.PriceAmount == nil || *l.PriceAmount != productPrice(p.ID) || len(p.Channels[licensor.ServiceLive]) == 0 {
		t.Errorf("license %+v of product %+v", l, p)
	}
	page, err := store.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{UserID: &l.UserID}, Limit: 100, Now: now})
	if err != nil || len(page.Licenses) == 0 {
		t.Errorf("FindLicenses by user %s: %v, %v", l.UserID, page, err)
	}
	for _, x := range page.Licenses {
		if x.UserID != l.UserID {
			t.Errorf("FindLicenses by user %s returned %+v", l.UserID, x)
		}
	}

	// The storage references write the same rows.
	row := licenseRow{userID: "7", productID: 3, start: now, stop: now + 10, orderID: "ref-1", recurring: false, price: productPrice(3), createdAt: now, purchaseTimeNow: now}
	if err := db.insertOne(ctx, &row); err != nil {
		t.Fatal(err)
	}
	rows := []licenseRow{row, row}
	rows[0].orderID, rows[1].orderID = "ref-2", "ref-3"
	if err := db.insertBatch(ctx, rows); err != nil {
		t.Fatal(err)
	}
	last, _ := db.maxLicenseID(ctx)
	if err := db.deleteBatch(ctx, []int64{last, last - 1}, now); err != nil {
		t.Fatal(err)
	}
	if _, err := store.FindLicenseByID(ctx, last); licensor.ErrorCode(err) != licensor.CodeLicenseNotFound {
		t.Errorf("a license deleted by the reference reads as %v", err)
	}
	if _, err := store.FindLicenseByID(ctx, last-2); err != nil {
		t.Errorf("license inserted by the reference: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestSeedSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "seed.db")
	store, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkSeed(t, "sqlite", path, store)
}

func TestSeedPostgres(t *testing.T) {
	url := os.Getenv("LICENSOR_POSTGRES_URL")
	if url == "" {
		t.Skip("LICENSOR_POSTGRES_URL not set")
	}
	ctx := context.Background()
	eng, err := newEngine(t.TempDir(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.dropAll(context.Background()); err != nil {
			t.Error(err)
		}
	})
	dsn, err := eng.create(ctx, "seedtest")
	if err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	checkSeed(t, "postgres", dsn, store)
}
