package api

import (
	"container/list"
	"context"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// ttlCache is a bounded, sharded, read-through cache: get returns a value
// loaded at most ttl ago (by the monotonic clock), loading it on a miss.
//
//   - Staleness is bounded by ttl counted from the moment the load
//     started, so a value never reflects the database as it was more than
//     ttl before it is served, however slow the load was.
//   - Concurrent misses of one key share one load (single flight).
//   - invalidate(k) drops k at once, and a load of k that was in flight
//     when it was called is neither stored nor handed to later callers:
//     after invalidate returns, every get loads afresh.
//   - dropInFlight does the same for every load in flight, without
//     dropping what is stored.
//   - Each shard holds at most perShard keys, evicting the least recently
//     used one.
type ttlCache[K comparable, V any] struct {
	shards   []cacheShard[K, V]
	seed     maphash.Seed
	hash     func(seed maphash.Seed, k K) uint64
	load     func(ctx context.Context, k K) (V, error)
	ttl      time.Duration
	perShard int
	clock    func() time.Time // monotonic: time.Now except in tests

	// admitMu serializes storing a loaded value (and onStore/onDrop) with
	// dropInFlight, so that a caller of dropInFlight can consult what is
	// stored (through onStore's bookkeeping) and rule out in-flight loads
	// in one atomic step.
	admitMu sync.Mutex
	epoch   atomic.Uint64  // bumped by dropInFlight
	onStore func(k K, v V) // under admitMu
	onDrop  func(k K, v V) // under admitMu

	hits, misses, loads atomic.Uint64
}

type cacheShard[K comparable, V any] struct {
	mu  sync.Mutex
	m   map[K]*cacheSlot[K, V]
	lru list.List // of *cacheSlot, most recently used first
}

type cacheSlot[K comparable, V any] struct {
	key     K
	val     V
	has     bool
	fetched time.Time // when the load that produced val started
	loading *loadCall[V]
	elem    *list.Element
}

type loadCall[V any] struct {
	done    chan struct{}
	val     V
	fetched time.Time // when the load started (set before it runs)
	err     error
	epoch   uint64
}

// loadTimeout bounds one load; it runs detached from the request that
// started it, since other requests may be waiting for it too.
const loadTimeout = 10 * time.Second

func newTTLCache[K comparable, V any](shards, capacity int, ttl time.Duration,
	hash func(maphash.Seed, K) uint64, load func(context.Context, K) (V, error)) *ttlCache[K, V] {
	c := &ttlCache[K, V]{
		shards:   make([]cacheShard[K, V], shards),
		seed:     maphash.MakeSeed(),
		hash:     hash,
		load:     load,
		ttl:      ttl,
		perShard: max(1, (capacity+shards-1)/shards),
		clock:    time.Now,
	}
	for i := range c.shards {
		c.shards[i].m = map[K]*cacheSlot[K, V]{}
	}
	return c
}

func (c *ttlCache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[c.hash(c.seed, k)%uint64(len(c.shards))]
}

// get returns k's value and when the load that produced it started.
//
// A value older than three quarters of the TTL is refreshed in the
// background while it is still served, so that a key in steady use is
// never waited for. A caller joins a load in flight only when that load
// started less than a TTL ago, so that a load stuck longer than that
// cannot hand out a state older than the bound.
func (c *ttlCache[K, V]) get(ctx context.Context, k K) (V, time.Time, error) {
	return c.getAt(ctx, k, c.clock())
}

// getAt is get for a caller that has just read the clock (now).
func (c *ttlCache[K, V]) getAt(ctx context.Context, k K, now time.Time) (V, time.Time, error) {
	sh := c.shard(k)
	sh.mu.Lock()
	s := sh.m[k]
	if s != nil && s.has {
		if age := now.Sub(s.fetched); age < c.ttl {
			sh.lru.MoveToFront(s.elem)
			if age >= c.ttl-c.ttl/4 && !c.joinable(s.loading, now) {
				c.start(ctx, sh, s, now)
			}
			v, f := s.val, s.fetched
			sh.mu.Unlock()
			c.hits.Add(1)
			return v, f, nil
		}
	}
	c.misses.Add(1)
	if s == nil {
		s = &cacheSlot[K, V]{key: k}
		s.elem = sh.lru.PushFront(s)
		sh.m[k] = s
		for sh.lru.Len() > c.perShard {
			c.evict(sh, sh.lru.Back().Value.(*cacheSlot[K, V]))
		}
	}
	call := s.loading
	if !c.joinable(call, now) {
		call = c.start(ctx, sh, s, now)
	}
	sh.mu.Unlock()
	select {
	case <-call.done:
		return call.val, call.fetched, call.err
	case <-ctx.Done():
		var zero V
		return zero, time.Time{}, ctx.Err()
	}
}

// joinable reports whether a caller arriving at now may wait for call.
func (c *ttlCache[K, V]) joinable(call *loadCall[V], now time.Time) bool {
	return call != nil && call.epoch == c.epoch.Load() && now.Sub(call.fetched) < c.ttl
}

// start begins a load of s.key; the caller holds sh.mu.
func (c *ttlCache[K, V]) start(ctx context.Context, sh *cacheShard[K, V], s *cacheSlot[K, V], now time.Time) *loadCall[V] {
	call := &loadCall[V]{done: make(chan struct{}), epoch: c.epoch.Load(), fetched: now}
	s.loading = call
	c.loads.Add(1)
	go c.run(context.WithoutCancel(ctx), sh, s, call)
	return call
}

// fresh reports whether get(k) would be served from memory now.
func (c *ttlCache[K, V]) fresh(k K) bool {
	sh := c.shard(k)
	now := c.clock()
	sh.mu.Lock()
	s := sh.m[k]
	ok := s != nil && s.has && now.Sub(s.fetched) < c.ttl
	sh.mu.Unlock()
	return ok
}

// run loads s.key for call and stores the result unless s was dropped or
// the in-flight loads were ruled out meanwhile.
func (c *ttlCache[K, V]) run(ctx context.Context, sh *cacheShard[K, V], s *cacheSlot[K, V], call *loadCall[V]) {
	ctx, cancel := context.WithTimeout(ctx, loadTimeout)
	defer cancel()
	start := call.fetched // no later than the database read begins
	v, err := c.load(ctx, s.key)
	sh.mu.Lock()
	call.val, call.err = v, err
	if s.loading == call {
		s.loading = nil
	}
	if err == nil && sh.m[s.key] == s && !(s.has && start.Before(s.fetched)) {
		c.admitMu.Lock()
		if c.epoch.Load() == call.epoch {
			if s.has && c.onDrop != nil {
				c.onDrop(s.key, s.val)
			}
			if c.onStore != nil {
				c.onStore(s.key, v)
			}
			s.val, s.has, s.fetched = v, true, start
		}
		c.admitMu.Unlock()
	}
	sh.mu.Unlock()
	close(call.done)
}

// evict removes s from its shard; the caller holds sh.mu.
func (c *ttlCache[K, V]) evict(sh *cacheShard[K, V], s *cacheSlot[K, V]) {
	if s.has && c.onDrop != nil {
		c.admitMu.Lock()
		c.onDrop(s.key, s.val)
		c.admitMu.Unlock()
	}
	sh.lru.Remove(s.elem)
	delete(sh.m, s.key)
}

// invalidate drops k: the next get loads it afresh, and a load in flight
// is neither stored nor shared with later callers.
func (c *ttlCache[K, V]) invalidate(k K) {
	sh := c.shard(k)
	sh.mu.Lock()
	if s := sh.m[k]; s != nil {
		c.evict(sh, s)
	}
	sh.mu.Unlock()
}

// clear drops every key.
func (c *ttlCache[K, V]) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			c.evict(sh, s)
		}
		sh.mu.Unlock()
	}
}

// dropInFlight runs decide under the admission lock; when it returns true,
// every load in flight is ruled out (neither stored nor shared), while
// stored values stay.
func (c *ttlCache[K, V]) dropInFlight(decide func() bool) {
	c.admitMu.Lock()
	if decide() {
		c.epoch.Add(1)
	}
	c.admitMu.Unlock()
}

// len returns the number of keys held (stored or loading).
func (c *ttlCache[K, V]) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func hashString(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) }

func hashInt64(seed maphash.Seed, n int64) uint64 { return maphash.Comparable(seed, n) }
