package postgres

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
)

// schemaURL returns LICENSOR_POSTGRES_URL with a fresh search_path whose
// schema does not exist yet (Migrate creates it) and is dropped at the end.
// It is not testdb.PostgresURL, which creates the schema first, and which
// these tests cannot import (testdb imports this package).
func schemaURL(t testing.TB) string {
	t.Helper()
	base := os.Getenv("LICENSOR_POSTGRES_URL")
	if base == "" {
		t.Skip("LICENSOR_POSTGRES_URL is not set")
	}
	schema := "ti_" + strings.ToLower(crand.Text())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema: %v", err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// openTest opens a store at u, not migrated, with the given number of
// write lanes (0: the default), closed when the test ends.
func openTest(t testing.TB, u string, lanes int) *DB {
	t.Helper()
	db, err := Open(t.Context(), u, Options{MaxConns: 8, WriteLanes: lanes, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// Several instances migrating one fresh schema at once.
func TestConcurrentMigrate(t *testing.T) {
	u := schemaURL(t)
	var dbs []*DB
	for range 4 {
		dbs = append(dbs, openTest(t, u, 0))
	}
	if cur, _, err := dbs[0].SchemaVersion(t.Context()); err != nil || cur != 0 {
		t.Fatalf("SchemaVersion before Migrate = %d, %v", cur, err)
	}
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			if err := db.Migrate(t.Context()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	cur, latest, err := dbs[0].SchemaVersion(t.Context())
	if err != nil || cur != latest {
		t.Fatalf("SchemaVersion = %d, %d, %v", cur, latest, err)
	}
}

func TestMalformedURLHidesPassword(t *testing.T) {
	_, err := Open(t.Context(), "postgres://u:s3cret@host:notaport/db", Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("Open: %v", err)
	}
}

// Two instances (pools) racing batches of the same order ids in shuffled
// orders: exactly one license per order id, conflicts naming it, and no
// error escapes.
func TestConcurrentOverlappingBatches(t *testing.T) {
	a, b, p := twoInstances(t, 0)
	holders := orderHolders{orders: 10} // order ids o0, o1, ...
	onBoth(64, a, b, func(db *DB) {
		var drafts []licensor.LicenseDraft
		for _, k := range rand.Perm(holders.orders) {
			drafts = append(drafts, licensor.LicenseDraft{UserID: "u", ProductID: p.ID, OrderID: new(fmt.Sprint("o", k))})
		}
		ls, err := db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 2})
		var items licensor.ItemErrors
		switch {
		case err == nil:
			for _, l := range ls {
				holders.hold(*l.OrderID, l.ID)
			}
		case errors.As(err, &items):
			for _, it := range items {
				if it.Err.Code != licensor.CodeOrderIDConflict {
					t.Errorf("item error %v", it.Err)
					continue
				}
				id, _ := strconv.ParseInt(it.Err.Meta["existing_id"].(string), 10, 64)
				holders.hold(*drafts[it.Index].OrderID, id)
			}
		default:
			t.Error(err)
		}
	})
	holders.check(t, a)
}

// DeleteProduct racing CreateLicenses: a product is never deleted while a
// live license points at it.
func TestDeleteProductVersusCreate(t *testing.T) {
	u := schemaURL(t)
	db := openLanes(t, u, 0)
	for round := range 20 {
		p := licensor.NewProduct(fmt.Sprint("p", round))
		if err := db.CreateProduct(t.Context(), &p, licensor.Change{Time: 1}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				_, err := db.CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID}}, licensor.Change{Time: 2})
				if c := licensor.ErrorCode(err); c != "" && c != licensor.CodeProductNotFound {
					t.Error(err)
				}
			})
		}
		wg.Go(func() {
			err := db.DeleteProduct(t.Context(), p.ID, licensor.DeleteProductOptions{}, licensor.Change{Time: 3})
			if c := licensor.ErrorCode(err); c != "" && c != licensor.CodeProductInUse {
				t.Error(err)
			}
		})
		wg.Wait()
		var orphans int
		err := db.pool.QueryRow(t.Context(), `SELECT count(*) FROM licenses l JOIN products p ON p.id = l.product_id
WHERE l.deleted_at IS NULL AND p.deleted_at IS NOT NULL`).Scan(&orphans)
		if err != nil || orphans != 0 {
			t.Fatalf("live licenses of deleted products: %d, %v", orphans, err)
		}
	}
}

