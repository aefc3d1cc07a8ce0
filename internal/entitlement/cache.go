package entitlement

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// monoClock reads a monotonic clock as nanoseconds since an origin, so
// that instants fit in an int64 (kept per cache entry, and atomically for
// the change feed's progress).
type monoClock struct {
	now  func() time.Time // time.Now except in tests
	base time.Time
}

func newMonoClock(now func() time.Time) *monoClock {
	if now == nil {
		now = time.Now
	}
	return &monoClock{now: now, base: now()}
}

// nanos is the current instant.
func (c *monoClock) nanos() int64 { return int64(c.now().Sub(c.base)) }

// ttlCache is a bounded, sharded, read-through cache: get returns a value
// that reflects the database as it was at most ttl ago, loading it on a
// miss.
//
//   - A value's instant is when the load that produced it started: the
//     value reflects every write committed before then. When a change
//     feed is followed (see floor), a value also reflects every write
//     committed before the instant floor returns, since each of those
//     writes has invalidated it if it concerned it; a value is served while
//     the later of the two instants is less than ttl ago. With the feed
//     followed and healthy, values therefore live until invalidated or
//     evicted; when the feed stalls, they age out by ttl as without it.
//   - Concurrent misses of one key share one load (single flight).
//   - invalidate(k) drops k at once, and a load of k that was in flight
//     when it was called is neither stored nor handed to later callers:
//     after invalidate returns, every get loads afresh.
//   - dropInFlight does the same for every load in flight, without
//     dropping what is stored.
//   - A bulk read (beginBulk, put, endBulk) stores many values read at
//     once, each with the bulk's instant, except those invalidated since
//     it began (and all of them after a dropInFlight): the same guarantee
//     as a load's, for values no get asked for.
//   - Each shard holds at most perShard keys and, when size is set, values
//     whose estimated sizes add up to at most shardBytes, evicting the
//     least recently used first.
type ttlCache[K comparable, V any] struct {
	shards     []cacheShard[K, V]
	seed       maphash.Seed
	hash       func(seed maphash.Seed, k K) uint64
	load       func(ctx context.Context, k K) (V, error)
	ttl        int64 // nanoseconds
	perShard   int
	shardBytes int                // 0: no byte bound
	size       func(k K, v V) int // estimated bytes held for k (nil: none)
	clock      *monoClock
	// floor, when set, returns the instant (clock nanos) up to which every
	// committed write has been applied by invalidation; math.MinInt64
	// when nothing is known.
	floor func() int64

	// admitMu serializes storing a loaded value with dropInFlight, so
	// that a caller of dropInFlight can rule out in-flight loads in one
	// atomic step with what decide consults.
	admitMu sync.Mutex
	epoch   atomic.Uint64 // bumped by dropInFlight

	loads, evictions atomic.Uint64
	bytes            atomic.Int64 // estimated bytes held

	bulk atomic.Pointer[bulkRead[K]] // the bulk read in progress, if any
}

// bulkRead is a bulk read in progress: the instant it began (before the
// database read), the epoch then, and the keys invalidated since, whose
// values it read may be stale.
type bulkRead[K comparable] struct {
	fetched int64
	epoch   uint64
	mu      sync.Mutex
	stale   map[K]struct{}
}

func (b *bulkRead[K]) mark(k K) {
	b.mu.Lock()
	b.stale[k] = struct{}{}
	b.mu.Unlock()
}

func (b *bulkRead[K]) isStale(k K) bool {
	b.mu.Lock()
	_, ok := b.stale[k]
	b.mu.Unlock()
	return ok
}

type cacheShard[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]*cacheSlot[K, V]
	head  *cacheSlot[K, V] // most recently used
	tail  *cacheSlot[K, V] // least recently used
	bytes int
	// hits and misses of get, counted under mu: a counter shared by the
	// shards would be written by every lookup on every core.
	hits, misses uint64
	_            [16]byte // keep shards' locks on separate cache lines
}

type cacheSlot[K comparable, V any] struct {
	key        K
	val        V
	has        bool
	used       bool // asked for by a get (not only stored by a bulk read)
	size       int32
	fetched    int64 // when the load that produced val started
	loading    *loadCall[V]
	prev, next *cacheSlot[K, V]
}

type loadCall[V any] struct {
	done    chan struct{}
	val     V
	fetched int64 // when the load started (set before it runs)
	err     error
	epoch   uint64
}

// loadTimeout bounds one load; it runs detached from the request that
// started it, since other requests may be waiting for it too.
const loadTimeout = 10 * time.Second

