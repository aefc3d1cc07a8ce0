package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/storetest"
)

// holdWriter runs a write that waits until the returned release is called,
// so that the writes started meanwhile queue and then run as one group.
// wait blocks until n writes are queued.
func holdWriter(t *testing.T, db *DB) (wait func(n int), release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan error, 1)
	running := make(chan struct{})
	go func() {
		done <- db.writeTx(context.Background(), func(ctx context.Context, tx *sql.Tx) error {
			close(running)
			<-held
			return nil
		})
	}()
	<-running
	wait = func(n int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for db.WriteStats().Queued < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", db.WriteStats().Queued, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	release = func() {
		close(held)
		if err := <-done; err != nil {
			t.Errorf("the holding write: %v", err)
		}
	}
	return wait, release
}

// Concurrent creates share commits and land exactly as if they had run one
// by one: unique order ids created, shared ones created once with the
// others told which license holds them, missing products reported, every
// created license on disk and in the feed, positions without gaps.
func TestGroupCommitConcurrentCreates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "g.db")
	db := openAt(t, path, Options{})
	ctx := t.Context()
	p := storetest.NewProduct(t, db)
	before := db.WriteStats()

	const writers = 64 // = maxGroup: one group
	type result struct {
		ls  []licensor.License
		err error
	}
	results := make([]result, writers)
	order := func(i int) string {
		if i%8 == 0 {
			return fmt.Sprint("shared-", i%32) // 4 ids, each wanted by 2 writers
		}
		return fmt.Sprint("own-", i)
	}
	product := func(i int) int64 {
		if i%8 == 3 {
			return 999999 // missing
		}
		return p.ID
	}
	wait, release := holdWriter(t, db)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			id := order(i)
			results[i].ls, results[i].err = db.CreateLicenses(ctx,
				[]licensor.LicenseDraft{{UserID: fmt.Sprint("u", i), ProductID: product(i), OrderID: &id}},
				licensor.Change{Time: 2, Actor: "t"})
		})
	}
	wait(writers)
	release()
	wg.Wait()

	holders := map[string]int64{}
	created := 0
	for i, r := range results {
		if product(i) != p.ID {
			var items licensor.ItemErrors
			if !errors.As(r.err, &items) || items[0].Err.Code != licensor.CodeProductNotFound {
				t.Errorf("writer %d, missing product: %v", i, r.err)
			}
			continue
		}
		if r.err == nil {
			created++
			if prev, ok := holders[order(i)]; ok {
				t.Errorf("order id %s created twice: %d and %d", order(i), prev, r.ls[0].ID)
			}
			holders[order(i)] = r.ls[0].ID
		}
	}
	for i, r := range results {
		if product(i) != p.ID || r.err == nil {
			continue
		}
		var items licensor.ItemErrors
		if !errors.As(r.err, &items) || items[0].Err.Code != licensor.CodeOrderIDConflict {
			t.Errorf("writer %d: %v", i, r.err)
			continue
		}
		if got, want := items[0].Err.Meta["existing_id"], fmt.Sprint(holders[order(i)]); got != want {
			t.Errorf("writer %d: the conflict names %v, the holder is %s", i, got, want)
		}
	}
	// 64 writers: 8 with a missing product, 8 on 4 shared order ids.
	if want := writers - 8 - 4; created != want || len(holders) != want {
		t.Errorf("%d created (%d order ids), want %d", created, len(holders), want)
	}

	s := db.WriteStats()
	if got := s.Commits - before.Commits; got != 2 {
		t.Errorf("%d commits for the holding write and %d creates, want 2 (one group)", got, writers)
	}
	if s.MaxGroup != writers {
		t.Errorf("largest group %d, want %d", s.MaxGroup, writers)
	}

	// On disk: another handle on the file sees exactly the created ones,
	// and the feed has one event each, at gap-free positions.
	other, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var n, events, minSeq, maxSeq int64
	if err := other.read.QueryRowContext(ctx, `SELECT count(*) FROM licenses`).Scan(&n); err != nil || n != int64(created) {
		t.Errorf("licenses on disk: %d (%v), want %d", n, err, created)
	}
	err = other.read.QueryRowContext(ctx, `SELECT count(*), min(seq), max(seq) FROM events`).Scan(&events, &minSeq, &maxSeq)
	if err != nil || events != int64(created)+1 || minSeq != 1 || maxSeq != events {
		t.Errorf("events: %d, seq %d..%d (%v), want %d at 1..%[4]d", events, minSeq, maxSeq, err, created+1)
	}
	for order, id := range holders {
		l, err := other.FindLicenseByID(ctx, id)
		if err != nil || *l.OrderID != order {
			t.Errorf("license %d: %+v, %v", id, l, err)
		}
	}
}

