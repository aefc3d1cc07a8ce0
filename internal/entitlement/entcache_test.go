package entitlement

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// userStore serves licenses and products from maps; a user's licenses
// can be generated (gen) instead of listed, and their reads held (gate).
type userStore struct {
	licensor.Store
	mu       sync.Mutex
	licenses map[string][]licensor.License
	products map[int64]*licensor.Product
	gen      func(user string) []licensor.License
	gate     chan struct{}
	reads    atomic.Int64
	hot      []string // the saved hot set (SaveHotUsers), and when
	hotAt    int64
	// batchGate, when set, holds each FindUsersGrants until a value is
	// received from it, after sending on batching.
	batchGate, batching chan struct{}
}

func (s *userStore) SaveHotUsers(ctx context.Context, users []string, now int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hot, s.hotAt = slices.Clone(users), now
	return nil
}

func (s *userStore) HotUsers(ctx context.Context, limit int) ([]string, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hot[:min(limit, len(s.hot))]), s.hotAt, nil
}

// FindGrants answers from FindLicenses, as the engines' do from their
// rows.
func (s *userStore) FindGrants(ctx context.Context, user string) ([]licensor.Grant, error) {
	page, err := s.FindLicenses(ctx, licensor.LicenseQuery{Filter: licensor.LicenseFilter{UserID: &user}})
	if err != nil {
		return nil, err
	}
	var out []licensor.Grant
	for i := range page.Licenses {
		if g, ok := licensor.GrantOf(&page.Licenses[i]); ok {
			out = append(out, g)
		}
	}
	return out, nil
}

// FindUsersGrants answers from FindGrants, user by user, as one read.
func (s *userStore) FindUsersGrants(ctx context.Context, users []string) ([]licensor.UserGrant, error) {
	s.mu.Lock()
	gate := s.batchGate
	s.mu.Unlock()
	if gate != nil {
		s.batching <- struct{}{}
		<-gate
	}
	var out []licensor.UserGrant
	for _, u := range slices.Sorted(slices.Values(users)) {
		gs, err := s.FindGrants(ctx, u)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			out = append(out, licensor.UserGrant{User: u, Active: true, Grant: g})
		}
	}
	return out, nil
}

func (s *userStore) FindLicenses(ctx context.Context, q licensor.LicenseQuery) (*licensor.LicensePage, error) {
	s.mu.Lock()
	var out []licensor.License
	if s.gen != nil {
		out = s.gen(*q.Filter.UserID)
	} else {
		out = append(out, s.licenses[*q.Filter.UserID]...)
	}
	gate := s.gate
	s.mu.Unlock()
	s.reads.Add(1)
	if gate != nil {
		<-gate
	}
	return &licensor.LicensePage{Licenses: out}, nil
}

func (s *userStore) FindProductByID(ctx context.Context, id int64) (*licensor.Product, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.products[id]; ok {
		cp := *p
		return &cp, nil
	}
	return nil, licensor.Errorf(licensor.CodeProductNotFound, "no product %d", id)
}

func (s *userStore) set(user string, ls ...licensor.License) {
	s.mu.Lock()
	s.licenses[user] = ls
	s.mu.Unlock()
}

func activeLicense(id int64, user string, product int64) licensor.License {
	return licensor.License{ID: id, UserID: user, ProductID: product, Status: licensor.StatusActive}
}

// randomCatalog is n products with random channels (unsorted, with
// duplicates), some without any.
func randomCatalog(r *rand.Rand, n int) map[int64]*licensor.Product {
	out := map[int64]*licensor.Product{}
	for id := int64(1); id <= int64(n); id++ {
		p := &licensor.Product{ID: id, Channels: licensor.Channels{}}
		for _, s := range licensor.Services() {
			if r.IntN(3) == 0 {
				continue
			}
			for range r.IntN(6) {
				p.Channels[s] = append(p.Channels[s], "ch"+strconv.Itoa(r.IntN(12)))
			}
		}
		out[id] = p
	}
	return out
}

