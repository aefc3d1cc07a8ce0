// Package apikey verifies the API keys that BSS systems present
// (Authorization: Apikey <key>), with a short cache in front of the store,
// and gathers their last use.
package apikey

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/licensor/licensor"
)

// Ring verifies presented API keys. Lookups are cached for ttl, so a
// revoked or expired key stops working on every instance within ttl, and a
// burst of requests costs one query per key per ttl. Last use is gathered in
// memory and written by flush, never on the request path.
type Ring struct {
	store licensor.Store
	ttl   time.Duration
	now   func() time.Time

	mu       sync.Mutex
	cache    map[string]cachedKey // by prefix
	lastUsed map[int64]int64      // key id → unix seconds, not yet written
}

type cachedKey struct {
	key     *licensor.APIKey // nil when the prefix is unknown
	fetched time.Time
}

// NewRing returns a ring that caches lookups in store for ttl.
func NewRing(store licensor.Store, ttl time.Duration, now func() time.Time) *Ring {
	return &Ring{store: store, ttl: ttl, now: now, cache: map[string]cachedKey{}, lastUsed: map[int64]int64{}}
}

// maxCachedKeys bounds the cache against floods of made-up prefixes.
const maxCachedKeys = 10000

// Verify returns the key that secret (without surrounding space) belongs
// to, if it is usable now.
func (k *Ring) Verify(ctx context.Context, secret string) (*licensor.APIKey, error) {
	prefix, ok := keyPrefix(secret)
	if !ok {
		return nil, errInvalidKey()
	}
	now := k.now()
	k.mu.Lock()
	c, hit := k.cache[prefix]
	k.mu.Unlock()
	if !hit || now.Sub(c.fetched) >= k.ttl || now.Before(c.fetched) {
		prefix = strings.Clone(prefix) // kept: must not hold on to the secret
		key, err := k.store.FindAPIKeyByPrefix(ctx, prefix)
		if err != nil && licensor.ErrorCode(err) != licensor.CodeAPIKeyInvalid {
			return nil, err
		}
		c = cachedKey{key: key, fetched: now}
		k.mu.Lock()
		if len(k.cache) >= maxCachedKeys {
			clear(k.cache)
		}
		k.cache[prefix] = c
		k.mu.Unlock()
	}
	if c.key == nil || !c.key.Matches(secret) {
		return nil, errInvalidKey()
	}
	if err := c.key.Usable(now.Unix()); err != nil {
		return nil, err
	}
	return c.key, nil
}

func errInvalidKey() error {
	return licensor.Errorf(licensor.CodeAPIKeyInvalid, "the API key is not valid")
}

// keyPrefix is licensor.APIKeyPrefix for a secret without surrounding
// space, without a regular expression or an allocation: the prefix
// ("lk_" and 8 characters) of a well-formed key, lk_<8>_<32> in the
// lower-case base32 alphabet, as a substring of secret.
func keyPrefix(secret string) (string, bool) {
	const prefixLen, keyLen = 3 + 8, 3 + 8 + 1 + 32
	if len(secret) != keyLen || secret[:3] != "lk_" || secret[prefixLen] != '_' {
		return "", false
	}
	for i := 3; i < keyLen; i++ {
		if c := secret[i]; i != prefixLen && !('a' <= c && c <= 'z' || '2' <= c && c <= '7') {
			return "", false
		}
	}
	return secret[:prefixLen], true
}

// Used notes that key admitted a request now.
func (k *Ring) Used(key *licensor.APIKey) {
	now := k.now().Unix()
	k.mu.Lock()
	k.lastUsed[key.ID] = now
	k.mu.Unlock()
}

// Flush writes the gathered last-use times.
func (k *Ring) Flush(ctx context.Context) error {
	k.mu.Lock()
	pending := k.lastUsed
	k.lastUsed = map[int64]int64{}
	k.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	if err := k.store.TouchAPIKeys(ctx, pending); err != nil {
		k.mu.Lock()
		for id, t := range pending {
			if t > k.lastUsed[id] {
				k.lastUsed[id] = t
			}
		}
		k.mu.Unlock()
		return err
	}
	return nil
}