func newTTLCache[K comparable, V any](shards, capacity int, ttl time.Duration, clock *monoClock,
	hash func(maphash.Seed, K) uint64, load func(context.Context, K) (V, error)) *ttlCache[K, V] {
	if clock == nil {
		clock = newMonoClock(nil)
	}
	c := &ttlCache[K, V]{
		shards:   make([]cacheShard[K, V], shards),
		seed:     maphash.MakeSeed(),
		hash:     hash,
		load:     load,
		ttl:      int64(ttl),
		perShard: max(1, (capacity+shards-1)/shards),
		clock:    clock,
	}
	for i := range c.shards {
		c.shards[i].m = map[K]*cacheSlot[K, V]{}
	}
	return c
}

// boundBytes limits the estimated bytes of the values held to about
// budget (each shard to its share).
func (c *ttlCache[K, V]) boundBytes(budget int, size func(K, V) int) {
	c.shardBytes = max(1, budget/len(c.shards))
	c.size = size
}

func (c *ttlCache[K, V]) shard(k K) *cacheShard[K, V] {
	return &c.shards[c.hash(c.seed, k)%uint64(len(c.shards))]
}

// since returns the instant a value loaded at fetched reflects the
// database as of: fetched, or later when the feed has been applied since.
func (c *ttlCache[K, V]) since(fetched int64) int64 {
	if c.floor != nil {
		return max(fetched, c.floor())
	}
	return fetched
}

// age is how old, at now, is the state of a value loaded at fetched.
func (c *ttlCache[K, V]) age(fetched, now int64) int64 { return now - c.since(fetched) }

// get returns k's value and when the load that produced it started.
//
// A value older than three quarters of the TTL is refreshed in the
// background while it is still served, so that a key in steady use is
// never waited for. A caller joins a load in flight only when that load
// started less than a TTL ago, so that a load stuck longer than that
// cannot hand out a state older than the bound.
func (c *ttlCache[K, V]) get(ctx context.Context, k K) (V, int64, error) {
	return c.getAt(ctx, k, c.clock.nanos())
}

// getAt is get for a caller that has just read the clock (now).
func (c *ttlCache[K, V]) getAt(ctx context.Context, k K, now int64) (V, int64, error) {
	sh := c.shard(k)
	sh.mu.Lock()
	s := sh.m[k]
	if s != nil && s.has {
		if age := c.age(s.fetched, now); age < c.ttl {
			sh.touch(s)
			s.used = true
			if age >= c.ttl-c.ttl/4 && !c.joinable(s.loading, now) {
				c.start(ctx, sh, s, now)
			}
			v, f := s.val, s.fetched
			sh.hits++
			sh.mu.Unlock()
			return v, f, nil
		}
	}
	sh.misses++
	if s == nil {
		s = &cacheSlot[K, V]{key: k, used: true}
		sh.pushFront(s)
		sh.m[k] = s
		for len(sh.m) > c.perShard && sh.tail != s {
			c.evict(sh, sh.tail)
		}
	} else {
		sh.touch(s)
		s.used = true
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
		return zero, 0, ctx.Err()
	}
}

// joinable reports whether a caller arriving at now may wait for call.
func (c *ttlCache[K, V]) joinable(call *loadCall[V], now int64) bool {
	return call != nil && call.epoch == c.epoch.Load() && c.age(call.fetched, now) < c.ttl
}

// start begins a load of s.key; the caller holds sh.mu.
func (c *ttlCache[K, V]) start(ctx context.Context, sh *cacheShard[K, V], s *cacheSlot[K, V], now int64) *loadCall[V] {
	call := &loadCall[V]{done: make(chan struct{}), epoch: c.epoch.Load(), fetched: now}
	s.loading = call
	c.loads.Add(1)
	go c.run(context.WithoutCancel(ctx), sh, s, call)
	return call
}

// fresh reports whether get(k) would be served from memory now.
func (c *ttlCache[K, V]) fresh(k K) bool {
	sh := c.shard(k)
	now := c.clock.nanos()
	sh.mu.Lock()
	s := sh.m[k]
	ok := s != nil && s.has && c.age(s.fetched, now) < c.ttl
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
	if err == nil && sh.m[s.key] == s && !(s.has && start < s.fetched) {
		c.admitMu.Lock()
		if c.epoch.Load() == call.epoch {
			s.val, s.has, s.fetched = v, true, start
			c.resize(sh, s)
		}
		c.admitMu.Unlock()
		for c.shardBytes > 0 && sh.bytes > c.shardBytes && sh.tail != s {
			c.evict(sh, sh.tail)
		}
	}
	sh.mu.Unlock()
	close(call.done)
}

