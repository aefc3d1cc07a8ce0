package entitlement

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/licensor/licensor"
)

// Entitlement cache defaults.
const (
	// DefaultTTL bounds how stale a cached entitlement may be
	// with respect to writes made through other instances (this instance's
	// own writes invalidate at once). An entry is served only while the
	// state it reflects is less than this old: the state as of the start
	// of the load that produced it or, when a ChangeWatcher follows the
	// change feed, as of the start of the watcher's last read that reached
	// the feed's head, whichever is later (every write committed before
	// that read has invalidated what it touched). With the feed followed
	// (every 100 ms by default) entries therefore live until a write
	// invalidates them; when the watcher lags or fails, they age out by
	// this TTL as without a feed. Either way a write committed elsewhere
	// is seen by every instance within this bound: half the one second
	// the contract allows, leaving the other half for the request itself.
	DefaultTTL = 500 * time.Millisecond
	// DefaultCacheBytes bounds the estimated memory of the
	// cached users (least recently used first out); products get an
	// eighth more. A user with four ACTIVE licenses costs about 430 bytes
	// (see userEntrySize), so the default holds about 78,000 such users
	// (a data set of 100k licenses entirely), and the server's memory
	// stays about the same from 100k to 10M licenses, well under 200 MB.
	DefaultCacheBytes = 32 << 20
	// DefaultUsers caps the number of cached users, whatever
	// their size.
	DefaultUsers = 1_000_000
	// DefaultProducts caps the cached products.
	DefaultProducts = 20_000

	cacheShards = 64
)

// Invalidator keeps the entitlement cache true. This instance's own writes
// drive it (see Notify); the change feed drives it for the writes
// of other instances (see ChangeWatcher). Every method is safe for
// concurrent use and takes effect before it returns: a check that starts
// afterwards never sees the old state.
type Invalidator interface {
	// InvalidateUser forgets a user's licenses (a license of theirs was
	// created, deleted, expired or changed status).
	InvalidateUser(userID string)
	// InvalidateLicenses forgets the users holding these licenses, when
	// only the license ids are known (a deletion by id).
	InvalidateLicenses(ids ...int64)
	// InvalidateProduct forgets a product (created, updated or deleted).
	InvalidateProduct(id int64)
	// InvalidateAll forgets everything: after a gap in the change feed.
	InvalidateAll()
	// FeedRead is called by a ChangeWatcher right before each read of the
	// change feed. The watcher calls the function it returns once it has
	// passed on every event of that read, if the read reached the feed's
	// head: every write committed before FeedRead was called has then
	// been invalidated, and the cache may serve what it holds as current
	// as of that instant.
	FeedRead() (caughtUp func())
}

// ChangeWatcher follows the writes made through every instance and drives
// inv until ctx ends: FeedWatcher, over the change feed (license created,
// deleted or expired → InvalidateUser; product created, updated or deleted
// → InvalidateProduct; a start or a lost position → InvalidateAll; each
// read that reaches the head → FeedRead's caughtUp). While no watcher
// runs (or it cannot read), writes made through other instances reach
// this one through the cache's TTL alone.
type ChangeWatcher interface {
	Watch(ctx context.Context, inv Invalidator) error
}

// Cache serves entitlements from memory: per user, the user's
// live ACTIVE licenses (the only ones that can entitle), reduced to what
// the rule reads; per product, the product with its channel lists sorted
// (shared by every user holding it). Both are read through from the store,
// kept while fresh (see DefaultTTL and ttlCache) and bounded by
// an estimate of their bytes and by count (least recently used first
// out). The answer computed for a user is memoized, with its ETag, for
// the window in which it holds (ValidFrom to ValidUntil): a repeated
// check is a map lookup and the encoding of the answer.
type Cache struct {
	store    licensor.Store
	enc      Encoder
	clock    *monoClock
	users    *ttlCache[string, *userEntry]
	products *ttlCache[int64, *entProduct] // nil value: no such product
	loader   *grantLoader                  // the users' loads
	queries  atomic.Uint64                 // database queries sent
	ttl      time.Duration

	// deleted maps the ids of the licenses this instance deleted lately to
	// when (clock nanos, after the delete committed): an entry loaded
	// before then that holds one of them is stale (see
	// InvalidateLicenses). ndeleted is its size, read without the lock.
	deletedMu sync.RWMutex
	deleted   map[int64]int64
	ndeleted  atomic.Int64
	pruned    atomic.Int64 // when deleted was last pruned (clock nanos)
	// productEpoch changes whenever a product is invalidated, which
	// retires every memoized answer (they may involve that product).
	productEpoch atomic.Uint64
	warmPage     int // licenses per query of Warm: WarmPage (tests: fewer)
	warm         warmProgress
	warming      atomic.Bool // a Warm is in progress (warm.running, read without its lock)
	// caughtUp is the instant (clock nanos) before which every committed
	// write has been applied through the change feed; math.MinInt64 while
	// no watcher has reached the feed's head.
	caughtUp atomic.Int64
}

