package entitlement

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// fakeClock is a settable monotonic clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// gatedLoader counts loads of a key and can hold them until released.
type gatedLoader struct {
	calls atomic.Int64
	gate  chan struct{} // nil: loads return at once
	value atomic.Int64  // the value the next load returns
}

func (g *gatedLoader) load(ctx context.Context, k string) (int64, error) {
	g.calls.Add(1)
	v := g.value.Load()
	if g.gate != nil {
		<-g.gate
	}
	return v, nil
}

func newTestCache(g *gatedLoader, capacity int, clk *fakeClock) *ttlCache[string, int64] {
	return newTTLCache(4, capacity, time.Second, newMonoClock(clk.Now), hashString, g.load)
}

// waitFor polls cond (for goroutines to reach a point), failing after a
// generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTTLCacheSingleFlightAndTTL(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	g := &gatedLoader{gate: make(chan struct{})}
	g.value.Store(7)
	c := newTestCache(g, 100, clk)
	ctx := context.Background()

	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			if v, _, err := c.get(ctx, "a"); err != nil || v != 7 {
				t.Errorf("get = %d, %v", v, err)
			}
		})
	}
	waitFor(t, "the first load", func() bool { return g.calls.Load() == 1 })
	close(g.gate)
	wg.Wait()
	if n := g.calls.Load(); n != 1 {
		t.Fatalf("%d loads for 10 concurrent misses, want 1", n)
	}

	// Up to three quarters of the TTL: from memory, no load.
	g.value.Store(8)
	clk.Add(time.Second/2 + time.Second/4 - time.Nanosecond)
	if v, _, _ := c.get(ctx, "a"); v != 7 || g.calls.Load() != 1 {
		t.Fatalf("at 3/4 of the TTL: %d after %d loads", v, g.calls.Load())
	}
	// From there, still from memory, with a refresh in the background.
	clk.Add(time.Nanosecond)
	if v, _, _ := c.get(ctx, "a"); v != 7 {
		t.Fatalf("refresh ahead: got %d, want the value in memory (7)", v)
	}
	waitFor(t, "the refresh", func() bool { v, _, _ := c.get(ctx, "a"); return v == 8 })
	if n := g.calls.Load(); n != 2 {
		t.Fatalf("%d loads, want 2", n)
	}
	// A value is never served a TTL or more after its load started.
	g.value.Store(9)
	clk.Add(time.Second)
	if v, _, _ := c.get(ctx, "a"); v != 9 {
		t.Fatalf("at the TTL: %d, want a reload (9)", v)
	}
}

// TestTTLCacheNoStaleJoin: a caller does not wait for a load that started
// a TTL or more ago: it could only hand out a state older than the bound.
func TestTTLCacheNoStaleJoin(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	g := &gatedLoader{gate: make(chan struct{})}
	g.value.Store(1)
	c := newTestCache(g, 100, clk)
	ctx := context.Background()
	first := make(chan int64)
	go func() { v, _, _ := c.get(ctx, "a"); first <- v }()
	waitFor(t, "the first load", func() bool { return g.calls.Load() == 1 })
	clk.Add(time.Second) // the load is stuck for a whole TTL
	g.value.Store(2)
	second := make(chan int64)
	go func() { v, _, _ := c.get(ctx, "a"); second <- v }()
	waitFor(t, "a second load", func() bool { return g.calls.Load() == 2 })
	close(g.gate)
	if v := <-second; v != 2 {
		t.Errorf("a caller joined a load older than the TTL: got %d", v)
	}
	<-first
	if v, _, _ := c.get(ctx, "a"); v != 2 {
		t.Errorf("the older load overwrote the newer value: %d", v)
	}
}

