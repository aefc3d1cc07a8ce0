package api

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/licensor/licensor"
)

// Entitlement cache defaults.
const (
	// DefaultEntitlementTTL bounds how stale a cached entitlement may be
	// with respect to writes made through other instances (this instance's
	// own writes invalidate at once; the change feed, when followed,
	// brings the others' in about its poll interval). A value is served at most this long
	// after the load that produced it started, so a write committed
	// elsewhere is seen by every instance within this bound: half the one
	// second the contract allows, leaving the other half for the request
	// itself.
	DefaultEntitlementTTL = 500 * time.Millisecond
	// DefaultEntitlementUsers caps the users whose licenses are cached
	// (least recently used first out). A cached user costs about 1 KiB
	// (with a couple of licenses and its last answer), so the default
	// bounds the cache near 100 MiB.
	DefaultEntitlementUsers = 100_000
	// DefaultEntitlementProducts caps the cached products.
	DefaultEntitlementProducts = 20_000

	cacheShards = 64
)

// Invalidator keeps the entitlement cache true. This instance's own writes
// drive it (see notifyingStore); the change feed drives it for the writes
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
}

// ChangeWatcher follows the writes made through every instance and drives
// inv until ctx ends: FeedWatcher, over the change feed (license created,
// deleted or expired → InvalidateUser; product created, updated or deleted
// → InvalidateProduct; a start or a lost position → InvalidateAll). While
// no watcher runs (or it cannot read), writes made through other instances
// reach this one through the cache's TTL alone.
type ChangeWatcher interface {
	Watch(ctx context.Context, inv Invalidator) error
}

// EntitlementCache serves entitlements from memory: per user, the user's
// live licenses; per product, the product. Both are read through from the
// store, kept at most TTL (see ttlCache) and bounded in number (LRU).
// Computed answers are memoized per user for the window in which they hold
// (licensor.Entitlements.ValidFrom to ValidUntil).
type EntitlementCache struct {
	users    *ttlCache[string, *userEntry]
	products *ttlCache[int64, *licensor.Product] // nil value: no such product
	ttl      time.Duration

	// byLicense maps the license ids of stored user entries to their user,
	// so that a deletion by license id finds whom to forget. Guarded by
	// users.admitMu.
	byLicense map[int64]string
	// productEpoch changes whenever a product is invalidated, which
	// retires every memoized answer (they may involve that product).
	productEpoch atomic.Uint64
}

// userEntry is one user's live licenses, as loaded, with the last answer
// computed from them.
type userEntry struct {
	licenses []licensor.License
	memo     atomic.Pointer[entitlementMemo]
}

type entitlementMemo struct {
	ents         licensor.Entitlements
	productEpoch uint64
	expires      time.Time // the oldest load it rests on + TTL
}

// CacheOptions size the entitlement cache. Zero values take the defaults.
type CacheOptions struct {
	// TTL bounds staleness towards other instances' writes; default
	// DefaultEntitlementTTL. Keep it at most one second while no
	// ChangeWatcher runs.
	TTL time.Duration
	// MaxUsers and MaxProducts bound memory; defaults
	// DefaultEntitlementUsers and DefaultEntitlementProducts.
	MaxUsers, MaxProducts int
}

func newEntitlementCache(store licensor.Store, o CacheOptions) *EntitlementCache {
	if o.TTL <= 0 {
		o.TTL = DefaultEntitlementTTL
	}
	if o.MaxUsers <= 0 {
		o.MaxUsers = DefaultEntitlementUsers
	}
	if o.MaxProducts <= 0 {
		o.MaxProducts = DefaultEntitlementProducts
	}
	ec := &EntitlementCache{ttl: o.TTL, byLicense: map[int64]string{}}
	ec.users = newTTLCache(cacheShards, o.MaxUsers, o.TTL, hashString, func(ctx context.Context, user string) (*userEntry, error) {
		licenses, err := loadUserLicenses(ctx, store, user)
		if err != nil {
			return nil, err
		}
		return &userEntry{licenses: licenses}, nil
	})
	ec.users.onStore = func(user string, e *userEntry) {
		for i := range e.licenses {
			ec.byLicense[e.licenses[i].ID] = user
		}
	}
	ec.users.onDrop = func(user string, e *userEntry) {
		for i := range e.licenses {
			delete(ec.byLicense, e.licenses[i].ID)
		}
	}
	ec.products = newTTLCache(cacheShards, o.MaxProducts, o.TTL, hashInt64, func(ctx context.Context, id int64) (*licensor.Product, error) {
		p, err := store.FindProductByID(ctx, id)
		if licensor.ErrorCode(err) == licensor.CodeProductNotFound {
			return nil, nil // remembered as absent: its licenses grant nothing
		}
		if err != nil {
			return nil, fmt.Errorf("load product %d: %w", id, err)
		}
		return p, nil
	})
	return ec
}

