package entitlement

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// listingStore is a userStore that also lists every user's grants
// (Store.ListGrants) and its products (Store.FindProducts, one page), the
// reads of a warm-up; listGate, when set, holds each ListGrants until a
// value is received from it, after sending on listing.
type listingStore struct {
	*userStore
	listGate chan struct{}
	listing  chan struct{}
	lists    int
}

func (s *listingStore) ListGrants(ctx context.Context, after string, limit int) ([]licensor.UserGrant, error) {
	s.mu.Lock()
	users := make([]string, 0, len(s.licenses))
	for u := range s.licenses {
		if u > after {
			users = append(users, u)
		}
	}
	slices.Sort(users)
	var out []licensor.UserGrant
	for _, u := range users {
		for i := range s.licenses[u] {
			if g, ok := licensor.GrantOf(&s.licenses[u][i]); len(out) < limit {
				out = append(out, licensor.UserGrant{User: u, Active: ok, Grant: g})
			}
		}
	}
	s.lists++
	gate := s.listGate
	s.mu.Unlock()
	if gate != nil {
		s.listing <- struct{}{}
		<-gate
	}
	return out, nil
}

func (s *listingStore) FindProducts(ctx context.Context, q licensor.ProductQuery) (*licensor.ProductPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	page := &licensor.ProductPage{}
	for _, p := range s.products {
		page.Products = append(page.Products, *p)
	}
	return page, nil
}

// newListingStore is 40 users of three licenses each (one SUSPENDED), of
// 5 products, "lapsed", whose one license is EXPIRED, and "big", with more
// ACTIVE licenses than a page holds.
func newListingStore() *listingStore {
	r := rand.New(rand.NewPCG(7, 7))
	s := &listingStore{userStore: &userStore{licenses: map[string][]licensor.License{}, products: randomCatalog(r, 5)}}
	id := int64(0)
	lic := func(user string) licensor.License {
		id++
		return activeLicense(id, user, 1+id%5)
	}
	for i := range 40 {
		u := "u" + strconv.Itoa(100+i)
		suspended := lic(u)
		suspended.Status = licensor.StatusSuspended
		s.set(u, lic(u), suspended, lic(u))
	}
	lapsed := lic("lapsed")
	lapsed.Status = licensor.StatusExpired
	s.set("lapsed", lapsed)
	var big []licensor.License
	for range 9 {
		big = append(big, lic("big"))
	}
	s.set("big", big...)
	return s
}

