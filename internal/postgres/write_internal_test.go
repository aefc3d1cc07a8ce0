package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/storetest"
)

// openLanes opens a migrated store in a fresh schema with the given number
// of write lanes.
func openLanes(t testing.TB, u string, lanes int) *DB {
	t.Helper()
	return openAt(t, u, Options{MaxConns: 8, WriteLanes: lanes, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
}

// twoInstances opens two migrated stores (two instances) with the given
// number of write lanes each on one fresh schema, and creates a product.
func twoInstances(t *testing.T, lanes int) (a, b *DB, p licensor.Product) {
	t.Helper()
	u := schemaURL(t)
	a, b = openLanes(t, u, lanes), openLanes(t, u, lanes)
	return a, b, storetest.NewProduct(t, a)
}

// openAt opens a migrated store at u, closed when the test ends.
func openAt(t testing.TB, u string, opts Options) *DB {
	t.Helper()
	return storetest.Migrated(t, func(ctx context.Context) (*DB, error) { return Open(ctx, u, opts) })
}

// holdLane occupies every lane of db with a unit that waits until the
// returned function is called, so that the writes submitted meanwhile
// queue up and run as groups. release waits until started callers have
// had the chance to queue.
func holdLane(t *testing.T, db *DB) (release func(started *atomic.Int32, want int32)) {
	t.Helper()
	gate := make(chan struct{})
	var held sync.WaitGroup
	var running sync.WaitGroup
	for _, l := range db.lanes.all {
		held.Add(1)
		running.Go(func() {
			err := l.Do(t.Context(), func(ctx context.Context, tx *wtx) error {
				held.Done()
				<-gate
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	held.Wait()
	return func(started *atomic.Int32, want int32) {
		for started.Load() < want {
			time.Sleep(time.Millisecond)
		}
		// The callers are past their Add; let them reach the queue.
		time.Sleep(50 * time.Millisecond)
		close(gate)
		running.Wait()
	}
}

// Units of one group: each fails or succeeds alone, whatever the way it
// sends its statements (simple protocol, pipelined with arguments, rows,
// one row) and whether its failure left the transaction in error; the
// group commits once.
func TestGroupUnitsFailAlone(t *testing.T) {
	db := openLanes(t, schemaURL(t), 1)
	if _, err := db.pool.Exec(t.Context(), `CREATE TABLE scratch (x int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	before := db.lanes.stats()
	release := holdLane(t, db)

	const n = 30
	var started atomic.Int32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			started.Add(1)
			errs[i] = db.writeTx(t.Context(), func(ctx context.Context, tx *wtx) error {
				var err error
				switch i % 5 {
				case 0: // simple protocol: the pending statements go in the same string
					_, err = tx.Exec(ctx, fmt.Sprintf(`INSERT INTO scratch VALUES (%d)`, i))
				case 1: // with arguments: a pipeline
					_, err = tx.Exec(ctx, `INSERT INTO scratch VALUES ($1)`, i)
				case 2: // rows
					var rows pgx.Rows
					if rows, err = tx.Query(ctx, `INSERT INTO scratch VALUES ($1) RETURNING x`, i); err == nil {
						var xs []int32
						xs, err = pgx.CollectRows(rows, pgx.RowTo[int32])
						if err == nil && !slices.Equal(xs, []int32{int32(i)}) {
							err = fmt.Errorf("returned %v", xs)
						}
					}
				case 3: // one row, then a statement that fails on the server
					var x int32
					if err = tx.QueryRow(ctx, `INSERT INTO scratch VALUES ($1) RETURNING x`, i).Scan(&x); err == nil {
						_, err = tx.Exec(ctx, `SELECT 1 / (x - x) FROM scratch WHERE x = $1`, i)
					}
				case 4: // a write, then an error of the unit's own
					if _, err = tx.Exec(ctx, `INSERT INTO scratch VALUES ($1)`, i); err == nil {
						err = licensor.Errorf(licensor.CodeConflict, "unit %d refuses", i)
					}
				}
				return err
			})
		})
	}
	release(&started, n)
	wg.Wait()

	var want []int32
	for i, err := range errs {
		switch i % 5 {
		case 3:
			if pe := (*pgconn.PgError)(nil); !errors.As(err, &pe) || pe.Code != "22012" {
				t.Errorf("unit %d: %v, want division by zero", i, err)
			}
		case 4:
			if licensor.ErrorCode(err) != licensor.CodeConflict {
				t.Errorf("unit %d: %v, want its CONFLICT", i, err)
			}
		default:
			if err != nil {
				t.Errorf("unit %d: %v", i, err)
			}
			want = append(want, int32(i))
		}
	}
	rows, _ := db.pool.Query(t.Context(), `SELECT x FROM scratch ORDER BY x`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("committed %v (%v), want %v", got, err, want)
	}
	s := db.lanes.stats()
	units, commits := s.Succeeded-before.Succeeded, s.Commits-before.Commits
	t.Logf("%d units committed in %d transactions, largest group %d", units, commits, s.MaxGroup)
	if commits >= units || s.MaxGroup > maxGroup {
		t.Errorf("%d units committed in %d transactions, largest group %d: want fewer transactions, groups <= %d",
			units, commits, s.MaxGroup, maxGroup)
	}
	// The lane's connection is clean for the next group.
	if err := db.writeTx(t.Context(), func(ctx context.Context, tx *wtx) error {
		_, err := tx.Exec(ctx, `INSERT INTO scratch VALUES (1000)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

// Concurrent creates queued into groups: of those sharing an order id
// exactly one is created and the others get ORDER_ID_CONFLICT naming it,
// those of a missing product fail alone, the others are created, and the
// change feed holds each created license once, densely numbered.
func TestGroupedCreates(t *testing.T) {
	db := openLanes(t, schemaURL(t), 1)
	p := storetest.NewProduct(t, db)
	before := db.WriteStats()
	release := holdLane(t, db)

	const n = 60
	type result struct {
		ls  []licensor.License
		err error
	}
	results := make([]result, n)
	var started atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			d := licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID}
			switch i % 3 {
			case 0:
				d.OrderID = new("dup")
			case 1:
				d.ProductID = p.ID + 1000
			case 2:
				d.OrderID = new(fmt.Sprint("order-", i))
			}
			started.Add(1)
			ls, err := db.CreateLicenses(t.Context(), []licensor.LicenseDraft{d}, licensor.Change{Time: 2, RequestID: fmt.Sprint("r", i)})
			results[i] = result{ls, err}
		})
	}
	release(&started, n)
	wg.Wait()

	var winner int64
	created := map[int64]bool{}
	var conflicts []int64
	for i, r := range results {
		var items licensor.ItemErrors
		switch {
		case r.err == nil:
			if len(r.ls) != 1 || (i%3 == 0 && winner != 0) || i%3 == 1 {
				t.Errorf("create %d: %+v", i, r.ls)
				continue
			}
			if i%3 == 0 {
				winner = r.ls[0].ID
			}
			created[r.ls[0].ID] = true
		case errors.As(r.err, &items) && len(items) == 1:
			code := items[0].Err.Code
			switch {
			case i%3 == 0 && code == licensor.CodeOrderIDConflict:
				id, _ := strconv.ParseInt(fmt.Sprint(items[0].Err.Meta["existing_id"]), 10, 64)
				conflicts = append(conflicts, id)
			case i%3 == 1 && code == licensor.CodeProductNotFound:
			default:
				t.Errorf("create %d: %v", i, r.err)
			}
		default:
			t.Errorf("create %d: %v", i, r.err)
		}
	}
	if winner == 0 || len(conflicts) != n/3-1 {
		t.Errorf("order id dup: winner %d, %d conflicts, want one winner and %d conflicts", winner, len(conflicts), n/3-1)
	}
	for _, id := range conflicts {
		if id != winner {
			t.Errorf("conflict names %d, want %d", id, winner)
		}
	}
	if len(created) != n/3+1 {
		t.Errorf("%d licenses created, want %d", len(created), n/3+1)
	}
	for id := range created {
		if _, err := db.FindLicenseByID(t.Context(), id); err != nil {
			t.Errorf("created license %d: %v", id, err)
		}
	}

	page, err := db.Events(t.Context(), licensor.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int64]int{}
	for i, e := range page.Events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has position %d: the feed has a gap", i, e.Seq)
		}
		if e.Type == licensor.EventLicenseCreated {
			seen[e.LicenseID]++
		}
	}
	if len(seen) != len(created) {
		t.Errorf("created events for %d licenses, want %d", len(seen), len(created))
	}
	for id := range created {
		if seen[id] != 1 {
			t.Errorf("license %d has %d created events", id, seen[id])
		}
	}

	s := db.WriteStats()
	units, commits := s.Succeeded-before.Succeeded, s.Commits-before.Commits
	t.Logf("%d units committed in %d transactions, largest group %d", units, commits, s.MaxGroup)
	if commits >= units || s.MaxGroup > maxGroup {
		t.Errorf("%d units committed in %d transactions, largest group %d: want fewer transactions, groups <= %d",
			units, commits, s.MaxGroup, maxGroup)
	}
}

// Two instances, two lanes each, creating and deleting at once: the feed
// stays dense, and every license has its created event, then its deleted
// one if it was deleted.
func TestGroupCommitInstancesFeed(t *testing.T) {
	a, b, p := twoInstances(t, 2)
	var mu sync.Mutex
	created, deleted := map[int64]bool{}, map[int64]bool{}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			db := []*DB{a, b}[w%2]
			for k := range 10 {
				ls, err := db.CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID,
					OrderID: new(fmt.Sprint(w, "-", k))}}, licensor.Change{Time: 2})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				created[ls[0].ID] = true
				mu.Unlock()
				if k%2 == 1 {
					gone, _, err := db.DeleteLicenses(t.Context(), []int64{ls[0].ID}, false, licensor.Change{Time: 3})
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					deleted[gone[0]] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()

	var events []licensor.Event
	for after := int64(0); ; {
		page, err := a.Events(t.Context(), licensor.EventQuery{After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page.Events...)
		if len(page.Events) == 0 {
			break
		}
		after = page.Next
	}
	want := 1 + len(created) + len(deleted)
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	state := map[int64]licensor.EventType{}
	for i, e := range events {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has position %d: the feed has a gap", i, e.Seq)
		}
		switch e.Type {
		case licensor.EventLicenseCreated:
			if state[e.LicenseID] != "" {
				t.Errorf("license %d created after %s", e.LicenseID, state[e.LicenseID])
			}
		case licensor.EventLicenseDeleted:
			if state[e.LicenseID] != licensor.EventLicenseCreated {
				t.Errorf("license %d deleted after %q", e.LicenseID, state[e.LicenseID])
			}
		}
		state[e.LicenseID] = e.Type
	}
	for id := range created {
		if want := licensor.EventLicenseCreated; deleted[id] {
			if state[id] != licensor.EventLicenseDeleted {
				t.Errorf("license %d ends %q, want deleted", id, state[id])
			}
		} else if state[id] != want {
			t.Errorf("license %d ends %q, want created", id, state[id])
		}
	}
	sa, sb := a.lanes.stats(), b.lanes.stats()
	t.Logf("instance a: %d units in %d commits; b: %d units in %d commits",
		sa.Succeeded, sa.Commits, sb.Succeeded, sb.Commits)
}

// The pool size: the URL's pool_max_conns wins over the default, and
// Options.MaxConns over both.
func TestPoolSize(t *testing.T) {
	u := schemaURL(t)
	for _, c := range []struct {
		url  string
		opt  int32
		want int32
	}{
		{u, 0, DefaultMaxConns()},
		{u + "&pool_max_conns=3", 0, 3},
		{u + "&pool_max_conns=3", 5, 5},
	} {
		db, err := Open(t.Context(), c.url, Options{MaxConns: c.opt})
		if err != nil {
			t.Fatal(err)
		}
		if got := db.pool.Config().MaxConns; got != c.want {
			t.Errorf("%s, MaxConns %d: pool of %d, want %d", c.url, c.opt, got, c.want)
		}
		db.Close()
	}
	if d := DefaultMaxConns(); d < 8 || d > 32 {
		t.Errorf("DefaultMaxConns() = %d", d)
	}
}

// A single create resolved from a cached product that changed or went
// meanwhile runs again on the general path: the license has the new price,
// and a deleted product is not found.
func TestCachedProductChanges(t *testing.T) {
	db := openLanes(t, schemaURL(t), 2)
	p := licensor.NewProduct("p")
	p.PriceAmount, p.PriceCurrency = new(int64(100)), new("EUR")
	if err := db.CreateProduct(t.Context(), &p, licensor.Change{Time: 1}); err != nil {
		t.Fatal(err)
	}
	create := func(order string) ([]licensor.License, error) {
		return db.CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID, OrderID: &order}},
			licensor.Change{Time: 2})
	}
	for i := range 2 { // the first reads the product, the second uses the cache
		ls, err := create(fmt.Sprint("a", i))
		if err != nil || *ls[0].PriceAmount != 100 {
			t.Fatalf("create %d: %+v, %v", i, ls, err)
		}
	}
	if db.products.get(p.ID) == nil {
		t.Fatal("the product is not cached")
	}
	// Changed behind the cache's back, as another instance would.
	if _, err := db.pool.Exec(t.Context(), `UPDATE products SET price_amount = 250, version = version + 1 WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	ls, err := create("b")
	if err != nil || *ls[0].PriceAmount != 250 {
		t.Fatalf("create after the price change: %+v, %v", ls, err)
	}
	if got, err := db.FindLicenseByID(t.Context(), ls[0].ID); err != nil || *got.PriceAmount != 250 {
		t.Fatalf("stored: %+v, %v", got, err)
	}
	// The order id of a license created through the cache is taken.
	_, err = create("b")
	var items licensor.ItemErrors
	if !errors.As(err, &items) || items[0].Err.Code != licensor.CodeOrderIDConflict ||
		items[0].Err.Meta["existing_id"] != strconv.FormatInt(ls[0].ID, 10) {
		t.Fatalf("same order id again: %v", err)
	}
	if _, err := db.pool.Exec(t.Context(), `UPDATE products SET deleted_at = 3 WHERE id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	_, err = create("c")
	if !errors.As(err, &items) || items[0].Err.Code != licensor.CodeProductNotFound {
		t.Fatalf("create after the product's deletion: %v", err)
	}
}