// randomLicenses is a user's licenses: random products (some missing),
// statuses, and dates around 1000.
func randomLicenses(r *rand.Rand, user string, nextID *int64, products int) []licensor.License {
	var out []licensor.License
	for range r.IntN(6) {
		*nextID++
		l := licensor.License{ID: *nextID, UserID: user, ProductID: 1 + r.Int64N(int64(products)+2), Status: licensor.StatusActive,
			StartDate: r.Int64N(2000)}
		if r.IntN(5) == 0 {
			l.Status = licensor.Statuses()[r.IntN(len(licensor.Statuses()))]
		}
		if r.IntN(3) > 0 {
			stop := l.StartDate + r.Int64N(1500)
			l.StopDate = &stop
		}
		out = append(out, l)
	}
	return out
}

// plain is the tests' Encoder: a channel as its id, an answer as its user,
// products and channels.
type plain struct{}

func (plain) AppendChannel(b []byte, id string) []byte { return append(b, id...) }

func (plain) AppendAnswer(b []byte, user string, a *Answer) []byte {
	b = append(b, user...)
	for id := range a.ProductIDs() {
		b = strconv.AppendInt(append(b, ' '), id, 10)
	}
	for _, s := range licensor.Services() {
		b = append(append(append(b, ' '), s...), ':')
		b = a.AppendChannels(b, s, ',')
	}
	return b
}

// channelsOf lists the channels of an answer for s, as plain encodes them.
func channelsOf(a *Answer, s licensor.Service) []string {
	ids := []string{}
	if b := a.AppendChannels(nil, s, ','); len(b) > 0 {
		ids = strings.Split(string(b), ",")
	}
	return ids
}

// ruleAt is the rule applied straight to a user's licenses and a catalog,
// with the products' ids and the channels they grant (ascending, distinct,
// never nil): what the cache must answer.
func ruleAt(licenses []licensor.License, products map[int64]*licensor.Product, t int64) (licensor.Entitlements[*licensor.Product], []int64, licensor.Channels) {
	var grants []licensor.Grant
	for i := range licenses {
		if g, ok := licensor.GrantOf(&licenses[i]); ok {
			grants = append(grants, g)
		}
	}
	e, _ := licensor.EntitlementsAt(grants, t, func(id int64) (*licensor.Product, bool, error) {
		p, ok := products[id]
		return p, ok, nil
	})
	ids, channels := []int64{}, licensor.Channels{}
	for _, p := range e.Products {
		ids = append(ids, p.ID)
	}
	for _, s := range licensor.Services() {
		list := []string{}
		for _, p := range e.Products {
			list = append(list, p.Channels[s]...)
		}
		slices.Sort(list)
		channels[s] = slices.Compact(list)
	}
	return e, ids, channels
}

