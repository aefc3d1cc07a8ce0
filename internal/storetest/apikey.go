package storetest

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

// newKey returns an unsaved API key with a fresh secret.
func newKey(name string, scope licensor.Scope) licensor.APIKey {
	_, prefix, hash := licensor.NewAPIKeySecret()
	return licensor.APIKey{Name: name, Prefix: prefix, Hash: hash, Scope: scope}
}

// createKey stores k, failing the test on error.
func createKey(t *testing.T, s licensor.Store, k licensor.APIKey) licensor.APIKey {
	t.Helper()
	if err := s.CreateAPIKey(t.Context(), &k); err != nil {
		t.Fatalf("CreateAPIKey(%q): %v", k.Name, err)
	}
	return k
}

func findKey(t *testing.T, s licensor.Store, prefix string) licensor.APIKey {
	t.Helper()
	k, err := s.FindAPIKeyByPrefix(t.Context(), prefix)
	if err != nil {
		t.Fatalf("FindAPIKeyByPrefix(%q): %v", prefix, err)
	}
	if k == nil {
		t.Fatalf("FindAPIKeyByPrefix(%q): got nil, nil", prefix)
	}
	return *k
}

// wantKey fails the test unless got and want are the same key; no networks
// and an empty list are the same.
func wantKey(t *testing.T, what string, got, want licensor.APIKey) {
	t.Helper()
	same := got.ID == want.ID && got.Name == want.Name && got.Prefix == want.Prefix &&
		bytes.Equal(got.Hash, want.Hash) && got.Scope == want.Scope &&
		slices.Equal(got.Networks, want.Networks) && equalPtr(got.ExpiresAt, want.ExpiresAt) &&
		got.CreatedAt == want.CreatedAt && equalPtr(got.RevokedAt, want.RevokedAt) &&
		equalPtr(got.LastUsedAt, want.LastUsedAt)
	if !same {
		t.Fatalf("%s:\n got %s\nwant %s", what, show(got), show(want))
	}
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func testAPIKeyCreateAndFind(t *testing.T, s licensor.Store) {
	full := newKey("ops@example.com", licensor.ScopeWrite)
	full.Networks = []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.7/32"),
		netip.MustParsePrefix("2001:db8:1::1/128"),
	}
	full.ExpiresAt = new(t0 + 365*day)
	plain := newKey("reader", licensor.ScopeRead)

	for _, in := range []licensor.APIKey{full, plain} {
		before := time.Now().Unix()
		k := createKey(t, s, in)
		after := time.Now().Unix()
		if k.ID <= 0 {
			t.Errorf("%s: ID: got %d, want > 0", in.Name, k.ID)
		}
		// The store stamps the creation with its clock; allow for rounding.
		if k.CreatedAt < before-1 || k.CreatedAt > after+1 {
			t.Errorf("%s: CreatedAt: got %d, want the time of the call (%d..%d)", in.Name, k.CreatedAt, before, after)
		}
		want := in
		want.ID, want.CreatedAt = k.ID, k.CreatedAt
		wantKey(t, "CreateAPIKey result", k, want)
		wantKey(t, "FindAPIKeyByPrefix", findKey(t, s, in.Prefix), want)
	}
	if k1, k2 := findKey(t, s, full.Prefix), findKey(t, s, plain.Prefix); k1.ID == k2.ID {
		t.Errorf("two keys share ID %d", k1.ID)
	}
	// The stored hash still verifies the secret it was made from, and no other.
	secret, prefix, hash := licensor.NewAPIKeySecret()
	k := createKey(t, s, licensor.APIKey{Name: "verify", Prefix: prefix, Hash: hash, Scope: licensor.ScopeRead})
	got := findKey(t, s, k.Prefix)
	if !got.Matches(secret) || got.Matches(secret+"x") {
		t.Errorf("stored hash: Matches(secret) = %v, Matches(other) = %v, want true and false", got.Matches(secret), got.Matches(secret+"x"))
	}
}

