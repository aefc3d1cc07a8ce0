package entitlement_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/licensor/licensor/internal/testdb"
)

// heldStore is a real store whose user reads (FindGrants, FindUsersGrants)
// wait until release is closed, so that the loads of a cache pile up
// behind them; it counts both kinds of read and the most in flight.
type heldStore struct {
	licensor.Store
	release      chan struct{}
	singles      atomic.Int64
	batches      atomic.Int64
	batchedUsers atomic.Int64
	inflight     atomic.Int64
	maxInflight  atomic.Int64
}

func (s *heldStore) FindGrants(ctx context.Context, user string) ([]licensor.Grant, error) {
	s.singles.Add(1)
	defer s.enter()()
	<-s.release
	return s.Store.FindGrants(ctx, user)
}

func (s *heldStore) FindUsersGrants(ctx context.Context, users []string) ([]licensor.UserGrant, error) {
	s.batches.Add(1)
	s.batchedUsers.Add(int64(len(users)))
	defer s.enter()()
	<-s.release
	return s.Store.FindUsersGrants(ctx, users)
}

// enter counts a read in flight until the returned func, keeping the most.
func (s *heldStore) enter() (leave func()) {
	n := s.inflight.Add(1)
	for m := s.maxInflight.Load(); n > m && !s.maxInflight.CompareAndSwap(m, n); m = s.maxInflight.Load() {
	}
	return func() { s.inflight.Add(-1) }
}

type idsEncoder struct{}

func (idsEncoder) AppendChannel(b []byte, id string) []byte { return append(b, id...) }
func (idsEncoder) AppendAnswer(b []byte, user string, a *entitlement.Answer) []byte {
	return fmt.Append(b, user, slices.Collect(a.ProductIDs()))
}

// TestLoadsShareQueries: while a read is in flight, the misses of other
// users queue; a full batch (entitlement.LoadBatch) starts its read at
// once while fewer than LoadQueries are in flight, and the reads that end
// answer the rest with one query each, every user getting their own
// grants (on both engines).
func TestLoadsShareQueries(t *testing.T) {
	testdb.ForEach(t, func(t *testing.T, e testdb.Engine) {
		s := e.Open(t)
		ctx := t.Context()
		change := licensor.Change{Time: 1_700_000_000, Actor: "test"}
		var products []int64
		for i := range 3 {
			p := licensor.NewProduct(fmt.Sprint("Product ", i))
			if err := s.CreateProduct(ctx, &p, change); err != nil {
				t.Fatal(err)
			}
			products = append(products, p.ID)
		}
		// user-i holds products i%3 and, for odd i, (i+1)%3; user-0's
		// license is suspended: it holds nothing.
		// One read alone, LoadQueries-1 full batches started at once, then a
		// queue of LoadBatch+20 that the first two reads to end take.
		const users = 1 + (entitlement.LoadQueries-1)*entitlement.LoadBatch + entitlement.LoadBatch + 20
		var drafts []licensor.LicenseDraft
		want := map[string][]int64{}
		for i := range users {
			u := fmt.Sprint("user-", i)
			d := licensor.LicenseDraft{UserID: u, ProductID: products[i%3]}
			if i == 0 {
				d.Status = new(licensor.StatusSuspended)
			} else {
				want[u] = append(want[u], products[i%3])
			}
			drafts = append(drafts, d)
			if i%2 == 1 {
				drafts = append(drafts, licensor.LicenseDraft{UserID: u, ProductID: products[(i+1)%3]})
				want[u] = append(want[u], products[(i+1)%3])
			}
			slices.Sort(want[u])
		}
		if _, err := s.CreateLicenses(ctx, drafts, change); err != nil {
			t.Fatal(err)
		}
		held := &heldStore{Store: s, release: make(chan struct{})}
		ec := entitlement.New(held, idsEncoder{}, entitlement.Options{TTL: time.Hour})
		var wg sync.WaitGroup
		got := make([][]int64, users)
		errs := make([]error, users)
		answer := func(i int) {
			defer wg.Done()
			a, err := ec.Answer(ctx, fmt.Sprint("user-", i), change.Time)
			if err == nil {
				got[i] = slices.Collect(a.ProductIDs())
			}
			errs[i] = err
		}
		// The first user's read is alone; the others queue behind it.
		wg.Add(1)
		go answer(0)
		waitFor(t, func() bool { return held.singles.Load() == 1 }, "the first read")
		for i := 1; i < users; i++ {
			wg.Add(1)
			go answer(i)
		}
		waitFor(t, func() bool { return ec.Stats().UserMisses == users }, "every miss")
		time.Sleep(10 * time.Millisecond) // the misses' loads reach the queue
		if b := held.batches.Load(); b != entitlement.LoadQueries-1 {
			t.Errorf("%d batches started while the first read was held, want %d (full ones, up to %d in flight)", b, entitlement.LoadQueries-1, entitlement.LoadQueries)
		}
		close(held.release)
		wg.Wait()
		for i := range users {
			u := fmt.Sprint("user-", i)
			if errs[i] != nil || !slices.Equal(got[i], want[u]) {
				t.Errorf("%s: %v, %v; want %v", u, got[i], errs[i], want[u])
			}
		}
		if n := held.singles.Load(); n != 1 {
			t.Errorf("%d single reads, want 1", n)
		}
		if b, n := held.batches.Load(), held.batchedUsers.Load(); n != users-1 || b != entitlement.LoadQueries+1 {
			t.Errorf("%d users read in %d batches, want %d in %d", n, b, users-1, entitlement.LoadQueries+1)
		}
		if m := held.maxInflight.Load(); m != entitlement.LoadQueries {
			t.Errorf("at most %d reads in flight, want %d", m, entitlement.LoadQueries)
		}
		st := ec.Stats()
		if reads := held.singles.Load() + held.batches.Load(); st.Queries != uint64(reads)+uint64(len(products)) {
			t.Errorf("Stats().Queries = %d, want %d (%d user reads, %d products)", st.Queries, reads+int64(len(products)), reads, len(products))
		}
		// Now cached: no more reads.
		if _, err := ec.Answer(ctx, "user-7", change.Time); err != nil || held.batches.Load()+held.singles.Load() != int64(st.Queries)-int64(len(products)) {
			t.Errorf("a cached user was read again (%v)", err)
		}
	})
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