// userEntry is one user's live ACTIVE licenses, as loaded, with the last
// answer computed from them.
type userEntry struct {
	licenses []licensor.Grant
	memo     atomic.Pointer[Answer]
}

// entProduct is a product with its channels per service (in the order of
// licensor.Services()) sorted and distinct, and their JSON identifiers
// encoded once: identifier j of service s is json[s][ends[s][j-1]:ends[s][j]]
// (from 0 for the first).
type entProduct struct {
	p        *licensor.Product
	channels [4][]string
	json     [4][]byte
	ends     [4][]int32
}

// identifier returns the encoded identifier of channel j of service s.
func (p *entProduct) identifier(s, j int) []byte {
	start := int32(0)
	if j > 0 {
		start = p.ends[s][j-1]
	}
	return p.json[s][start:p.ends[s][j]]
}

// Answer is a user's entitlements for every instant of their window,
// with the ETag of its representation (by the cache's Encoder).
type Answer struct {
	e      licensor.Entitlements[*entProduct]
	epoch  uint64 // productEpoch when computed
	oldest int64  // clock nanos: the start of the oldest load it rests on
	etag   string
	size   int // bytes of the representation (for this user)
}

// Options size the entitlement cache. Zero values take the defaults.
type Options struct {
	// TTL bounds staleness towards other instances' writes; default
	// DefaultTTL. Keep it at most one second.
	TTL time.Duration
	// MaxBytes bounds the estimated memory of the cached users; default
	// DefaultCacheBytes. Products may take an eighth more.
	MaxBytes int
	// MaxUsers and MaxProducts bound the number of entries; defaults
	// DefaultUsers and DefaultProducts.
	MaxUsers, MaxProducts int
	// Now is the monotonic clock (tests); default time.Now.
	Now func() time.Time
}

// Encoder writes answers as the API represents them. The cache encodes
// each product's channel identifiers once, when it loads the product, and
// each answer once, when it computes it, to keep the ETag and size of its
// representation; every response writes the same bytes again.
type Encoder interface {
	// AppendChannel appends the representation of channel id as one item
	// of a list (Answer.AppendChannels joins the items).
	AppendChannel(b []byte, id string) []byte
	// AppendAnswer appends the representation of a, the answer for user.
	AppendAnswer(b []byte, user string, a *Answer) []byte
}

// New returns an entitlement cache reading through from store, whose
// answers enc represents.
func New(store licensor.Store, enc Encoder, o Options) *Cache {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultCacheBytes
	}
	if o.MaxUsers <= 0 {
		o.MaxUsers = DefaultUsers
	}
	if o.MaxProducts <= 0 {
		o.MaxProducts = DefaultProducts
	}
	ec := &Cache{store: store, warmPage: WarmPage, warm: warmProgress{step: make(chan struct{})}, enc: enc, clock: newMonoClock(o.Now), ttl: o.TTL, deleted: map[int64]int64{}}
	ec.caughtUp.Store(math.MinInt64)
	floor := ec.caughtUp.Load
	ec.loader = &grantLoader{store: store, limit: LoadQueries, queries: &ec.queries}
	ec.users = newTTLCache(cacheShards, o.MaxUsers, o.TTL, ec.clock, hashString, func(ctx context.Context, user string) (*userEntry, error) {
		licenses, err := ec.loader.load(ctx, user)
		if err != nil {
			return nil, err
		}
		return &userEntry{licenses: licenses}, nil
	})
	ec.users.floor = floor
	ec.users.boundBytes(o.MaxBytes, userEntrySize)
	ec.products = newTTLCache(cacheShards, o.MaxProducts, o.TTL, ec.clock, hashInt64, func(ctx context.Context, id int64) (*entProduct, error) {
		p, err := store.FindProductByID(ctx, id)
		ec.queries.Add(1)
		if licensor.ErrorCode(err) == licensor.CodeProductNotFound {
			return nil, nil // remembered as absent: its licenses grant nothing
		}
		if err != nil {
			return nil, fmt.Errorf("load product %d: %w", id, err)
		}
		return newEntProduct(p, enc), nil
	})
	ec.products.floor = floor
	ec.products.boundBytes(o.MaxBytes/8, productSize)
	return ec
}