func TestLargeBatch(t *testing.T) {
	u := schemaURL(t)
	db := openLanes(t, u, 0)
	p := storetest.NewProduct(t, db)
	drafts := make([]licensor.LicenseDraft, licensor.DefaultMaxBatch)
	for i := range drafts {
		o := fmt.Sprint("order-", i)
		drafts[i] = licensor.LicenseDraft{UserID: "u", ProductID: p.ID, OrderID: &o}
	}
	start := time.Now()
	ls, err := db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 2})
	if err != nil || len(ls) != len(drafts) {
		t.Fatalf("CreateLicenses: %d, %v", len(ls), err)
	}
	t.Logf("%d licenses in %v", len(ls), time.Since(start))
	for i := 1; i < len(ls); i++ {
		if ls[i].ID <= ls[i-1].ID || *ls[i].OrderID != *drafts[i].OrderID {
			t.Fatalf("license %d out of order", i)
		}
	}
	// Again: every item conflicts, and each names its holder.
	_, err = db.CreateLicenses(t.Context(), drafts, licensor.Change{Time: 3})
	var items licensor.ItemErrors
	if !errors.As(err, &items) || len(items) != len(drafts) || items[7].Err.Meta["existing_id"] != fmt.Sprint(ls[7].ID) {
		t.Fatalf("second CreateLicenses: %v", err)
	}
}

// Many requests claiming one new key at once: one holds it, the others are
// told it is in flight.
func TestConcurrentClaims(t *testing.T) {
	u := schemaURL(t)
	a, b := openLanes(t, u, 0), openTest(t, u, 0)
	var mu sync.Mutex
	codes := map[licensor.Code]int{}
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			c := &licensor.IdempotencyClaim{APIKeyID: 1, Key: "k", Fingerprint: "fp", ExpiresAt: 1000}
			r, err := []*DB{a, b}[i%2].ClaimIdempotencyKey(t.Context(), c, 10, 0)
			mu.Lock()
			defer mu.Unlock()
			if r != nil {
				t.Errorf("replay %+v", r)
			}
			codes[licensor.ErrorCode(err)]++
		})
	}
	wg.Wait()
	if codes[""] != 1 || codes[licensor.CodeIdempotencyKeyInFlight] != 31 {
		t.Fatalf("claims: %v, want one holder and 31 in flight", codes)
	}
}

// onBoth runs f n times at once, alternately on a and b, and waits.
func onBoth(n int, a, b *DB, f func(db *DB)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { f([]*DB{a, b}[i%2]) })
	}
	wg.Wait()
}

// orderHolders collects, by order id, the licenses that concurrent
// creates report as its holder (created, or named by a conflict).
type orderHolders struct {
	orders int // how many order ids
	mu     sync.Mutex
	m      map[string]map[int64]bool
}

func (h *orderHolders) hold(orderID string, id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]map[int64]bool{}
	}
	if h.m[orderID] == nil {
		h.m[orderID] = map[int64]bool{}
	}
	h.m[orderID][id] = true
}

// check fails unless each order id has exactly one holder and db holds
// one license per order id.
func (h *orderHolders) check(t *testing.T, db *DB) {
	t.Helper()
	if len(h.m) != h.orders {
		t.Errorf("order ids seen: %d, want %d", len(h.m), h.orders)
	}
	for o, ids := range h.m {
		if len(ids) != 1 {
			t.Errorf("order id %s: holders %v, want exactly one", o, ids)
		}
	}
	page, err := db.FindLicenses(t.Context(), licensor.LicenseQuery{Limit: 100, Count: true})
	if err != nil || *page.Total != int64(h.orders) {
		t.Fatalf("FindLicenses: %+v, %v", page, err)
	}
}