// TestEntitlementAnswerMatchesRule: the cache, over its compact form
// (products' channels sorted once, merged per answer, memoized answers),
// gives the answer of licensor.EntitlementsAt over the licenses and
// products as stored, with the ETag of its encoding.
func TestEntitlementAnswerMatchesRule(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const products = 8
	store := &userStore{licenses: map[string][]licensor.License{}, products: randomCatalog(r, products)}
	var nextID int64
	users := []string{"41", "a.b_c:d-e"}
	for i := range 200 {
		users = append(users, "user"+strconv.Itoa(i))
	}
	for _, u := range users {
		store.licenses[u] = randomLicenses(r, u, &nextID, products)
	}
	ec := New(store, plain{}, Options{TTL: time.Hour})
	ctx := context.Background()
	for _, u := range users {
		for _, at := range []int64{-1, 0, 500, 999, 1000, 1500, 3000, math.MaxInt64} {
			want, wantIDs, wantChannels := ruleAt(store.licenses[u], store.products, at)
			for range 2 { // computed, then memoized
				ans, err := ec.Answer(ctx, u, at)
				if err != nil {
					t.Fatal(err)
				}
				body := plain{}.AppendAnswer(nil, u, ans)
				sum := sha256.Sum256(body)
				if etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:15]) + `"`; ans.ETag() != etag || ans.Size() != len(body) {
					t.Fatalf("user %s at %d: etag %s size %d, want %s %d", u, at, ans.ETag(), ans.Size(), etag, len(body))
				}
				if !ans.e.ValidAt(at) || ans.e.ValidFrom != want.ValidFrom || !reflect.DeepEqual(ans.ValidUntil(), want.ValidUntil) {
					t.Fatalf("user %s at %d: window [%d, %v), want [%d, %v)", u, at, ans.e.ValidFrom, ans.ValidUntil(), want.ValidFrom, want.ValidUntil)
				}
				if got := slices.Collect(ans.ProductIDs()); !slices.Equal(got, wantIDs) {
					t.Fatalf("user %s at %d: products %v, want %v", u, at, got, wantIDs)
				}
				for _, svc := range licensor.Services() {
					if got := channelsOf(ans, svc); !slices.Equal(got, wantChannels[svc]) {
						t.Fatalf("user %s at %d: %s channels %v, want %v", u, at, svc, got, wantChannels[svc])
					}
					for c := range 13 {
						ch := "ch" + strconv.Itoa(c)
						if got, want := ans.Allows(svc, ch), slices.Contains(wantChannels[svc], ch); got != want {
							t.Fatalf("user %s at %d: Allows(%s, %s) = %v, want %v", u, at, svc, ch, got, want)
						}
					}
				}
			}
		}
	}
}

// TestAnswerAllows: an answer allows exactly the channels its products
// list for the service asked.
func TestAnswerAllows(t *testing.T) {
	store := &userStore{licenses: map[string][]licensor.License{}, products: map[int64]*licensor.Product{
		1: {ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"espn", "eurosport"}, licensor.ServiceCatchup: {"espn"}}},
		2: {ID: 2, Channels: licensor.Channels{licensor.ServiceLive: {"cnn", "espn"}, licensor.ServiceNPVR: {"cnn"}}},
		3: {ID: 3, Channels: licensor.Channels{}},
	}}
	store.set("41", activeLicense(1, "41", 1), activeLicense(2, "41", 2), activeLicense(3, "41", 3))
	ans, err := New(store, plain{}, Options{}).Answer(context.Background(), "41", 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		s       licensor.Service
		channel string
		want    bool
	}{
		{licensor.ServiceLive, "espn", true},
		{licensor.ServiceLive, "cnn", true},
		{licensor.ServiceLive, "eurosport", true},
		{licensor.ServiceLive, "bbc", false},
		{licensor.ServiceCatchup, "espn", true},
		{licensor.ServiceCatchup, "cnn", false},
		{licensor.ServiceNPVR, "cnn", true},
		{licensor.ServiceNPVR, "espn", false},
		{licensor.ServiceStartover, "espn", false},
		{licensor.ServiceLive, "", false},
	} {
		if got := ans.Allows(c.s, c.channel); got != c.want {
			t.Errorf("Allows(%s, %q) = %v, want %v", c.s, c.channel, got, c.want)
		}
	}
	if got := slices.Collect(ans.ProductIDs()); !slices.Equal(got, []int64{1, 2, 3}) {
		t.Errorf("products %v, want [1 2 3]", got)
	}
}

// watchedCache is an entitlement cache on a fake clock, with a fake
// watcher: read(true) is a read of the feed that reached the head.
type watchedCache struct {
	ec    *Cache
	clk   *fakeClock
	store *userStore
}

func newWatchedCache(t *testing.T, ttl time.Duration) *watchedCache {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	store := &userStore{licenses: map[string][]licensor.License{},
		products: map[int64]*licensor.Product{1: {ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"espn"}}}}}
	store.set("41", activeLicense(5, "41", 1))
	return &watchedCache{ec: New(store, plain{}, Options{TTL: ttl, Now: clk.Now}), clk: clk, store: store}
}

func (w *watchedCache) entitled(t *testing.T) bool {
	t.Helper()
	ans, err := w.ec.Answer(context.Background(), "41", 100)
	if err != nil {
		t.Fatal(err)
	}
	return ans.Allows(licensor.ServiceLive, "espn")
}