// resize sets s's estimated size after its value changed; the caller
// holds sh.mu.
func (c *ttlCache[K, V]) resize(sh *cacheShard[K, V], s *cacheSlot[K, V]) {
	if c.size == nil {
		return
	}
	n := int32(min(c.size(s.key, s.val), math.MaxInt32))
	sh.bytes += int(n - s.size)
	c.bytes.Add(int64(n - s.size))
	s.size = n
}

// evict removes s from its shard; the caller holds sh.mu.
func (c *ttlCache[K, V]) evict(sh *cacheShard[K, V], s *cacheSlot[K, V]) {
	sh.unlink(s)
	delete(sh.m, s.key)
	sh.bytes -= int(s.size)
	c.bytes.Add(-int64(s.size))
	c.evictions.Add(1)
}

// invalidate drops k: the next get loads it afresh, and a load in flight
// is neither stored nor shared with later callers, nor is k stored from a
// bulk read in progress.
func (c *ttlCache[K, V]) invalidate(k K) {
	if b := c.bulk.Load(); b != nil {
		b.mark(k) // before the eviction: a put after it must not store k
	}
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

// beginBulk starts a bulk read, before the database is read; one at a
// time (its caller ends it with endBulk).
func (c *ttlCache[K, V]) beginBulk() *bulkRead[K] {
	b := &bulkRead[K]{stale: map[K]struct{}{}}
	c.bulk.Store(b) // first: an invalidation from now on is marked
	b.epoch = c.epoch.Load()
	b.fetched = c.clock.nanos()
	return b
}

// endBulk ends the bulk read b.
func (c *ttlCache[K, V]) endBulk(b *bulkRead[K]) { c.bulk.CompareAndSwap(b, nil) }

// put stores v, read by the bulk read b, as k's value, unless k is held
// or loading already (a get's load is as recent), k was invalidated since
// b began, everything in flight was dropped since, or k's shard is full
// (put evicts nothing). It reports whether it stored v.
func (c *ttlCache[K, V]) put(b *bulkRead[K], k K, v V) bool {
	sh := c.shard(k)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.m[k] != nil || len(sh.m) >= c.perShard || (c.shardBytes > 0 && sh.bytes >= c.shardBytes) || b.isStale(k) {
		return false
	}
	c.admitMu.Lock()
	defer c.admitMu.Unlock()
	if c.epoch.Load() != b.epoch {
		return false
	}
	s := &cacheSlot[K, V]{key: k, val: v, has: true, fetched: b.fetched}
	sh.pushFront(s)
	sh.m[k] = s
	c.resize(sh, s)
	return true
}

// full reports whether the cache holds nine tenths of its bound in keys
// or bytes, where a bulk read stops.
func (c *ttlCache[K, V]) full() bool {
	n := len(c.shards)
	if c.shardBytes > 0 && c.bytes.Load()*10 >= int64(c.shardBytes*n)*9 {
		return true
	}
	return c.len()*10 >= c.perShard*n*9
}

// counts returns the hits and misses of get so far.
func (c *ttlCache[K, V]) counts() (hits, misses uint64) {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		hits, misses = hits+sh.hits, misses+sh.misses
		sh.mu.Unlock()
	}
	return hits, misses
}

// hot returns up to limit keys held that a get asked for (not those only
// a bulk read stored), the most recently used first: each shard's in its
// LRU order, the shards taken in turn.
func (c *ttlCache[K, V]) hot(limit int) []K {
	per := make([][]K, len(c.shards))
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		for s := sh.head; s != nil && len(per[i]) < limit; s = s.next {
			if s.has && s.used {
				per[i] = append(per[i], s.key)
			}
		}
		sh.mu.Unlock()
	}
	var out []K
	for j := 0; len(out) < limit; j++ {
		more := false
		for i := range per {
			if j < len(per[i]) && len(out) < limit {
				out = append(out, per[i][j])
				more = true
			}
		}
		if !more {
			break
		}
	}
	return out
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

// The shard's LRU list, intrusive in the slots (no allocation per key).

func (sh *cacheShard[K, V]) pushFront(s *cacheSlot[K, V]) {
	s.prev, s.next = nil, sh.head
	if sh.head != nil {
		sh.head.prev = s
	}
	sh.head = s
	if sh.tail == nil {
		sh.tail = s
	}
}

func (sh *cacheShard[K, V]) unlink(s *cacheSlot[K, V]) {
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		sh.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	} else {
		sh.tail = s.prev
	}
	s.prev, s.next = nil, nil
}

func (sh *cacheShard[K, V]) touch(s *cacheSlot[K, V]) {
	if sh.head != s {
		sh.unlink(s)
		sh.pushFront(s)
	}
}

func hashString(seed maphash.Seed, s string) uint64 { return maphash.String(seed, s) }

func hashInt64(seed maphash.Seed, n int64) uint64 { return maphash.Comparable(seed, n) }