// Estimated bytes of a cached user (see userEntrySize), from the sizes of
// the structures involved, rounded up to the allocator's size classes and
// with maps at their average load; TestCacheMemory checks the
// estimate against the heap.
const (
	// the slot (64), its map entry (~48), the userEntry (32), the memoized
	// answer (80), its ETag (24) and valid_until (8)
	userEntryBytes = 64 + 48 + 32 + 80 + 24 + 8
	// per license: its licensor.Grant (32) and room for its product in the
	// answer (8)
	userLicenseBytes = 32 + 8
)

func userEntrySize(user string, e *userEntry) int {
	if e == nil {
		return userEntryBytes
	}
	return userEntryBytes + (len(user)+7)&^7 + len(e.licenses)*userLicenseBytes
}

func productSize(_ int64, p *entProduct) int {
	n := 64 + 40
	if p == nil {
		return n
	}
	n += 400 + len(p.p.Title) + len(p.p.Description) + len(p.p.Type) + len(p.p.LicensePeriod)
	for _, s := range licensor.Services() {
		for _, c := range p.p.Channels[s] {
			n += 16 + len(c)
		}
	}
	for i, ids := range p.channels {
		n += 24 + 16*len(ids) + 48 + 4*len(ids) + len(p.json[i])
	}
	return n
}

// newEntProduct indexes p's channels: each service's list sorted and
// distinct (p's own list when it already is), each identifier encoded by
// enc.
func newEntProduct(p *licensor.Product, enc Encoder) *entProduct {
	e := &entProduct{p: p}
	for i, s := range licensor.Services() {
		ids := p.Channels[s]
		if !sortedDistinct(ids) {
			ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		}
		e.channels[i] = ids
		var b []byte
		ends := make([]int32, len(ids))
		for j, c := range ids {
			b = enc.AppendChannel(b, c)
			ends[j] = int32(len(b))
		}
		e.json[i], e.ends[i] = b, ends
	}
	return e
}

func sortedDistinct(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i-1] >= ids[i] {
			return false
		}
	}
	return true
}

// loadUserLicenses reads the grants of every live license of user whose
// stored status is ACTIVE (Store.FindGrants): the entitlement rule applies
// the dates itself, at any instant. A license in any other status can
// never entitle (licenses are immutable; only the expiry changes a status,
// to EXPIRED, and says so on the change feed), so it is neither read nor
// kept.
func loadUserLicenses(ctx context.Context, store licensor.Store, user string) ([]licensor.Grant, error) {
	gs, err := store.FindGrants(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("load licenses of user %q: %w", user, err)
	}
	return slices.Clip(gs), nil // exactly: entries live long
}

// Answer returns the entitlements of user at unix time t.
func (ec *Cache) Answer(ctx context.Context, user string, t int64) (*Answer, error) {
	if ec.warming.Load() {
		ec.warm.await(ctx, user)
	}
	now := ec.clock.nanos()
	e, fetched, err := ec.users.getAt(ctx, user, now)
	if err != nil {
		return nil, err
	}
	if ec.ndeleted.Load() > 0 && ec.holdsDeleted(e, fetched, now) {
		// Loaded before a delete of one of its licenses: load again (a
		// load that starts now cannot predate the delete).
		ec.users.invalidate(user)
		now = ec.clock.nanos()
		if e, fetched, err = ec.users.getAt(ctx, user, now); err != nil {
			return nil, err
		}
	}
	epoch := ec.productEpoch.Load()
	if m := e.memo.Load(); m != nil && m.epoch == epoch && m.e.ValidAt(t) && ec.users.age(m.oldest, now) < int64(ec.ttl) {
		return m, nil
	}
	m, err := ec.compute(ctx, user, e, fetched, t, epoch)
	if err != nil {
		return nil, err
	}
	e.memo.Store(m)
	return m, nil
}

// compute applies the entitlement rule (licensor.EntitlementsAt) to a
// cached user, and encodes the answer for its ETag.
func (ec *Cache) compute(ctx context.Context, user string, e *userEntry, fetched, t int64, epoch uint64) (*Answer, error) {
	m := &Answer{epoch: epoch, oldest: fetched}
	var err error
	m.e, err = licensor.EntitlementsAt(e.licenses, t, func(id int64) (*entProduct, bool, error) {
		p, f, err := ec.products.get(ctx, id)
		m.oldest = min(m.oldest, f)
		return p, p != nil, err // nil: a deleted product, which grants nothing
	})
	if err != nil {
		return nil, err
	}
	body := ec.enc.AppendAnswer(nil, user, m)
	sum := sha256.Sum256(body)
	m.etag = `"` + base64.RawURLEncoding.EncodeToString(sum[:15]) + `"`
	m.size = len(body)
	return m, nil
}

// ETag is the entity tag of the answer's representation.
func (m *Answer) ETag() string { return m.etag }

// Size is the length of the answer's representation, in bytes.
func (m *Answer) Size() int { return m.size }