// TestEntitlementCacheFollowsFeed: while the watcher keeps reaching the
// head of the feed, entries outlive the TTL (no reload); once it stalls,
// they age out by the TTL counted from its last read.
func TestEntitlementCacheFollowsFeed(t *testing.T) {
	w := newWatchedCache(t, time.Second)
	if !w.entitled(t) || w.store.reads.Load() != 1 {
		t.Fatalf("first check: %d reads", w.store.reads.Load())
	}
	// Without a watcher: reloaded in the background from 3/4 of the TTL,
	// served from memory until then.
	w.clk.Add(700 * time.Millisecond)
	w.entitled(t)
	if n := w.store.reads.Load(); n != 1 {
		t.Fatalf("%d reads within 3/4 of the TTL", n)
	}
	// A watcher that reads the feed every 100 ms (each read started 100
	// ms after the previous and reaching the head) keeps the entry for a
	// minute without a single load.
	for range 600 {
		w.ec.FeedRead()()
		w.clk.Add(100 * time.Millisecond)
		if !w.entitled(t) {
			t.Fatal("not entitled")
		}
	}
	if n := w.store.reads.Load(); n != 1 {
		t.Fatalf("%d reads while the watcher followed the feed, want 1", n)
	}
	// A write elsewhere; the watcher's next read sees its event.
	w.store.set("41")
	caughtUp := w.ec.FeedRead()
	w.ec.InvalidateUser("41")
	caughtUp()
	if w.entitled(t) {
		t.Fatal("entitled after the feed's invalidation")
	}
	// The watcher stalls: the last read reaching the head started now.
	w.store.set("41", activeLicense(6, "41", 1))
	w.ec.FeedRead()()
	reads := w.store.reads.Load()
	w.clk.Add(700 * time.Millisecond)
	if w.entitled(t) {
		t.Fatal("the new license was seen without a load")
	}
	// A read that started but did not reach the head (a full page, or an
	// error) does not count.
	_ = w.ec.FeedRead()
	w.clk.Add(300 * time.Millisecond) // the TTL since the last read at the head
	if !w.entitled(t) {
		t.Fatal("an entry was served a TTL after the watcher's last read at the head")
	}
	if n := w.store.reads.Load(); n <= reads {
		t.Fatal("no reload after the watcher stalled")
	}
}

// TestEntitlementCacheFeedDuringLoad: a load in flight when the feed
// invalidates its user is not stored, even though the watcher then
// reports a read at the head after the load started (the load's state
// predates the write).
func TestEntitlementCacheFeedDuringLoad(t *testing.T) {
	w := newWatchedCache(t, time.Second)
	w.store.gate = make(chan struct{})
	early := make(chan bool)
	go func() {
		ans, err := w.ec.Answer(context.Background(), "41", 100)
		early <- err == nil && ans.Allows(licensor.ServiceLive, "espn")
	}()
	waitFor(t, "the load", func() bool { return w.store.reads.Load() == 1 })
	w.clk.Add(10 * time.Millisecond)
	w.store.mu.Lock()
	w.store.licenses["41"] = nil // the write commits elsewhere...
	held := w.store.gate
	w.store.gate = nil
	w.store.mu.Unlock()
	caughtUp := w.ec.FeedRead() // ...and the watcher reads its event
	w.ec.InvalidateUser("41")
	caughtUp()
	close(held)
	if !<-early {
		t.Error("the check that started before the write did not see the license")
	}
	if w.entitled(t) {
		t.Fatal("a load that started before the write was stored")
	}
	if n := w.store.reads.Load(); n != 2 {
		t.Errorf("%d reads, want 2", n)
	}
}