func testAPIKeyDuplicateName(t *testing.T, s licensor.Store) {
	first := createKey(t, s, newKey("ci", licensor.ScopeWrite))
	dup := newKey("ci", licensor.ScopeRead)
	wantCode(t, s.CreateAPIKey(t.Context(), &dup), licensor.CodeConflict)
	keys, err := s.FindAPIKeys(t.Context())
	if err != nil {
		t.Fatalf("FindAPIKeys: %v", err)
	}
	if len(keys) != 1 {
		t.Fatalf("FindAPIKeys after a refused duplicate: got %d keys, want 1", len(keys))
	}
	wantKey(t, "the first key", keys[0], first)
	_, err = s.FindAPIKeyByPrefix(t.Context(), dup.Prefix)
	wantCode(t, err, licensor.CodeAPIKeyInvalid)
	// The name of a revoked key can be used again, once at a time.
	if err := s.RevokeAPIKey(t.Context(), "ci", at(t0)); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	again := createKey(t, s, newKey("ci", licensor.ScopeRead))
	dup3 := newKey("ci", licensor.ScopeRead)
	wantCode(t, s.CreateAPIKey(t.Context(), &dup3), licensor.CodeConflict)
	revoked := first
	revoked.RevokedAt = new(t0)
	wantKey(t, "the revoked key", findKey(t, s, first.Prefix), revoked)
	wantKey(t, "the new key of the name", findKey(t, s, again.Prefix), again)
	// Revoking the name now revokes the new key, not the old one again.
	if err := s.RevokeAPIKey(t.Context(), "ci", at(t0+9)); err != nil {
		t.Fatalf("RevokeAPIKey of the reused name: %v", err)
	}
	wantKey(t, "the first revoked key", findKey(t, s, first.Prefix), revoked)
	if got := findKey(t, s, again.Prefix); got.RevokedAt == nil || *got.RevokedAt != t0+9 {
		t.Errorf("the reused name's key: revoked at %v, want %d", got.RevokedAt, t0+9)
	}
}

// testAPIKeyRevokeTwice: a second revocation changes nothing and says so.
func testAPIKeyRevokeTwice(t *testing.T, s licensor.Store) {
	k := createKey(t, s, newKey("twice", licensor.ScopeWrite))
	if err := s.RevokeAPIKey(t.Context(), "twice", at(t0)); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	wantCode(t, s.RevokeAPIKey(t.Context(), "twice", at(t0+60)), licensor.CodeConflict)
	wantCode(t, s.RevokeAPIKey(t.Context(), k.Prefix, at(t0+60)), licensor.CodeConflict)
	want := k
	want.RevokedAt = new(t0)
	wantKey(t, "the key revoked twice", findKey(t, s, k.Prefix), want)
}

