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
	// A revoked key keeps its name.
	if err := s.RevokeAPIKey(t.Context(), "ci", at(t0)); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	dup2 := newKey("ci", licensor.ScopeRead)
	wantCode(t, s.CreateAPIKey(t.Context(), &dup2), licensor.CodeConflict)
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