// TestEntitlementCacheMemoFollowsFeed: a memoized answer lives as long as
// its entries, and a product change through the feed retires it.
func TestEntitlementCacheMemoFollowsFeed(t *testing.T) {
	w := newWatchedCache(t, time.Second)
	first, _ := w.ec.Answer(context.Background(), "41", 100)
	for range 30 {
		w.ec.FeedRead()()
		w.clk.Add(100 * time.Millisecond)
		if ans, _ := w.ec.Answer(context.Background(), "41", 100); ans != first {
			t.Fatal("the memoized answer was recomputed while nothing changed")
		}
	}
	w.store.mu.Lock()
	w.store.products[1] = &licensor.Product{ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"cnn"}}}
	w.store.mu.Unlock()
	caughtUp := w.ec.FeedRead()
	w.ec.InvalidateProduct(1)
	caughtUp()
	if w.entitled(t) {
		t.Fatal("a product change through the feed is not reflected")
	}
	if w.store.reads.Load() != 1 {
		t.Error("a product change reloaded the user's licenses")
	}
}

// TestFeedWatcherCaughtUp: the watcher reports a read at the head only
// when it reached the head and applied its events, never while failing.
func TestFeedWatcherCaughtUp(t *testing.T) {
	store := &feedStore{}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- FeedWatcher{Store: store, Poll: time.Millisecond}.Watch(ctx, rec) }()
	waitFor(t, "a read at the head", func() bool { return rec.has("caught up") })
	store.commit(licensor.Event{Type: licensor.EventLicenseDeleted, UserID: "41", LicenseID: 2, ProductID: 1})
	waitFor(t, "the event", func() bool { return rec.has("user 41") })
	// The read that found the event reports after passing it on.
	waitFor(t, "a read at the head after the event", func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		i := slices.Index(rec.calls, "user 41")
		return slices.Contains(rec.calls[i:], "caught up")
	})
	failures := func() int {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.failures
	}
	store.mu.Lock()
	store.failing = true
	store.mu.Unlock()
	// The watcher reads one page at a time: once a read has failed, the
	// reads before it have reported.
	waitFor(t, "a failed read", func() bool { return failures() >= 1 })
	n := rec.count("caught up")
	waitFor(t, "more failed reads", func() bool { return failures() >= 10 })
	if m := rec.count("caught up"); m != n {
		t.Errorf("%d reads reported at the head while the feed failed", m-n)
	}
	store.mu.Lock()
	store.failing = false
	store.mu.Unlock()
	waitFor(t, "reads at the head again", func() bool { return rec.count("caught up") > n })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestEntitlementCacheBytesBound: the cache holds at most its byte budget
// (by its estimate), evicting the least recently used users, and stays
// consistent while doing so.
func TestEntitlementCacheBytesBound(t *testing.T) {
	store := &userStore{products: map[int64]*licensor.Product{1: {ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"espn"}}}}}
	store.gen = func(user string) []licensor.License {
		n, _ := strconv.Atoi(user)
		return []licensor.License{activeLicense(int64(2*n+1), user, 1), activeLicense(int64(2*n+2), user, 1)}
	}
	const budget = 256 << 10
	ec := New(store, plain{}, Options{TTL: time.Hour, MaxBytes: budget})
	ctx := context.Background()
	for u := range 10_000 {
		if _, err := ec.Answer(ctx, strconv.Itoa(u), 100); err != nil {
			t.Fatal(err)
		}
	}
	s := ec.Stats()
	perUser := userEntrySize("5000", &userEntry{licenses: make([]licensor.Grant, 2)})
	if s.Bytes > budget+budget/8 || s.Users*perUser > budget+cacheShards*perUser {
		t.Errorf("holds %d users, %d bytes; budget %d", s.Users, s.Bytes, budget)
	}
	if s.Users < budget/perUser/2 {
		t.Errorf("holds %d users, %d bytes: the budget is not used", s.Users, s.Bytes)
	}
	if s.Evictions == 0 {
		t.Error("no evictions")
	}
	// The most recent users are held.
	reads := store.reads.Load()
	if _, err := ec.Answer(ctx, "9999", 100); err != nil || store.reads.Load() != reads {
		t.Error("the last user checked was evicted")
	}
	// A user evicted and checked again is loaded again.
	if _, err := ec.Answer(ctx, "0", 100); err != nil || store.reads.Load() != reads+1 {
		t.Error("an evicted user was not reloaded")
	}
}