// ValidUntil is the next instant the answer can change (nil: only a write
// can change it).
func (m *Answer) ValidUntil() *int64 { return m.e.ValidUntil }

// ProductIDs yields the ids of the entitling products, ascending.
func (m *Answer) ProductIDs() iter.Seq[int64] {
	return func(yield func(int64) bool) {
		for _, p := range m.e.Products {
			if !yield(p.p.ID) {
				return
			}
		}
	}
}

// Allows reports whether the answer includes channel for service s.
func (m *Answer) Allows(s licensor.Service, channel string) bool {
	return m.allows(serviceIndex(s), channel)
}

// AppendChannels appends, for each distinct channel the answer grants for
// service s, in ascending order, its representation (by
// Encoder.AppendChannel), separated by sep.
func (m *Answer) AppendChannels(b []byte, s licensor.Service, sep byte) []byte {
	return m.appendChannels(b, serviceIndex(s), sep)
}

// serviceIndex is the index of s in licensor.Services().
func serviceIndex(s licensor.Service) int {
	switch s {
	case licensor.ServiceLive:
		return 0
	case licensor.ServiceCatchup:
		return 1
	case licensor.ServiceNPVR:
		return 2
	case licensor.ServiceStartover:
		return 3
	}
	panic("unknown service " + string(s)) // questions are parsed with licensor.ParseService
}

// allows reports whether the answer includes channel for the service of
// index s (in licensor.Services()).
func (m *Answer) allows(s int, channel string) bool {
	for _, p := range m.e.Products {
		if _, found := slices.BinarySearch(p.channels[s], channel); found {
			return true
		}
	}
	return false
}

// appendChannels appends, for each distinct channel of service s of the
// answer's products in ascending order, its encoded identifier, separated
// by sep; with several products their sorted lists are merged.
func (m *Answer) appendChannels(b []byte, s int, sep byte) []byte {
	switch len(m.e.Products) {
	case 0:
		return b
	case 1:
		p := m.e.Products[0]
		for j := range p.channels[s] {
			if j > 0 {
				b = append(b, sep)
			}
			b = append(b, p.identifier(s, j)...)
		}
		return b
	case 2:
		return appendMerged(b, m.e.Products[0], m.e.Products[1], s, sep)
	}
	var posArr [8]int
	pos := posArr[:0]
	for range m.e.Products {
		pos = append(pos, 0)
	}
	last, first := "", true
	for {
		best, bestID := -1, ""
		for i, p := range m.e.Products {
			if ids := p.channels[s]; pos[i] < len(ids) && (best < 0 || ids[pos[i]] < bestID) {
				best, bestID = i, ids[pos[i]]
			}
		}
		if best < 0 {
			return b
		}
		if first || bestID != last {
			if !first {
				b = append(b, sep)
			}
			b = append(b, m.e.Products[best].identifier(s, pos[best])...)
			last, first = bestID, false
		}
		pos[best]++
	}
}

// appendMerged is appendChannels of two products: their sorted lists
// merged with one comparison an identifier.
func appendMerged(b []byte, p, q *entProduct, s int, sep byte) []byte {
	x, y := p.channels[s], q.channels[s]
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		if i > 0 || j > 0 {
			b = append(b, sep)
		}
		c := -1
		if i == len(x) {
			c = 1
		} else if j < len(y) {
			c = strings.Compare(x[i], y[j])
		}
		switch {
		case c < 0:
			b = append(b, p.identifier(s, i)...)
			i++
		case c > 0:
			b = append(b, q.identifier(s, j)...)
			j++
		default: // in both
			b = append(b, p.identifier(s, i)...)
			i, j = i+1, j+1
		}
	}
	return b
}

// Product returns the product of the given id as the cache holds it (nil
// when there is none), for the end-user API's included products.
func (ec *Cache) Product(ctx context.Context, id int64) (*licensor.Product, error) {
	p, _, err := ec.products.get(ctx, id)
	if p == nil || err != nil {
		return nil, err
	}
	return p.p, nil
}

// prefetchWorkers bounds the loads one Prefetch runs at once.
const prefetchWorkers = 16

// Prefetch loads, concurrently, those of the n users user(0) … user(n-1)
// that are not fresh in memory, and their answers at t, so that a cold
// batch check waits for about its slowest load rather than for the sum of
// them.
func (ec *Cache) Prefetch(ctx context.Context, n int, user func(i int) string, t int64) error {
	var cold []string
	for i := range n {
		if u := user(i); !ec.users.fresh(u) {
			cold = append(cold, u)
		}
	}
	if len(cold) < 2 {
		return nil
	}
	slices.Sort(cold)
	cold = slices.Compact(cold)
	work := make(chan string)
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(prefetchWorkers, len(cold)) {
		wg.Go(func() {
			for u := range work {
				if _, err := ec.Answer(ctx, u, t); err != nil {
					once.Do(func() { firstErr = err })
				}
			}
		})
	}
	for _, u := range cold {
		work <- u
	}
	close(work)
	wg.Wait()
	return firstErr
}

