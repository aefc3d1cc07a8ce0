package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/entitlement"
)

// TestEntitlementsWarmUp: an instance started over a database that holds
// licenses warms its entitlement cache once it follows the change feed;
// /readyz answers 503 until the warm-up has ended and 200 after; its checks
// then load nothing from the database, and a revocation made through
// another instance still reaches it through the feed.
func TestEntitlementsWarmUp(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		var lics []map[string]any
		var qs []map[string]any
		for i := range 30 {
			u := fmt.Sprintf("w%02d", i)
			lics = append(lics, a.createLicense(u, sports, nil))
			qs = append(qs, question(u, "espn", "live"))
		}

		b := otherInstance(t, a, storeB, 3*time.Second)
		wait := b.api.WarmEntitlements(t.Context(), 10*time.Second)
		// The watcher has not started, so the warm-up waits for it.
		b.must(503, req{method: "GET", path: "/readyz", key: "-"})
		follow(t, b, storeB)
		wait()
		b.must(200, req{method: "GET", path: "/readyz", key: "-"})
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_users"); n != 30 {
			t.Errorf("%v users in the cache after the warm-up, want the 30 holding licenses", n)
		}
		loads := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total")
		for i, ok := range b.check(qs...) {
			if !ok {
				t.Errorf("user %d not entitled on the warmed instance", i)
			}
		}
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total"); n != loads {
			t.Errorf("%v database loads for 30 users' checks after the warm-up, want none", n-loads)
		}
		a.must(204, req{method: "DELETE", path: base + "/licenses/" + path(lics[0], "id").(string)})
		waitUntil(t, "the revocation through the other instance on the warmed one", func() bool { return !b.check(qs[0])[0] })
	})
}

// TestEntitlementsWarmUpHotSet: an instance that stops saves the users it
// answered checks for (SaveHotEntitlements); the next instance over the
// same database warms up with those users only, not every user, and
// answers their checks without loading anything (on both engines).
func TestEntitlementsWarmUpHotSet(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		storeA, storeB := openShared(t, e)
		a := newEnv(t, engine{Name: e.Name, Open: func(testing.TB) licensor.Store { return storeA }})
		sports := a.product(map[string]any{"title": "Sports", "live": channels("espn")})
		var qs []map[string]any
		for i := range 30 {
			u := fmt.Sprintf("h%02d", i)
			a.createLicense(u, sports, nil)
			qs = append(qs, question(u, "espn", "live"))
		}
		watched := qs[:5]
		for i, ok := range a.check(watched...) {
			if !ok {
				t.Fatalf("user %d not entitled", i)
			}
		}
		if n, err := a.api.SaveHotEntitlements(t.Context()); err != nil || n != len(watched) {
			t.Fatalf("SaveHotEntitlements = %d, %v; want the %d users checked", n, err, len(watched))
		}

		b := otherInstance(t, a, storeB, 3*time.Second)
		wait := b.api.WarmEntitlements(t.Context(), 10*time.Second)
		follow(t, b, storeB)
		wait()
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_users"); n != float64(len(watched)) {
			t.Errorf("%v users in the cache after the warm-up, want the %d of the hot set", n, len(watched))
		}
		loads := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total")
		for i, ok := range b.check(watched...) {
			if !ok {
				t.Errorf("user %d not entitled on the warmed instance", i)
			}
		}
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total"); n != loads {
			t.Errorf("%v database loads for the hot users' checks after the warm-up, want none", n-loads)
		}
		if !b.check(qs[20])[0] {
			t.Errorf("a user outside the hot set not entitled")
		}
		if n := cacheMetric(t, b.api, "licensor_entitlement_cache_loads_total"); n != loads+1 {
			t.Errorf("%v database loads for a user outside the hot set, want 1", n-loads)
		}
	})
}

// otherInstance is a second server over store, the database of a's, with
// a's keys and clock, and an entitlement cache of that TTL. (Warm-up
// tests: seconds, so that a poll late on a loaded machine does not age
// the warmed entries out, which is not what they test.)
func otherInstance(t *testing.T, a *env, store licensor.Store, ttl time.Duration) *env {
	b := &env{t: t, store: store, clock: a.clock, writeKey: a.writeKey, readKey: a.readKey}
	b.api = api.New(store, api.Options{Now: a.clock.Now, KeyCacheTTL: time.Nanosecond,
		EndUser: api.EndUserOptions{Cache: entitlement.Options{TTL: ttl}}})
	b.srv = httptest.NewServer(b.api)
	t.Cleanup(b.srv.Close)
	return b
}

// follow has b's entitlement cache follow store's change feed until the
// test ends.
func follow(t *testing.T, b *env, store licensor.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() {
		watched <- b.api.WatchChanges(ctx, entitlement.FeedWatcher{Store: store, Poll: 20 * time.Millisecond})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-watched; err != nil {
			t.Errorf("Watch: %v", err)
		}
	})
}