// TestEntitlementCacheWarm: a warm-up pages through every user's licenses
// (7 a page here, so that pages end inside a user's), stores each user
// whole (one with no ACTIVE license too, with no grant), and the products:
// the checks that follow read nothing and answer as a cold cache does. A
// user with more licenses than a page is left to their first check.
func TestEntitlementCacheWarm(t *testing.T) {
	s := newListingStore()
	ec := New(s, plain{}, Options{})
	ec.warmPage = 7
	st, err := ec.Warm(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Users != 41 || st.Products != 5 || st.Full {
		t.Errorf("Warm = %+v, want 41 users (not big), 5 products, not full", st)
	}
	if want := 40*3/6 + 2; st.Queries < want { // 3 licenses of 40 users, 6 a page at most, the big user's page, the products
		t.Errorf("Warm made %d queries, want at least %d", st.Queries, want)
	}
	cold := New(s, plain{}, Options{})
	for u := range s.licenses {
		if u == "big" {
			continue
		}
		got, err := ec.Answer(t.Context(), u, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := cold.Answer(t.Context(), u, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.ETag() != want.ETag() {
			t.Errorf("warmed answer of %s = %q, a cold cache's %q", u, got.etag, want.etag)
		}
	}
	if got := s.reads.Load(); got != 41 { // the cold cache's
		t.Errorf("%d reads of users' licenses, want the cold cache's 41 only", got)
	}
	if _, err := ec.Answer(t.Context(), "big", 0); err != nil || s.reads.Load() != 42 {
		t.Errorf("the big user: %v, reads %d, want one load", err, s.reads.Load())
	}
}

// TestEntitlementCacheWarmHotSet: a cache saves the users it answered for
// and still holds (not those only its warm-up stored); the next cache's
// warm-up loads those users, one query for all, and walks no page by id;
// they are answered as a cold cache does, others load on their first
// check; a hot set older than HotSetMaxAge, or none, means every user by
// id again; a cache that answered for no one leaves the saved set alone.
func TestEntitlementCacheWarmHotSet(t *testing.T) {
	s := newListingStore()
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	first := New(s, plain{}, Options{Now: clock})
	first.warmPage = 7
	if st, err := first.Warm(t.Context()); err != nil || st.HotSet || s.lists == 0 {
		t.Fatalf("Warm with no saved set = %+v, %v, %d pages; want every user by id", st, err, s.lists)
	}
	watched := []string{"u105", "lapsed", "u110", "u139"}
	for _, u := range watched {
		if _, err := first.Answer(t.Context(), u, 0); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := first.SaveHot(t.Context()); err != nil || n != len(watched) {
		t.Fatalf("SaveHot = %d, %v; want the %d users answered for", n, err, len(watched))
	}
	if got := slices.Sorted(slices.Values(s.hot)); !slices.Equal(got, slices.Sorted(slices.Values(watched))) || s.hotAt != now.Unix() {
		t.Fatalf("saved %v at %d, want %v at %d", s.hot, s.hotAt, watched, now.Unix())
	}

	lists, reads := s.lists, s.reads.Load()
	second := New(s, plain{}, Options{Now: clock})
	st, err := second.Warm(t.Context())
	if err != nil || !st.HotSet || st.Users != len(watched) || st.Products != 5 || st.Queries != 3 {
		t.Errorf("Warm with a hot set = %+v, %v; want its %d users, 5 products, 3 queries (products, hot set, one batch)", st, err, len(watched))
	}
	if s.lists != lists {
		t.Errorf("the warm-up walked %d pages by id, want none", s.lists-lists)
	}
	if got := s.reads.Load() - reads; got != int64(len(watched)) { // the batch, user by user in this fake
		t.Errorf("%d user reads by the warm-up, want %d", got, len(watched))
	}
	cold := New(s, plain{}, Options{Now: clock})
	reads = s.reads.Load()
	for _, u := range watched {
		got, err := second.Answer(t.Context(), u, 0)
		if err != nil {
			t.Fatal(err)
		}
		want, err := cold.Answer(t.Context(), u, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.ETag() != want.ETag() {
			t.Errorf("warmed answer of %s = %q, a cold cache's %q", u, got.etag, want.etag)
		}
	}
	if got := s.reads.Load() - reads; got != int64(len(watched)) {
		t.Errorf("%d reads, want the cold cache's %d only", got, len(watched))
	}
	if _, err := second.Answer(t.Context(), "u120", 0); err != nil || s.reads.Load()-reads != int64(len(watched))+1 {
		t.Errorf("a user not in the hot set: %v, want one load on the first check", err)
	}

	// A cache that answered for no one saves nothing.
	idle := New(s, plain{}, Options{Now: clock})
	if _, err := idle.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n, err := idle.SaveHot(t.Context()); err != nil || n != 0 || len(s.hot) != len(watched) {
		t.Errorf("SaveHot of a cache only warmed = %d, %v, saved set %v; want nothing saved, the set kept", n, err, s.hot)
	}

	// A day later the set is too old: every user by id again.
	later := func() time.Time { return now.Add(HotSetMaxAge + time.Second) }
	stale := New(s, plain{}, Options{Now: later})
	stale.warmPage = 7
	lists = s.lists
	if st, err := stale.Warm(t.Context()); err != nil || st.HotSet || s.lists == lists || st.Users != 41 {
		t.Errorf("Warm with a stale hot set = %+v, %v, %d pages; want every user by id (41)", st, err, s.lists-lists)
	}
}

// TestEntitlementCacheWarmHotSetWaits: while the hot set loads, a check
// for a user outside it waits for nothing, and a check for a user in it
// waits for that user's query.
func TestEntitlementCacheWarmHotSetWaits(t *testing.T) {
	s := newListingStore()
	s.hot, s.hotAt = []string{"u101", "u102"}, time.Now().Unix()
	s.batchGate, s.batching = make(chan struct{}), make(chan struct{})
	ec := New(s, plain{}, Options{})
	warmed := make(chan error, 1)
	go func() {
		_, err := ec.Warm(context.Background())
		warmed <- err
	}()
	<-s.batching // the hot set's query is held
	start := time.Now()
	if _, err := ec.Answer(t.Context(), "u120", 0); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d >= warmWait/2 { // it loads at once; waiting would take warmWait
		t.Errorf("a check for a user outside the hot set took %v, as if it waited for the warm-up", d)
	}
	answered := answerLater(ec, "u101")
	notYet(t, answered, "a hot user's check, before the hot set's query")
	s.mu.Lock()
	gate := s.batchGate
	s.batchGate = nil // later batches are not held
	s.mu.Unlock()
	reads := s.reads.Load()
	close(gate)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if err := <-warmed; err != nil {
		t.Fatal(err)
	}
	if got := s.reads.Load() - reads; got != 2 { // the hot set's two users, not u101 alone
		t.Errorf("%d reads after the hot set's query was let go, want its 2", got)
	}
}

// TestEntitlementCacheWarmInvalidated: a user invalidated while the page
// holding them is read is not stored from it (their next check reads the
// new state), and InvalidateAll during a read rules the page out.
func TestEntitlementCacheWarmInvalidated(t *testing.T) {
	for _, all := range []bool{false, true} {
		s := newListingStore()
		s.listGate, s.listing = make(chan struct{}), make(chan struct{})
		ec := New(s, plain{}, Options{})
		done := make(chan WarmStats)
		go func() {
			st, err := ec.Warm(context.Background())
			if err != nil {
				t.Error(err)
			}
			done <- st
		}()
		<-s.listing   // the first page is being read
		s.set("u100") // its licenses revoked, after the read's snapshot
		if all {
			ec.InvalidateAll()
		} else {
			ec.InvalidateUser("u100")
		}
		s.mu.Lock()
		gate := s.listGate
		s.listGate = nil // the next pages are not held
		s.mu.Unlock()
		close(gate)
		st := <-done
		a, err := ec.Answer(t.Context(), "u100", 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(slices.Collect(a.ProductIDs())); n != 0 {
			t.Errorf("all=%v: u100 entitled to %d products after the revocation", all, n)
		}
		// One page of 42 users (the big one fits in a page of 5000).
		if !all && st.Users != 41 {
			t.Errorf("InvalidateUser: Warm stored %d users, want 41 (not u100)", st.Users)
		}
		if all && st.Users != 0 {
			t.Errorf("InvalidateAll: Warm stored %d users, want none (its one page ruled out)", st.Users)
		}
	}
}

// TestEntitlementCacheWarmBounded: a warm-up stops once the cache is
// nine tenths full, without reading the rest.
func TestEntitlementCacheWarmBounded(t *testing.T) {
	s := newListingStore()
	ec := New(s, plain{}, Options{MaxUsers: 64 * 2}) // two users a shard: 128
	for i := range 400 {
		u := "v" + strconv.Itoa(1000+i)
		s.set(u, activeLicense(int64(10000+i), u, 1))
	}
	ec.warmPage = 10
	st, err := ec.Warm(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !st.Full || st.Users > 128 || st.Users < 100 {
		t.Errorf("Warm = %+v, want full at 100 to 128 users", st)
	}
	if s.lists >= 45 { // 440 users of one license or three: far more pages
		t.Errorf("Warm read %d pages, want it to stop when full", s.lists)
	}
}

// TestEntitlementCacheWarmWaits: a check that arrives while the warm-up
// reads the page of its user waits for that page instead of loading the
// user on its own, and is then answered from it.
func TestEntitlementCacheWarmWaits(t *testing.T) {
	s := newListingStore()
	s.listGate, s.listing = make(chan struct{}), make(chan struct{})
	ec := New(s, plain{}, Options{})
	warmed := make(chan error, 1)
	go func() {
		_, err := ec.Warm(context.Background())
		warmed <- err
	}()
	<-s.listing // the page is being read
	answered := answerLater(ec, "u120")
	notYet(t, answered, "the check, before the warm-up's page was read")
	s.mu.Lock()
	gate := s.listGate
	s.listGate = nil
	s.mu.Unlock()
	close(gate)
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if err := <-warmed; err != nil {
		t.Fatal(err)
	}
	if n := s.reads.Load(); n != 0 {
		t.Errorf("%d loads of a user during the warm-up, want none (answered from its page)", n)
	}
}

// answerLater answers for user in the background; the result arrives on
// the returned channel.
func answerLater(ec *Cache, user string) <-chan error {
	answered := make(chan error, 1)
	go func() {
		_, err := ec.Answer(context.Background(), user, 0)
		answered <- err
	}()
	return answered
}

// notYet fails the test if answered delivers within 50 ms.
func notYet(t *testing.T, answered <-chan error, what string) {
	t.Helper()
	select {
	case err := <-answered:
		t.Fatalf("%s returned (%v)", what, err)
	case <-time.After(50 * time.Millisecond):
	}
}

// hotFailStore is a listingStore whose hot-set reads and writes fail as
// set: reading the set, saving it, or the set's batch query.
type hotFailStore struct {
	*listingStore
	read, save, batch bool
}

func (s *hotFailStore) HotUsers(ctx context.Context, limit int) ([]string, int64, error) {
	if s.read {
		return nil, 0, errors.New("down")
	}
	return s.listingStore.HotUsers(ctx, limit)
}

func (s *hotFailStore) SaveHotUsers(ctx context.Context, users []string, now int64) error {
	if s.save {
		return errors.New("down")
	}
	return s.listingStore.SaveHotUsers(ctx, users, now)
}

func (s *hotFailStore) FindUsersGrants(ctx context.Context, users []string) ([]licensor.UserGrant, error) {
	if s.batch {
		return nil, errors.New("down")
	}
	return s.listingStore.FindUsersGrants(ctx, users)
}

// TestEntitlementCacheHotSetErrors: a hot set that cannot be read, or
// whose query fails, fails the warm-up (which then holds no one from it,
// and keeps no check waiting); one that cannot be saved is an error of
// SaveHot, and the set saved before stays.
func TestEntitlementCacheHotSetErrors(t *testing.T) {
	for _, c := range []struct {
		name        string
		read, batch bool
	}{{"read", true, false}, {"batch", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			s := &hotFailStore{listingStore: newListingStore(), read: c.read, batch: c.batch}
			s.hot, s.hotAt = []string{"u101"}, time.Now().Unix()
			ec := New(s, plain{}, Options{})
			if st, err := ec.Warm(t.Context()); err == nil || st.Users != 0 {
				t.Errorf("Warm = %+v, %v; want an error and no user", st, err)
			}
			s.read, s.batch = false, false
			start := time.Now()
			if _, err := ec.Answer(t.Context(), "u101", 0); err != nil || time.Since(start) >= warmWait/2 {
				t.Errorf("a check after the failed warm-up: %v after %v; want an answer without waiting", err, time.Since(start))
			}
		})
	}
	s := &hotFailStore{listingStore: newListingStore(), save: true}
	s.hot, s.hotAt = []string{"u101"}, 7
	ec := New(s, plain{}, Options{})
	if _, err := ec.Answer(t.Context(), "u120", 0); err != nil {
		t.Fatal(err)
	}
	if n, err := ec.SaveHot(t.Context()); err == nil || n != 0 || len(s.hot) != 1 || s.hot[0] != "u101" {
		t.Errorf("SaveHot with the store down = %d, %v, set %v; want an error and the earlier set kept", n, err, s.hot)
	}
}
