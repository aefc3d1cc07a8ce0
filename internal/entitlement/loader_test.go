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

// heldStore is a real store whose single-user reads (FindGrants) wait
// until release is closed, so that the loads of a cache pile up behind
// them; it counts both kinds of read.
type heldStore struct {
	licensor.Store
	release      chan struct{}
	singles      atomic.Int64
	batches      atomic.Int64
	batchedUsers atomic.Int64
}

func (s *heldStore) FindGrants(ctx context.Context, user string) ([]licensor.Grant, error) {
	s.singles.Add(1)
	<-s.release
	return s.Store.FindGrants(ctx, user)
}

func (s *heldStore) FindUsersGrants(ctx context.Context, users []string) ([]licensor.UserGrant, error) {
	s.batches.Add(1)
	s.batchedUsers.Add(int64(len(users)))
	return s.Store.FindUsersGrants(ctx, users)
}

type idsEncoder struct{}

func (idsEncoder) AppendChannel(b []byte, id string) []byte { return append(b, id...) }
func (idsEncoder) AppendAnswer(b []byte, user string, a *entitlement.Answer) []byte {
	return fmt.Append(b, user, slices.Collect(a.ProductIDs()))
}

// TestLoadsShareQueries: while LoadQueries reads are in flight, the misses
// of other users queue, and the reads that end answer them with one query
// per licensor.MaxGrantUsers users, each user getting their own grants
// (on both engines).
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
		const users = entitlement.LoadQueries + licensor.MaxGrantUsers + 20
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
		// The first LoadQueries users take every place; the others queue.
		for i := range entitlement.LoadQueries {
			wg.Add(1)
			go answer(i)
		}
		waitFor(t, func() bool { return held.singles.Load() == entitlement.LoadQueries }, "the first reads")
		for i := entitlement.LoadQueries; i < users; i++ {
			wg.Add(1)
			go answer(i)
		}
		waitFor(t, func() bool { return ec.Stats().UserMisses == users }, "every miss")
		time.Sleep(10 * time.Millisecond) // the misses' loads reach the queue
		close(held.release)
		wg.Wait()
		for i := range users {
			u := fmt.Sprint("user-", i)
			if errs[i] != nil || !slices.Equal(got[i], want[u]) {
				t.Errorf("%s: %v, %v; want %v", u, got[i], errs[i], want[u])
			}
		}
		if n := held.singles.Load(); n != entitlement.LoadQueries {
			t.Errorf("%d single reads, want %d", n, entitlement.LoadQueries)
		}
		queued := users - entitlement.LoadQueries
		if b, n := held.batches.Load(), held.batchedUsers.Load(); n != int64(queued) || b < 2 || b > int64(queued+licensor.MaxGrantUsers-1)/licensor.MaxGrantUsers+entitlement.LoadQueries {
			t.Errorf("%d users read in %d batches, want %d users in a few batches of up to %d", n, b, queued, licensor.MaxGrantUsers)
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