// Two instances creating single licenses of overlapping order ids at once
// (the groups' one-statement inserts wait for each other's): exactly one
// license per order id, conflicts naming it, and no other error.
func TestGroupedCreatesInstancesOrderIDs(t *testing.T) {
	a, b, p := twoInstances(t, 2)
	holders := orderHolders{orders: 12} // order ids o0, o1, ...
	onBoth(48, a, b, func(db *DB) {
		for _, k := range rand.Perm(holders.orders)[:6] {
			o := fmt.Sprint("o", k)
			ls, err := db.CreateLicenses(t.Context(), []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID, OrderID: &o}},
				licensor.Change{Time: 2})
			var items licensor.ItemErrors
			switch {
			case err == nil:
				holders.hold(o, ls[0].ID)
			case errors.As(err, &items) && len(items) == 1 && items[0].Err.Code == licensor.CodeOrderIDConflict:
				id, _ := strconv.ParseInt(fmt.Sprint(items[0].Err.Meta["existing_id"]), 10, 64)
				holders.hold(o, id)
			default:
				t.Error(err)
			}
		}
	})
	holders.check(t, a)
}

// Units of every failure class, mixed with valid ones in the same groups,
// round after round: bytes the server refuses (NUL, invalid UTF-8, in
// the simple protocol and in a pipeline), a unique violation, a foreign
// key violation, a statement timeout, a lock timeout, and a statement
// error the unit swallows and returns nil after. Every valid unit
// commits; every failing one gets its own error.
func TestGroupUnitsFailAloneEveryClass(t *testing.T) {
	db := openLanes(t, schemaURL(t), 1)
	ctx := t.Context()
	for _, s := range []string{
		`CREATE TABLE parent (id int PRIMARY KEY)`,
		`INSERT INTO parent VALUES (1)`,
		`CREATE TABLE child (x int PRIMARY KEY, parent int REFERENCES parent, s text)`,
		`INSERT INTO child VALUES (-1, 1, 'taken'), (-2, 1, 'locked')`,
	} {
		if _, err := db.pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	// A transaction elsewhere holds row -2, for the lock timeout.
	locker, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(context.WithoutCancel(ctx))
	if _, err := locker.Exec(ctx, `SELECT * FROM child WHERE x = -2 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	type class struct {
		name string
		fn   func(ctx context.Context, tx *wtx, x int) error
		code string // the SQLSTATE of the unit's own error ("" for none)
	}
	classes := []class{
		{"NUL in a pipeline", func(ctx context.Context, tx *wtx, x int) error {
			_, err := tx.Exec(ctx, `INSERT INTO child VALUES ($1, 1, $2)`, x, "a\x00b")
			return err
		}, "22021"},
		{"invalid UTF-8 in a pipeline", func(ctx context.Context, tx *wtx, x int) error {
			_, err := tx.Exec(ctx, `INSERT INTO child VALUES ($1, 1, $2)`, x, "a\xffb")
			return err
		}, "22021"},
		{"invalid UTF-8 as one row", func(ctx context.Context, tx *wtx, x int) error {
			var got int
			return tx.QueryRow(ctx, `INSERT INTO child VALUES ($1, 1, $2) RETURNING x`, x, "\xc0\xaf").Scan(&got)
		}, "22021"},
		{"unique violation", func(ctx context.Context, tx *wtx, x int) error {
			_, err := tx.Exec(ctx, `INSERT INTO child VALUES (-1, 1, 'again')`)
			return err
		}, "23505"},
		{"foreign key violation", func(ctx context.Context, tx *wtx, x int) error {
			_, err := tx.Exec(ctx, `INSERT INTO child VALUES ($1, 99, 'orphan')`, x)
			return err
		}, "23503"},
		{"statement timeout", func(ctx context.Context, tx *wtx, x int) error {
			if _, err := tx.Exec(ctx, `INSERT INTO child VALUES ($1, 1, 'slow')`, x); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `SET LOCAL statement_timeout = '20ms'; SELECT pg_sleep(1)`)
			return err
		}, "57014"},
		{"lock timeout", func(ctx context.Context, tx *wtx, x int) error {
			_, err := tx.Exec(ctx, `SET LOCAL lock_timeout = '20ms'; UPDATE child SET s = 'mine' WHERE x = -2`)
			return err
		}, "55P03"},
		{"swallowed error", func(ctx context.Context, tx *wtx, x int) error {
			_, _ = tx.Exec(ctx, `SELECT 1 / (x - x) FROM child WHERE x = -1`)
			return nil // the unit ignores it: the transaction is in error
		}, "release"},
	}
	const rounds, valid = 5, 20
	var validFailed, wrongErr int
	next := 0
	for round := range rounds {
		release := holdLane(t, db)
		var started atomic.Int32
		n := valid + len(classes)
		errs := make([]error, n)
		xs := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			next++
			xs[i] = next
			wg.Go(func() {
				started.Add(1)
				errs[i] = db.lanes.do(ctx, func(ctx context.Context, tx *wtx) error {
					if i < len(classes) {
						return classes[i].fn(ctx, tx, xs[i])
					}
					_, err := tx.Exec(ctx, `INSERT INTO child VALUES ($1, 1, $2)`, xs[i], fmt.Sprint("ok ", i))
					return err
				})
			})
		}
		release(&started, int32(n))
		wg.Wait()
		for i, err := range errs {
			if i >= len(classes) {
				if err != nil {
					validFailed++
					t.Errorf("round %d: valid unit %d: %v", round, i, err)
				}
				continue
			}
			c := classes[i]
			var pe *pgconn.PgError
			switch {
			case c.code == "release" && err != nil && strings.Contains(err.Error(), "release savepoint"):
			case errors.As(err, &pe) && pe.Code == c.code:
			default:
				wrongErr++
				t.Errorf("round %d: %s: %v, want its own %s", round, c.name, err, c.code)
			}
		}
	}
	t.Logf("%d rounds: %d of %d valid units failed; %d of %d failing units got another error than their own",
		rounds, validFailed, rounds*valid, wrongErr, rounds*len(classes))
	var got int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM child WHERE s LIKE 'ok %'`).Scan(&got); err != nil || got != rounds*valid {
		t.Errorf("%d valid rows committed (%v), want %d", got, err, rounds*valid)
	}
	var stray int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM child WHERE s = 'slow' OR s = 'mine' OR parent <> 1`).Scan(&stray); err != nil || stray != 0 {
		t.Errorf("%d rows of failed units committed (%v)", stray, err)
	}
}