// WarmPage is how many licenses one query of Warm reads.
const WarmPage = 5000

// WarmStats says what Warm did.
type WarmStats struct {
	Users, Products int  // entries stored
	Queries         int  // database reads
	Full            bool // stopped with the cache nine tenths full
	// HotSet: the users were those of the hot set saved by the last
	// instance to stop (Store.HotUsers), not every user by id.
	HotSet bool
}

// HotSetMaxAge is how old a saved hot set may be for Warm to take it
// instead of every user by id: a restart, a rolling upgrade, an instance
// added the same day.
const HotSetMaxAge = 24 * time.Hour

// SaveHot saves the users this cache has answered for and still holds
// (Store.SaveHotUsers), the most recently checked first, up to
// licensor.MaxHotUsers, for the next instance's Warm; users only a warm-up
// stored are left out. A cache that answered for no one saves nothing,
// leaving the set saved before. It returns how many users it saved.
func (ec *Cache) SaveHot(ctx context.Context) (int, error) {
	users := ec.users.hot(licensor.MaxHotUsers)
	if len(users) == 0 {
		return 0, nil
	}
	if err := ec.store.SaveHotUsers(ctx, users, ec.clock.now().Unix()); err != nil {
		return 0, fmt.Errorf("save the entitlement cache's hot users: %w", err)
	}
	return len(users), nil
}

// warmHot stores the users of the saved hot set, if there is one younger
// than HotSetMaxAge, licensor.MaxGrantUsers a query (Store.FindUsersGrants),
// until all are held or the cache is nine tenths full. It reports whether
// there was one.
func (ec *Cache) warmHot(ctx context.Context, st *WarmStats) (bool, error) {
	users, savedAt, err := ec.store.HotUsers(ctx, licensor.MaxHotUsers)
	st.Queries++
	ec.queries.Add(1)
	if err != nil {
		return false, fmt.Errorf("warm the entitlement cache: %w", err)
	}
	if len(users) == 0 || ec.clock.now().Sub(time.Unix(savedAt, 0)) > HotSetMaxAge {
		return false, nil
	}
	st.HotSet = true
	ec.warm.startHot(users, licensor.MaxGrantUsers)
	for i := 0; i < len(users) && !ec.users.full(); i += licensor.MaxGrantUsers {
		chunk := users[i:min(i+licensor.MaxGrantUsers, len(users))]
		b := ec.users.beginBulk()
		rows, err := ec.store.FindUsersGrants(ctx, chunk)
		st.Queries++
		ec.queries.Add(1)
		ec.users.loads.Add(1)
		if err != nil {
			ec.users.endBulk(b)
			return true, fmt.Errorf("warm the entitlement cache: %w", err)
		}
		byUser := grantsByUser(rows, len(chunk))
		for _, u := range chunk {
			if ec.users.put(b, u, &userEntry{licenses: byUser[u]}) {
				st.Users++
			}
		}
		ec.users.endBulk(b)
		ec.warm.advanceHot(i/licensor.MaxGrantUsers + 1)
	}
	return true, nil
}

// warmProgress is how far a Warm in progress has gone: every user whose id
// sorts up to after has been stored, or left to their first check; or,
// while a hot set loads (hot not nil), the users of its first hotDone
// chunks (hot maps each user to their chunk). step is closed when it goes
// further, or ends (running false).
type warmProgress struct {
	mu      sync.Mutex
	running bool
	after   string
	hot     map[string]int
	hotDone int
	step    chan struct{}
}

// advance records that the warm-up has passed after (done: ended).
func (w *warmProgress) advance(after string, done bool) {
	w.mu.Lock()
	w.after, w.running = after, !done
	if done {
		w.hot = nil
	}
	w.stepLocked()
	w.mu.Unlock()
}

// stepLocked wakes the checks waiting for the warm-up; w.mu is held.
func (w *warmProgress) stepLocked() {
	close(w.step)
	w.step = make(chan struct{})
}

// startHot records that the warm-up loads users, in chunks of n.
func (w *warmProgress) startHot(users []string, n int) {
	hot := make(map[string]int, len(users))
	for i, u := range users {
		hot[u] = i / n
	}
	w.mu.Lock()
	w.hot, w.hotDone = hot, 0
	w.mu.Unlock()
}

// advanceHot records that the hot set's first chunks are stored.
func (w *warmProgress) advanceHot(chunks int) {
	w.mu.Lock()
	w.hotDone = chunks
	w.stepLocked()
	w.mu.Unlock()
}