// TestEntitlementCacheMemory: the byte estimate the budget is counted in
// is close to what the heap holds.
func TestEntitlementCacheMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cache")
	}
	store := &userStore{products: map[int64]*licensor.Product{}}
	for p := int64(1); p <= 300; p++ {
		store.products[p] = &licensor.Product{ID: p, Channels: licensor.Channels{licensor.ServiceLive: {"a", "b", "c", "d"}}}
	}
	// About four licenses per user, as the benchmark data, ids of six
	// digits.
	store.gen = func(user string) []licensor.License {
		n, _ := strconv.Atoi(user)
		var out []licensor.License
		for k := range 3 + n%3 {
			stop := int64(2000 + k)
			out = append(out, licensor.License{ID: int64(10*n + k), UserID: user, ProductID: int64(1 + (n*7+k*13)%300),
				Status: licensor.StatusActive, StartDate: 50, StopDate: &stop})
		}
		return out
	}
	const users = 20_000
	ec := New(store, plain{}, Options{TTL: time.Hour, MaxBytes: 1 << 30})
	ctx := context.Background()
	for p := int64(1); p <= 300; p++ { // products first: they are not the users' cost
		if _, _, err := ec.products.get(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	userBytes := ec.users.bytes.Load()
	for u := range users {
		if _, err := ec.Answer(ctx, strconv.Itoa(100_000+u), 100); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	estimate := float64(ec.users.bytes.Load() - userBytes)
	t.Logf("%d users: heap %.0f bytes/user, estimate %.0f bytes/user", users, heap/users, estimate/users)
	if heap > 1.25*estimate || heap < 0.6*estimate {
		t.Errorf("heap %.0f bytes/user, estimate %.0f: the budget does not bound memory", heap/users, estimate/users)
	}
	runtime.KeepAlive(ec)
}

// errStore fails every read.
type errStore struct{ licensor.Store }

func (errStore) FindGrants(context.Context, string) ([]licensor.Grant, error) {
	return nil, errors.New("down")
}

func (errStore) FindUsersGrants(context.Context, []string) ([]licensor.UserGrant, error) {
	return nil, errors.New("down")
}

func TestEntitlementCacheLoadError(t *testing.T) {
	ec := New(errStore{}, plain{}, Options{})
	if _, err := ec.Answer(context.Background(), "41", 0); err == nil {
		t.Fatal("no error")
	}
	if s := ec.Stats(); s.Bytes != 0 {
		t.Errorf("a failed load holds %d bytes", s.Bytes)
	}
}

// TestEntitlementCacheDeletedIDs: a delete by id reloads a cached holder
// of the license once (not again while the delete is remembered, even
// when the license turns out not to be deleted: a failed delete), and the
// deletes are forgotten after the TTL, or as soon as the watcher has read
// past them.
func TestEntitlementCacheDeletedIDs(t *testing.T) {
	w := newWatchedCache(t, time.Second)
	w.entitled(t)
	w.clk.Add(time.Millisecond)
	w.ec.InvalidateLicenses(5) // a delete that failed: the license stays
	w.clk.Add(time.Millisecond)
	for range 3 {
		if !w.entitled(t) {
			t.Fatal("not entitled")
		}
	}
	if n := w.store.reads.Load(); n != 2 {
		t.Fatalf("%d reads, want 2 (one reload)", n)
	}
	if w.ec.ndeleted.Load() != 1 {
		t.Fatal("the delete is not remembered")
	}
	w.clk.Add(time.Second)
	w.entitled(t)
	if n := w.ec.ndeleted.Load(); n != 0 {
		t.Errorf("%d deletes remembered a TTL later", n)
	}
	w.ec.InvalidateLicenses(7)
	w.clk.Add(200 * time.Millisecond)
	w.ec.FeedRead()() // the watcher has read past the delete
	w.entitled(t)
	if n := w.ec.ndeleted.Load(); n != 0 {
		t.Errorf("%d deletes remembered after the watcher read past them", n)
	}
}