// TestTTLCacheInvalidateDuringLoad: a load in flight when its key is
// invalidated is neither stored nor shared with later callers.
func TestTTLCacheInvalidateDuringLoad(t *testing.T) {
	for _, how := range []string{"invalidate", "dropInFlight", "clear"} {
		t.Run(how, func(t *testing.T) {
			clk := &fakeClock{now: time.Unix(1000, 0)}
			g := &gatedLoader{gate: make(chan struct{})}
			g.value.Store(1) // the state before the write
			c := newTestCache(g, 100, clk)
			ctx := context.Background()

			early := make(chan int64)
			go func() { v, _, _ := c.get(ctx, "a"); early <- v }()
			waitFor(t, "the first load", func() bool { return g.calls.Load() == 1 })

			g.value.Store(2) // the write commits, then invalidates
			switch how {
			case "invalidate":
				c.invalidate("a")
			case "dropInFlight":
				c.dropInFlight(func() bool { return true })
			case "clear":
				c.clear()
			}
			late := make(chan int64)
			go func() { v, _, _ := c.get(ctx, "a"); late <- v }()
			waitFor(t, "a second load", func() bool { return g.calls.Load() == 2 })
			close(g.gate)
			if v := <-early; v != 1 {
				t.Errorf("the caller that started before the write got %d", v)
			}
			if v := <-late; v != 2 {
				t.Errorf("a caller that started after the invalidation got %d, want 2", v)
			}
			if v, _, _ := c.get(ctx, "a"); v != 2 {
				t.Errorf("stored %d, want 2", v)
			}
		})
	}
}

func TestTTLCacheBounded(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	g := &gatedLoader{}
	c := newTestCache(g, 8, clk) // 4 shards of 2
	ctx := context.Background()
	for i := range 100 {
		if _, _, err := c.get(ctx, string(rune('a'+i%26))+string(rune('a'+i/26))); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.len(); n > 8 {
		t.Errorf("%d keys held, capacity 8", n)
	}
	c.clear()
	if n := c.len(); n != 0 {
		t.Errorf("clear left %d keys", n)
	}
}

// TestEntitlementCacheDeleteByIDDuringLoad: a license deleted by id while
// its user's licenses are being loaded (so the cache cannot yet know whose
// it is) never comes back from that load.
func TestEntitlementCacheDeleteByIDDuringLoad(t *testing.T) {
	store := &userStore{
		licenses: map[string][]licensor.License{"41": {{ID: 5, UserID: "41", ProductID: 1, Status: licensor.StatusActive}}},
		products: map[int64]*licensor.Product{1: {ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"espn"}}}},
		gate:     make(chan struct{}),
	}
	ec := New(store, plain{}, Options{TTL: time.Hour})
	ctx := context.Background()
	early := make(chan bool)
	go func() {
		e, err := ec.Answer(ctx, "41", 100)
		early <- err == nil && e.Allows(licensor.ServiceLive, "espn")
	}()
	waitFor(t, "the load", func() bool { return store.reads.Load() == 1 })
	store.mu.Lock()
	store.licenses = nil // the delete commits...
	held := store.gate
	store.gate = nil
	store.mu.Unlock()
	ec.InvalidateLicenses(5) // ...and invalidates, by license id only
	close(held)
	<-early // concurrent with the delete: either answer is right
	e, err := ec.Answer(ctx, "41", 100)
	if err != nil {
		t.Fatal(err)
	}
	if e.Allows(licensor.ServiceLive, "espn") {
		t.Fatal("the deleted license came back from a load that was in flight")
	}
}

// TestEntitlementCacheIndex: deleting a cached user's license by id
// reloads that user only; a product change retires computed answers.
func TestEntitlementCacheIndex(t *testing.T) {
	store := &userStore{
		licenses: map[string][]licensor.License{
			"41": {{ID: 5, UserID: "41", ProductID: 1, Status: licensor.StatusActive}},
			"42": {{ID: 6, UserID: "42", ProductID: 1, Status: licensor.StatusActive}},
		},
		products: map[int64]*licensor.Product{1: {ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"espn"}}}},
	}
	ec := New(store, plain{}, Options{TTL: time.Hour})
	ctx := context.Background()
	for _, u := range []string{"41", "42"} {
		if e, _ := ec.Answer(ctx, u, 100); !e.Allows(licensor.ServiceLive, "espn") {
			t.Fatalf("user %s not entitled", u)
		}
	}
	reads := store.reads.Load()
	store.mu.Lock()
	delete(store.licenses, "41")
	store.mu.Unlock()
	ec.InvalidateLicenses(5)
	if e, _ := ec.Answer(ctx, "41", 100); e.Allows(licensor.ServiceLive, "espn") {
		t.Error("user 41 still entitled after its license was deleted")
	}
	if e, _ := ec.Answer(ctx, "42", 100); !e.Allows(licensor.ServiceLive, "espn") {
		t.Error("user 42 lost its entitlement")
	}
	if got := store.reads.Load() - reads; got != 1 {
		t.Errorf("%d reloads, want 1 (user 41 only)", got)
	}

	store.mu.Lock()
	store.products[1] = &licensor.Product{ID: 1, Channels: licensor.Channels{licensor.ServiceLive: {"cnn"}}}
	store.mu.Unlock()
	ec.InvalidateProduct(1)
	if e, _ := ec.Answer(ctx, "42", 100); e.Allows(licensor.ServiceLive, "espn") || !e.Allows(licensor.ServiceLive, "cnn") {
		t.Error("a product change is not reflected")
	}
	ec.InvalidateAll()
	if s := ec.Stats(); s.Users != 0 || s.Products != 0 {
		t.Errorf("after InvalidateAll: %+v", s)
	}
}