// passed reports whether the warm-up has no more to do for user; the
// caller holds w.mu.
func (w *warmProgress) passed(user string) bool {
	if !w.running {
		return true
	}
	if w.hot != nil {
		i, ok := w.hot[user]
		return !ok || i < w.hotDone // not in the hot set: never reached
	}
	return w.after != "" && user <= w.after
}

// warmWait bounds how long a check waits for the warm-up to reach its
// user: a warm-up that covers every user takes about a second for 100k
// licenses, and a user it will not reach (the cache full before) should
// not wait for the whole of it.
const warmWait = time.Second

// await waits until the warm-up in progress, if any, has passed user, for
// at most warmWait, or until ctx ends: a check that arrives while the cache
// warms waits for the page that holds its user instead of loading the user
// on its own.
func (w *warmProgress) await(ctx context.Context, user string) {
	var deadline <-chan time.Time
	for {
		w.mu.Lock()
		passed, step := w.passed(user), w.step
		w.mu.Unlock()
		if passed {
			return
		}
		if deadline == nil {
			t := time.NewTimer(warmWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-step:
		case <-deadline:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Warm fills the cache ahead of the checks: first the products, a page of
// MaxPageSize a query, then the users. When the last instance to stop
// saved its hot set (SaveHot) less than HotSetMaxAge ago, the users are
// those, MaxGrantUsers a query, the most recently checked first: the
// users being watched, not the first by id. Otherwise they are every user
// of a live license, in user id order, WarmPage licenses a query
// (Store.ListGrants; a user none of whose licenses is ACTIVE is stored
// with no grant). Either until all are held, the cache is nine tenths
// full (of its bytes or entries), or ctx ends. A user with more than
// WarmPage licenses, and users and products that do not fit or were not
// in the hot set, are loaded by their first check, as without a warm-up.
// A check that arrives meanwhile for a user the warm-up has not reached
// yet waits for it (Answer), up to a second, rather than loading the user
// alone (while the hot set loads: a user of the set waits for their
// query, any other user waits for nothing).
//
// It keeps the cache's guarantees: each page is stored with the instant
// its read began, a user or product invalidated while the page was read
// is not stored from it, and InvalidateAll rules out the page in flight.
// Entries live on only while a ChangeWatcher follows the feed (otherwise
// they age out by the TTL), and a watcher's start forgets everything: warm
// the cache once the watcher has reached the feed's head (Following).
// One Warm at a time.
func (ec *Cache) Warm(ctx context.Context) (WarmStats, error) {
	var st WarmStats
	after := ""
	ec.warm.mu.Lock()
	ec.warm.running, ec.warm.after = true, ""
	ec.warm.mu.Unlock()
	ec.warming.Store(true)
	defer func() {
		ec.warming.Store(false)
		ec.warm.advance(after, true)
	}()
	var next *licensor.Cursor
	for !ec.products.full() {
		b := ec.products.beginBulk()
		page, err := ec.store.FindProducts(ctx, licensor.ProductQuery{After: next, Limit: licensor.MaxPageSize})
		st.Queries++
		ec.queries.Add(1)
		ec.products.loads.Add(1)
		if err != nil {
			ec.products.endBulk(b)
			return st, fmt.Errorf("warm the entitlement cache: %w", err)
		}
		for i := range page.Products {
			p := &page.Products[i]
			if ec.products.put(b, p.ID, newEntProduct(p, ec.enc)) {
				st.Products++
			}
		}
		ec.products.endBulk(b)
		if next = page.Next; next == nil {
			break
		}
	}
	if hot, err := ec.warmHot(ctx, &st); err != nil || hot {
		st.Full = ec.users.full() || ec.products.full()
		return st, err
	}
	for !ec.users.full() {
		b := ec.users.beginBulk()
		rows, err := ec.store.ListGrants(ctx, after, ec.warmPage)
		st.Queries++
		ec.queries.Add(1)
		ec.users.loads.Add(1)
		if err != nil {
			ec.users.endBulk(b)
			return st, fmt.Errorf("warm the entitlement cache: %w", err)
		}
		last := len(rows) < ec.warmPage // else the last user's licenses may go on
		for i := 0; i < len(rows); {
			j, n := i, 0
			for ; j < len(rows) && rows[j].User == rows[i].User; j++ {
				if rows[j].Active {
					n++
				}
			}
			if j == len(rows) && !last {
				if i == 0 { // one user fills the page: left to their first check
					after = rows[i].User
				}
				break
			}
			var grants []licensor.Grant
			if n > 0 {
				grants = make([]licensor.Grant, 0, n)
				for k := i; k < j; k++ {
					if rows[k].Active {
						grants = append(grants, rows[k].Grant)
					}
				}
			}
			if ec.users.put(b, rows[i].User, &userEntry{licenses: grants}) {
				st.Users++
			}
			after, i = rows[i].User, j
		}
		ec.users.endBulk(b)
		ec.warm.advance(after, false)
		if last {
			break
		}
	}
	st.Full = ec.users.full() || ec.products.full()
	return st, nil
}

// Following reports whether a ChangeWatcher has reached the change feed's
// head since the cache was made.
func (ec *Cache) Following() bool { return ec.caughtUp.Load() != math.MinInt64 }

// InvalidateUser implements Invalidator.
func (ec *Cache) InvalidateUser(userID string) { ec.users.invalidate(userID) }

// InvalidateLicenses implements Invalidator. The licenses' users are not
// known, and finding them among the cached users would take an index of
// every cached license, which would cost more memory than the licenses
// themselves. The ids are remembered instead, with the instant: an entry
// loaded before then that holds one of them is reloaded when next read
// (answer), whether it was stored already or its load was in flight.
// They are remembered for as long as such an entry can be served: until
// the change feed's watcher has applied a read started after the delete
// (the license.deleted events name the users, and invalidate them), or
// else for the TTL.
func (ec *Cache) InvalidateLicenses(ids ...int64) {
	now := ec.clock.nanos()
	ec.deletedMu.Lock()
	ec.pruneDeleted(now)
	for _, id := range ids {
		ec.deleted[id] = now
	}
	ec.ndeleted.Store(int64(len(ec.deleted)))
	ec.deletedMu.Unlock()
}

// pruneDeleted forgets the deletes no entry can predate any more; the
// caller holds deletedMu.
func (ec *Cache) pruneDeleted(now int64) {
	caughtUp := ec.caughtUp.Load()
	for id, at := range ec.deleted {
		if now-at >= int64(ec.ttl) || caughtUp > at {
			delete(ec.deleted, id)
		}
	}
	ec.ndeleted.Store(int64(len(ec.deleted)))
	ec.pruned.Store(now)
}

// holdsDeleted reports whether e, loaded at fetched, holds a license
// deleted after that. It prunes the deletes now and then (every eighth of
// the TTL), so that checks stop consulting them soon after the last one.
func (ec *Cache) holdsDeleted(e *userEntry, fetched, now int64) bool {
	if now-ec.pruned.Load() >= int64(ec.ttl)/8 {
		ec.deletedMu.Lock()
		ec.pruneDeleted(now)
		ec.deletedMu.Unlock()
	}
	ec.deletedMu.RLock()
	defer ec.deletedMu.RUnlock()
	for i := range e.licenses {
		if at, ok := ec.deleted[e.licenses[i].LicenseID()]; ok && fetched <= at { // equal: which came first is unknown
			return true
		}
	}
	return false
}

// InvalidateProduct implements Invalidator. Memoized answers are retired;
// users' license lists stay (a deleted product's licenses are deleted too,
// and a license of a missing product grants nothing).
func (ec *Cache) InvalidateProduct(id int64) {
	ec.products.invalidate(id)
	ec.productEpoch.Add(1)
}

// InvalidateAll implements Invalidator.
// Loads and bulk reads in flight are ruled out first, then what is stored
// is dropped: the other way round, a load finishing in between would be
// stored after the clear and kept.
func (ec *Cache) InvalidateAll() {
	ec.users.dropInFlight(func() bool { return true })
	ec.users.clear()
	ec.products.dropInFlight(func() bool { return true })
	ec.products.clear()
	ec.productEpoch.Add(1)
}

// FeedRead implements Invalidator: the watcher's progress extends the
// life of every entry (see DefaultTTL).
func (ec *Cache) FeedRead() (caughtUp func()) {
	start := ec.clock.nanos()
	ec.queries.Add(1)
	return func() {
		for {
			cur := ec.caughtUp.Load()
			if start <= cur || ec.caughtUp.CompareAndSwap(cur, start) {
				return
			}
		}
	}
}

// Stats counts the cache's work since start.
type Stats struct {
	Users, Products          int    // keys held now
	Bytes                    int64  // estimated bytes held (users and products)
	UserHits, UserMisses     uint64 // lookups of a user's licenses
	ProductHits, ProductMiss uint64
	Loads                    uint64 // database loads started (each page a warm-up reads counts one)
	// Queries counts the database reads of the entitlement path: a load's
	// own query, a batch of loads' one (LoadQueries), each page of a
	// warm-up, each read of the change feed's watcher (FeedRead).
	Queries   uint64
	Evictions uint64 // entries dropped for room or by invalidation
	// FeedLag is how long ago the change feed's watcher last started a
	// read that reached the feed's head (entries are served while this is
	// under the TTL, however old they are); -1 when it never has.
	FeedLag time.Duration
}

// Stats returns the cache's counters.
func (ec *Cache) Stats() Stats {
	userHits, userMisses := ec.users.counts()
	productHits, productMisses := ec.products.counts()
	return Stats{
		Users:       ec.users.len(),
		Products:    ec.products.len(),
		Bytes:       ec.users.bytes.Load() + ec.products.bytes.Load(),
		UserHits:    userHits,
		UserMisses:  userMisses,
		ProductHits: productHits,
		ProductMiss: productMisses,
		Loads:       ec.users.loads.Load() + ec.products.loads.Load(),
		Queries:     ec.queries.Load(),
		Evictions:   ec.users.evictions.Load() + ec.products.evictions.Load(),
		FeedLag:     ec.feedLag(),
	}
}

func (ec *Cache) feedLag() time.Duration {
	c := ec.caughtUp.Load()
	if c == math.MinInt64 {
		return -1
	}
	return time.Duration(ec.clock.nanos() - c)
}

// Notify returns store as the handlers should see it: every license or
// product write made through it invalidates inv (the entitlement cache)
// before it returns, so that this instance is never stale towards its own
// writes. The invalidation also runs when the write failed, in case it
// committed before failing.
func Notify(store licensor.Store, inv Invalidator) licensor.Store {
	return notifyingStore{Store: store, inv: inv}
}

type notifyingStore struct {
	licensor.Store
	inv Invalidator
}

func (n notifyingStore) CreateLicenses(ctx context.Context, drafts []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	out, err := n.Store.CreateLicenses(ctx, drafts, c)
	for _, d := range drafts {
		n.inv.InvalidateUser(d.UserID)
	}
	return out, err
}

func (n notifyingStore) DeleteLicenses(ctx context.Context, ids []int64, allowMissing bool, c licensor.Change) ([]int64, []int64, error) {
	deleted, missing, err := n.Store.DeleteLicenses(ctx, ids, allowMissing, c)
	if err != nil {
		n.inv.InvalidateLicenses(ids...)
	} else {
		n.inv.InvalidateLicenses(deleted...)
	}
	return deleted, missing, err
}

func (n notifyingStore) CreateProduct(ctx context.Context, p *licensor.Product, c licensor.Change) error {
	err := n.Store.CreateProduct(ctx, p, c)
	if p.ID != 0 {
		n.inv.InvalidateProduct(p.ID)
	}
	return err
}

func (n notifyingStore) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, c licensor.Change) (*licensor.Product, error) {
	p, err := n.Store.UpdateProduct(ctx, id, patch, ifMatch, c)
	n.inv.InvalidateProduct(id)
	return p, err
}

func (n notifyingStore) DeleteProduct(ctx context.Context, id int64, opts licensor.DeleteProductOptions, c licensor.Change) error {
	err := n.Store.DeleteProduct(ctx, id, opts, c)
	n.inv.InvalidateProduct(id)
	return err
}

func (n notifyingStore) SuspendLicenses(ctx context.Context, target licensor.SuspensionTarget, a licensor.Suspension, c licensor.Change) ([]licensor.SuspensionOutcome, error) {
	out, err := n.Store.SuspendLicenses(ctx, target, a, c)
	switch {
	case target.IDs == nil:
		n.inv.InvalidateUser(target.UserID)
	case err == nil:
		for i := range out {
			if out[i].Changed {
				n.inv.InvalidateUser(out[i].License.UserID)
			}
		}
	case errors.As(err, new(licensor.ItemErrors)):
		// Refused before writing anything.
	default:
		// It may have committed before failing, and a reinstated license
		// is in no cached entry: the users are unknown here.
		n.inv.InvalidateAll()
	}
	return out, err
}

func (n notifyingStore) RunBulkJob(ctx context.Context, claim licensor.BulkClaim, limit int, now int64) (*licensor.BulkChunk, error) {
	chunk, err := n.Store.RunBulkJob(ctx, claim, limit, now)
	switch {
	case err == nil:
		for i := range chunk.Changed {
			n.inv.InvalidateUser(chunk.Changed[i].UserID)
		}
	case licensor.ErrorCode(err) == licensor.CodeConflict:
		// Refused before writing anything (the claim was lost).
	default:
		// It may have committed before failing: the users are unknown here.
		n.inv.InvalidateAll()
	}
	return chunk, err
}

func (n notifyingStore) RenewLicenses(ctx context.Context, c licensor.Change, r licensor.RenewalPass) (licensor.RenewalResult, error) {
	res, err := n.Store.RenewLicenses(ctx, c, r)
	if err != nil {
		// It may have committed before failing: the users are unknown here.
		n.inv.InvalidateAll()
	}
	for i := range res.Renewed {
		n.inv.InvalidateUser(res.Renewed[i].Successor.UserID)
	}
	return res, err
}