// loadUserLicenses reads every live license of user with its stored status
// (Now = MinInt64 makes the store's effective status the stored one: the
// entitlement rule applies the dates itself, at any instant).
func loadUserLicenses(ctx context.Context, store licensor.Store, user string) ([]licensor.License, error) {
	q := licensor.LicenseQuery{
		Filter: licensor.LicenseFilter{UserID: &user},
		Sort:   licensor.SortOrder{Field: "id"},
		Limit:  licensor.MaxPageSize,
		Now:    math.MinInt64,
	}
	var out []licensor.License
	for {
		page, err := store.FindLicenses(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("load licenses of user %q: %w", user, err)
		}
		for i := range page.Licenses {
			out = append(out, entitlementView(&page.Licenses[i]))
		}
		if page.Next == nil {
			return out, nil
		}
		q.After = page.Next
	}
}

// entitlementView keeps of l what the entitlement rule reads, to hold
// more users in the same memory.
func entitlementView(l *licensor.License) licensor.License {
	v := licensor.License{ID: l.ID, ProductID: l.ProductID, Status: l.Status, StartDate: l.StartDate, StopDate: l.StopDate}
	for _, s := range licensor.Statuses {
		if s == v.Status {
			v.Status = s // the constant, not a copy read from the database
		}
	}
	return v
}

// At returns the entitlements of user at unix time t.
func (ec *EntitlementCache) At(ctx context.Context, user string, t int64) (*licensor.Entitlements, error) {
	now := ec.users.clock()
	e, fetched, err := ec.users.getAt(ctx, user, now)
	if err != nil {
		return nil, err
	}
	epoch := ec.productEpoch.Load()
	if m := e.memo.Load(); m != nil && m.productEpoch == epoch && m.ents.ValidAt(t) && now.Before(m.expires) {
		return &m.ents, nil
	}
	oldest := fetched
	var products map[int64]*licensor.Product
	for i := range e.licenses {
		l := &e.licenses[i]
		if l.Status != licensor.StatusActive {
			continue // never entitles: its product does not matter
		}
		if _, done := products[l.ProductID]; done {
			continue
		}
		p, f, err := ec.products.get(ctx, l.ProductID)
		if err != nil {
			return nil, err
		}
		if products == nil {
			products = map[int64]*licensor.Product{}
		}
		products[l.ProductID] = p
		if f.Before(oldest) {
			oldest = f
		}
	}
	m := &entitlementMemo{
		ents:         licensor.EntitlementsAt(e.licenses, func(id int64) *licensor.Product { return products[id] }, t),
		productEpoch: epoch,
		expires:      oldest.Add(ec.ttl),
	}
	e.memo.Store(m)
	return &m.ents, nil
}

// TTL is the staleness bound towards other instances' writes.
func (ec *EntitlementCache) TTL() time.Duration { return ec.ttl }

// InvalidateUser implements Invalidator.
func (ec *EntitlementCache) InvalidateUser(userID string) { ec.users.invalidate(userID) }

// InvalidateLicenses implements Invalidator. Licenses of users held in the
// cache are found through their ids; for the others, whose licenses may
// be on their way into the cache right now, every load in flight is ruled
// out.
func (ec *EntitlementCache) InvalidateLicenses(ids ...int64) {
	var users []string
	ec.users.dropInFlight(func() bool {
		unknown := false
		for _, id := range ids {
			if u, ok := ec.byLicense[id]; ok {
				users = append(users, u)
			} else {
				unknown = true
			}
		}
		return unknown
	})
	for _, u := range users {
		ec.users.invalidate(u)
	}
}

// InvalidateProduct implements Invalidator. Memoized answers are retired;
// users' license lists stay (a deleted product's licenses are deleted too,
// and a license of a missing product grants nothing).
func (ec *EntitlementCache) InvalidateProduct(id int64) {
	ec.products.invalidate(id)
	ec.productEpoch.Add(1)
}

// InvalidateAll implements Invalidator.
func (ec *EntitlementCache) InvalidateAll() {
	ec.users.clear()
	ec.users.dropInFlight(func() bool { return true })
	ec.products.clear()
	ec.productEpoch.Add(1)
}

// CacheStats counts the cache's work since start.
type CacheStats struct {
	Users, Products          int    // keys held now
	UserHits, UserMisses     uint64 // lookups of a user's licenses
	ProductHits, ProductMiss uint64
	Loads                    uint64 // database loads started
}

// Stats returns the cache's counters.
func (ec *EntitlementCache) Stats() CacheStats {
	return CacheStats{
		Users:       ec.users.len(),
		Products:    ec.products.len(),
		UserHits:    ec.users.hits.Load(),
		UserMisses:  ec.users.misses.Load(),
		ProductHits: ec.products.hits.Load(),
		ProductMiss: ec.products.misses.Load(),
		Loads:       ec.users.loads.Load() + ec.products.loads.Load(),
	}
}

// notifyingStore is the store as the handlers see it: every license or
// product write made through this instance invalidates the entitlement
// cache before the handler answers, so that this instance is never stale
// towards its own writes. The invalidation also runs when the write
// failed, in case it committed before failing.
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