// feedStore serves a scripted change feed.
type feedStore struct {
	licensor.Store
	mu       sync.Mutex
	head     int64
	events   []licensor.Event
	prune    bool // the next read after the head fails as pruned
	failing  bool // every read fails
	failures int  // reads failed so far
}

func (s *feedStore) Events(ctx context.Context, q licensor.EventQuery) (*licensor.EventPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		s.failures++
		return nil, errors.New("the database is down")
	}
	if q.Filter.LicenseID != nil { // the head query
		return &licensor.EventPage{Events: []licensor.Event{}, Next: s.head}, nil
	}
	if s.prune {
		s.prune = false
		return nil, licensor.Errorf(licensor.CodeInvalidCursor, "pruned")
	}
	page := &licensor.EventPage{Events: []licensor.Event{}, Next: s.head}
	for _, e := range s.events {
		if e.Seq > q.After {
			page.Events = append(page.Events, e)
		}
	}
	return page, nil
}

func (s *feedStore) EventsCommitted() <-chan struct{} { return make(chan struct{}) }

func (s *feedStore) commit(e licensor.Event) {
	s.mu.Lock()
	s.head++
	e.Seq = s.head
	s.events = append(s.events, e)
	s.mu.Unlock()
}

// recorder is an Invalidator that records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) add(s string)                    { r.mu.Lock(); r.calls = append(r.calls, s); r.mu.Unlock() }
func (r *recorder) InvalidateUser(u string)         { r.add("user " + u) }
func (r *recorder) InvalidateLicenses(ids ...int64) { r.add("licenses") }
func (r *recorder) InvalidateProduct(id int64)      { r.add("product " + strconv.FormatInt(id, 10)) }
func (r *recorder) InvalidateAll()                  { r.add("all") }
func (r *recorder) FeedRead() func()                { return func() { r.add("caught up") } }
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.calls, s)
}
func (r *recorder) count(s string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c == s {
			n++
		}
	}
	return n
}

func TestFeedWatcher(t *testing.T) {
	store := &feedStore{}
	store.commit(licensor.Event{Type: licensor.EventLicenseCreated, UserID: "old", LicenseID: 1, ProductID: 1})
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- FeedWatcher{Store: store, Poll: time.Millisecond}.Watch(ctx, rec) }()
	waitFor(t, "the start", func() bool { return rec.has("all") })

	store.commit(licensor.Event{Type: licensor.EventLicenseDeleted, UserID: "41", LicenseID: 2, ProductID: 1})
	store.commit(licensor.Event{Type: licensor.EventProductUpdated, ProductID: 7})
	store.commit(licensor.Event{Type: licensor.EventLicenseExpired, UserID: "42", LicenseID: 3, ProductID: 7})
	waitFor(t, "the events", func() bool { return rec.has("user 41") && rec.has("product 7") && rec.has("user 42") })
	if rec.has("user old") {
		t.Error("an event from before the watcher started was replayed")
	}
	// A lost position: start again at the head, forgetting everything.
	store.mu.Lock()
	store.prune = true
	store.mu.Unlock()
	waitFor(t, "the restart", func() bool { return rec.count("all") == 2 })
	store.commit(licensor.Event{Type: licensor.EventLicenseCreated, UserID: "43", LicenseID: 4, ProductID: 7})
	waitFor(t, "events after the restart", func() bool { return rec.has("user 43") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