// testAPIKeyRotate: the successor takes the name, scope, networks and
// expiry; the old key works until the end of the grace period; both are
// listed; revoking the name ends both at once.
func testAPIKeyRotate(t *testing.T, s licensor.Store) {
	k := newKey("bss", licensor.ScopeRead)
	k.Networks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	k.ExpiresAt = new(t0 + 86400*30)
	k = createKey(t, s, k)
	other := createKey(t, s, newKey("other", licensor.ScopeWrite))

	_, prefix, hash := licensor.NewAPIKeySecret()
	next := licensor.APIKey{Prefix: prefix, Hash: hash}
	old, err := s.RotateAPIKey(t.Context(), "bss", &next, t0+3600, at(t0))
	if err != nil {
		t.Fatalf("RotateAPIKey: %v", err)
	}
	wantOld := k
	wantOld.RevokedAt = new(t0 + 3600)
	wantKey(t, "the rotated-out key returned", *old, wantOld)
	wantKey(t, "the rotated-out key", findKey(t, s, k.Prefix), wantOld)
	if next.ID == 0 || next.ID == k.ID || next.Name != "bss" || next.Scope != licensor.ScopeRead || next.CreatedAt != t0 {
		t.Errorf("successor: %s", show(&next))
	}
	gotNext := findKey(t, s, prefix)
	wantKey(t, "the successor", gotNext, next)
	if len(gotNext.Networks) != 1 || gotNext.ExpiresAt == nil || *gotNext.ExpiresAt != *k.ExpiresAt {
		t.Errorf("successor lost networks or expiry: %s", show(&gotNext))
	}
	oldNow := findKey(t, s, k.Prefix)
	if oldNow.Usable(t0+3599) != nil || oldNow.Usable(t0+3600) == nil || gotNext.Usable(t0+3600) != nil {
		t.Errorf("grace: old usable before the end %v, after %v; new %v", oldNow.Usable(t0+3599), oldNow.Usable(t0+3600), gotNext.Usable(t0+3600))
	}
	keys, err := s.FindAPIKeys(t.Context())
	if err != nil || len(keys) != 3 {
		t.Fatalf("FindAPIKeys after rotation: %d keys, %v; want 3", len(keys), err)
	}
	// The successor holds the name: a new key of that name is refused.
	dup := newKey("bss", licensor.ScopeRead)
	wantCode(t, s.CreateAPIKey(t.Context(), &dup), licensor.CodeConflict)
	// Rotating an unknown or revoked name: not found.
	_, p2, h2 := licensor.NewAPIKeySecret()
	_, err = s.RotateAPIKey(t.Context(), "nobody", &licensor.APIKey{Prefix: p2, Hash: h2}, t0, at(t0))
	wantCode(t, err, licensor.CodeNotFound)
	// Revoking the name ends the grace period too.
	if err := s.RevokeAPIKey(t.Context(), "bss", at(t0+10)); err != nil {
		t.Fatalf("RevokeAPIKey after rotation: %v", err)
	}
	for _, p := range []string{k.Prefix, prefix} {
		if got := findKey(t, s, p); got.RevokedAt == nil || *got.RevokedAt != t0+10 {
			t.Errorf("key %s after revoking the name: revoked at %v, want %d", p, got.RevokedAt, t0+10)
		}
	}
	_, err = s.RotateAPIKey(t.Context(), "bss", &licensor.APIKey{Prefix: p2, Hash: h2}, t0, at(t0+11))
	wantCode(t, err, licensor.CodeNotFound)
	// A rotation without grace ends the old key at once.
	_, p3, h3 := licensor.NewAPIKeySecret()
	old, err = s.RotateAPIKey(t.Context(), "other", &licensor.APIKey{Prefix: p3, Hash: h3}, 0, at(t0+20))
	if err != nil {
		t.Fatalf("RotateAPIKey without grace: %v", err)
	}
	if old.ID != other.ID || old.RevokedAt == nil || *old.RevokedAt != t0+20 {
		t.Errorf("rotation without grace: %s", show(old))
	}
}

func testAPIKeyUnknownPrefix(t *testing.T, s licensor.Store) {
	k := createKey(t, s, newKey("one", licensor.ScopeRead))
	_, other, _ := licensor.NewAPIKeySecret()
	for _, prefix := range []string{other, "", k.Name, k.Prefix + "x", k.Prefix[:len(k.Prefix)-1]} {
		got, err := s.FindAPIKeyByPrefix(t.Context(), prefix)
		wantCode(t, err, licensor.CodeAPIKeyInvalid)
		if got != nil {
			t.Errorf("FindAPIKeyByPrefix(%q): got %s with the error, want nil", prefix, show(got))
		}
	}
}

func testAPIKeyList(t *testing.T, s licensor.Store) {
	keys, err := s.FindAPIKeys(t.Context())
	if err != nil {
		t.Fatalf("FindAPIKeys on an empty store: %v", err)
	}
	if len(keys) != 0 {
		t.Fatalf("FindAPIKeys on an empty store: got %d keys, want 0", len(keys))
	}
	var want []licensor.APIKey
	for _, name := range []string{"zeta", "alpha", "mid"} {
		want = append(want, createKey(t, s, newKey(name, licensor.ScopeRead)))
	}
	if err := s.RevokeAPIKey(t.Context(), "alpha", at(t0)); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	want[1].RevokedAt = new(t0)
	slices.SortFunc(want, func(a, b licensor.APIKey) int { return cmp.Compare(a.ID, b.ID) })
	keys, err = s.FindAPIKeys(t.Context())
	if err != nil {
		t.Fatalf("FindAPIKeys: %v", err)
	}
	if len(keys) != len(want) {
		t.Fatalf("FindAPIKeys: got %d keys, want %d (revoked ones included)", len(keys), len(want))
	}
	for i := range want {
		wantKey(t, "FindAPIKeys by id", keys[i], want[i])
	}
}

