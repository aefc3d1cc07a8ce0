package postgres

import (
	"sync"

	"github.com/licensor/licensor"
)

// Products: the Store's methods are written once (sqlstore.Shared); here
// the cache of the products CreateLicenses reads.

// productCache keeps recently read products for CreateLicenses, which
// checks in its insert that the product still has the cached version
// (insertCached): a stale entry costs one statement, never a wrong
// license. Products change rarely and are few; the cache forgets
// everything when it reaches maxCachedProducts.
type productCache struct {
	mu sync.Mutex
	m  map[int64]*licensor.Product
}

const maxCachedProducts = 4096

// get returns a cached product (not to be modified), or nil.
func (c *productCache) get(id int64) *licensor.Product {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// put caches p unless a later version is cached.
func (c *productCache) put(p *licensor.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedProducts {
		c.m = make(map[int64]*licensor.Product)
	}
	if old := c.m[p.ID]; old == nil || old.Version < p.Version {
		c.m[p.ID] = p
	}
}