// A write that fails inside a group is undone alone: its rows are gone,
// its neighbours' are committed; a caller that gives up while its write
// runs does not roll back the group.
func TestGroupCommitFailingWriteRollsBackAlone(t *testing.T) {
	db := openTest(t, "f.db")
	ctx := t.Context()
	boom := errors.New("boom")
	insert := func(title string, fail bool) func(ctx context.Context, tx *sql.Tx) error {
		return func(ctx context.Context, tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO products (title, title_lower, type, is_premium, is_buyable,
	is_visible, recurring, created_at, updated_at, version) VALUES (?, ?, 'subscription', 0, 1, 1, 0, 1, 1, 1)`, title, title)
			if err != nil {
				return err
			}
			if fail {
				return boom
			}
			return nil
		}
	}
	wait, release := holdWriter(t, db)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i, fail := range []bool{false, true, false, true, false} {
		wg.Go(func() { errs[i] = db.writeTx(ctx, insert(fmt.Sprint("p", i), fail)) })
	}
	cctx, cancel := context.WithCancel(ctx)
	var cancelled error
	wg.Go(func() {
		cancelled = db.writeTx(cctx, func(ctx context.Context, tx *sql.Tx) error {
			cancel() // the caller gives up while its write runs
			return insert("cancelled", false)(ctx, tx)
		})
	})
	wait(6)
	release()
	wg.Wait()
	for i, err := range errs {
		if want := []error{nil, boom}[i%2]; !errors.Is(err, want) {
			t.Errorf("write %d: %v, want %v", i, err, want)
		}
	}
	if cancelled != nil {
		t.Errorf("the write whose caller gave up while it ran: %v, want it committed", cancelled)
	}
	rows, err := db.read.QueryContext(ctx, `SELECT title FROM products ORDER BY title`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var titles []string
	for rows.Next() {
		var s string
		rows.Scan(&s)
		titles = append(titles, s)
	}
	if got := fmt.Sprint(titles); got != "[cancelled p0 p2 p4]" {
		t.Errorf("products %s, want [cancelled p0 p2 p4]", got)
	}
}

// In memory the readers and the writer share one connection: concurrent
// writes and reads must not wait for each other forever.
func TestGroupCommitMemory(t *testing.T) {
	db := openAt(t, ":memory:", Options{})
	ctx := t.Context()
	p := storetest.NewProduct(t, db)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			order := fmt.Sprint("o", i%16)
			ls, err := db.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "u", ProductID: p.ID, OrderID: &order}}, licensor.Change{Time: 2})
			if err == nil {
				if _, err := db.FindLicenseByID(ctx, ls[0].ID); err != nil {
					t.Error(err)
				}
			} else if items := (licensor.ItemErrors{}); !errors.As(err, &items) || items[0].Err.Code != licensor.CodeOrderIDConflict {
				t.Error(err)
			}
			if _, err := db.FindLicenses(ctx, licensor.LicenseQuery{Count: true, Filter: licensor.LicenseFilter{UserID: new("u")}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	page, err := db.FindLicenses(ctx, licensor.LicenseQuery{Limit: 100})
	if err != nil || len(page.Licenses) != 16 {
		t.Fatalf("%d licenses (%v), want 16", len(page.Licenses), err)
	}
}

// The reader statements are prepared once and reused; a query that does
// not prepare still fails as it did.
func TestReaderStatementsPrepared(t *testing.T) {
	db := openTest(t, "stmt.db")
	ctx := t.Context()
	for range 3 {
		if _, err := db.FindLicenseByID(ctx, 42); licensor.ErrorCode(err) != licensor.CodeLicenseNotFound {
			t.Fatalf("FindLicenseByID: %v", err)
		}
	}
	db.reads.mu.RLock()
	n := len(db.reads.stmts)
	db.reads.mu.RUnlock()
	if n != 1 {
		t.Errorf("%d statements cached after one query three times, want 1", n)
	}
	var x int
	if err := db.rq().QueryRowContext(ctx, `SELECT nope FROM nowhere`).Scan(&x); err == nil {
		t.Error("a bad query succeeded")
	}
}

// A batch larger than aloneAbove runs in a transaction of its own (no
// savepoint, whose journal would make it quadratic); small writes around
// it still share theirs.
func TestGroupCommitLargeBatchRunsAlone(t *testing.T) {
	db := openTest(t, "alone.db")
	ctx := t.Context()
	p := storetest.NewProduct(t, db)
	before := db.WriteStats()
	wait, release := holdWriter(t, db)
	sizes := []int{1, 1, aloneAbove + 1, 1, 1}
	errs := make([]error, len(sizes))
	var wg sync.WaitGroup
	for i, n := range sizes {
		drafts := make([]licensor.LicenseDraft, n)
		for j := range drafts {
			drafts[j] = licensor.LicenseDraft{UserID: fmt.Sprint("u", i), ProductID: p.ID}
		}
		wg.Go(func() { _, errs[i] = db.CreateLicenses(ctx, drafts, licensor.Change{Time: 2}) })
		wait(i + 1) // queued in this order
	}
	release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	// The holding write, then [1 1], [batch], [1 1].
	if got := db.WriteStats().Commits - before.Commits; got != 4 {
		t.Errorf("%d commits, want 4", got)
	}
}

// Options.OnWriteGroup sees every write transaction.
func TestOnWriteGroup(t *testing.T) {
	var mu sync.Mutex
	var groups []int
	db := openAt(t, filepath.Join(t.TempDir(), "hook.db"), Options{OnWriteGroup: func(g groupcommit.GroupInfo) {
		mu.Lock()
		defer mu.Unlock()
		if g.Committed {
			groups = append(groups, g.Size)
		}
	}})
	storetest.NewProduct(t, db)
	db.Close() // waits for the lane: every OnWriteGroup call has returned
	mu.Lock()
	defer mu.Unlock()
	if s := db.WriteStats(); len(groups) != int(s.Commits) || groups[len(groups)-1] != 1 {
		t.Errorf("OnWriteGroup saw committed groups %v; WriteStats %+v", groups, s)
	}
}