func testAPIKeyRevokeByName(t *testing.T, s licensor.Store) {
	k := createKey(t, s, newKey("gone", licensor.ScopeWrite))
	other := createKey(t, s, newKey("stays", licensor.ScopeWrite))
	if err := s.RevokeAPIKey(t.Context(), "gone", at(t0)); err != nil {
		t.Fatalf("RevokeAPIKey by name: %v", err)
	}
	want := k
	want.RevokedAt = new(t0)
	got := findKey(t, s, k.Prefix)
	wantKey(t, "revoked key", got, want)
	wantKey(t, "the other key", findKey(t, s, other.Prefix), other)
}

func testAPIKeyRevokeByPrefix(t *testing.T, s licensor.Store) {
	k := createKey(t, s, newKey("gone", licensor.ScopeWrite))
	other := createKey(t, s, newKey("stays", licensor.ScopeWrite))
	if err := s.RevokeAPIKey(t.Context(), k.Prefix, at(t0+5)); err != nil {
		t.Fatalf("RevokeAPIKey by prefix: %v", err)
	}
	want := k
	want.RevokedAt = new(t0 + 5)
	wantKey(t, "revoked key", findKey(t, s, k.Prefix), want)
	wantKey(t, "the other key", findKey(t, s, other.Prefix), other)
}

func testAPIKeyRevokeUnknown(t *testing.T, s licensor.Store) {
	k := createKey(t, s, newKey("known", licensor.ScopeWrite))
	_, prefix, _ := licensor.NewAPIKeySecret()
	for _, name := range []string{"unknown", prefix, "", "KNOWN"} {
		wantCode(t, s.RevokeAPIKey(t.Context(), name, at(t0)), licensor.CodeNotFound)
	}
	wantKey(t, "the known key", findKey(t, s, k.Prefix), k)
}

func testAPIKeyTouch(t *testing.T, s licensor.Store) {
	a := createKey(t, s, newKey("a", licensor.ScopeRead))
	b := createKey(t, s, newKey("b", licensor.ScopeRead))
	c := createKey(t, s, newKey("c", licensor.ScopeRead))
	if err := s.TouchAPIKeys(t.Context(), map[int64]int64{}); err != nil {
		t.Fatalf("TouchAPIKeys with nothing: %v", err)
	}
	steps := []struct {
		touch map[int64]int64
		want  map[int64]*int64 // id → LastUsedAt afterwards
	}{
		{map[int64]int64{a.ID: t0, b.ID: t0 + 10}, map[int64]*int64{a.ID: new(t0), b.ID: new(t0 + 10), c.ID: nil}},
		{map[int64]int64{a.ID: t0 - 5, b.ID: t0 + 20}, map[int64]*int64{a.ID: new(t0), b.ID: new(t0 + 20), c.ID: nil}}, // older time ignored
		{map[int64]int64{a.ID: t0}, map[int64]*int64{a.ID: new(t0), b.ID: new(t0 + 20), c.ID: nil}},                    // the same time
		{map[int64]int64{a.ID: t0 + 1, c.ID: t0 - 100}, map[int64]*int64{a.ID: new(t0 + 1), b.ID: new(t0 + 20), c.ID: new(t0 - 100)}},
	}
	for i, st := range steps {
		if err := s.TouchAPIKeys(t.Context(), st.touch); err != nil {
			t.Fatalf("step %d: TouchAPIKeys: %v", i, err)
		}
		for _, k := range []licensor.APIKey{a, b, c} {
			got := findKey(t, s, k.Prefix)
			if !equalPtr(got.LastUsedAt, st.want[k.ID]) {
				t.Errorf("step %d: key %s LastUsedAt: got %s, want %s", i, k.Name, show(got.LastUsedAt), show(st.want[k.ID]))
			}
			want := k
			want.LastUsedAt = st.want[k.ID]
			wantKey(t, "touched key", got, want)
		}
	}
}
