package licensor

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// Scope is what an API key may do.
type Scope string

// Scopes. A read key may use the routes that only read (the GET routes and
// the bulk entitlement check); a write key everything.
const (
	ScopeRead  Scope = "read"
	ScopeWrite Scope = "write"
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeRead || s == ScopeWrite }

// Covers reports whether a key of scope s may use a route that needs scope
// need: a write key may do everything, a read key only what reads.
func (s Scope) Covers(need Scope) bool {
	switch s {
	case ScopeWrite:
		return need == ScopeRead || need == ScopeWrite
	case ScopeRead:
		return need == ScopeRead
	}
	return false
}

// APIKey is an operator's credential. The secret itself is never stored:
// only its SHA-256 hash (keys are 160 random bits, so a fast hash is safe).
type APIKey struct {
	ID     int64
	Name   string
	Prefix string // public, unique lookup part of the key ("lk_ab12cd34")
	Hash   []byte // SHA-256 of the whole key
	Scope  Scope
	// Networks are the client networks the key may be used from; empty
	// means anywhere.
	Networks  []netip.Prefix
	ExpiresAt *int64
	CreatedAt int64
	// RevokedAt is when the key stops working; a time in the future is the
	// end of a rotation's grace period.
	RevokedAt  *int64
	LastUsedAt *int64
}

// Allows reports whether a request from addr may use the key.
func (k *APIKey) AllowsAddr(addr netip.Addr) bool {
	if len(k.Networks) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, n := range k.Networks {
		if n.Contains(addr) {
			return true
		}
	}
	return false
}

// Matches compares secret with the stored hash in constant time.
func (k *APIKey) Matches(secret string) bool {
	// Copied to the stack: a conversion of a string longer than 32 bytes
	// (a key is 44) would allocate, on every request.
	var buf [64]byte
	h := sha256.Sum256(append(buf[:0], secret...))
	return subtle.ConstantTimeCompare(h[:], k.Hash) == 1
}

// Usable returns nil when the key may be used at unix time now, or the
// *Error saying why not.
func (k *APIKey) Usable(now int64) error {
	if k.RevokedAt != nil && *k.RevokedAt <= now {
		return Errorf(CodeAPIKeyRevoked, "the API key was revoked")
	}
	if k.ExpiresAt != nil && *k.ExpiresAt <= now {
		return Errorf(CodeAPIKeyExpired, "the API key has expired")
	}
	return nil
}

var (
	keyEncoding    = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)
	keyPattern     = regexp.MustCompile(`^lk_([a-z2-7]{8})_([a-z2-7]{32})$`)
	keyNamePattern = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,64}$`)
)

// ValidKeyName reports whether name is a usable API key name.
func ValidKeyName(name string) bool { return keyNamePattern.MatchString(name) }

// NewAPIKeySecret generates a key "lk_<8 chars>_<32 chars>" and returns it
// with its public prefix and hash.
func NewAPIKeySecret() (secret, prefix string, hash []byte) {
	var b [25]byte // 5 bytes of prefix (8 chars), 20 bytes of secret (32 chars)
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	prefix = "lk_" + keyEncoding.EncodeToString(b[:5])
	secret = prefix + "_" + keyEncoding.EncodeToString(b[5:])
	h := sha256.Sum256([]byte(secret))
	return secret, prefix, h[:]
}

// APIKeyPrefix returns the public prefix of a presented key, or false when
// the key is not shaped like one of ours.
func APIKeyPrefix(key string) (string, bool) {
	m := keyPattern.FindStringSubmatch(strings.TrimSpace(key))
	if m == nil {
		return "", false
	}
	return "lk_" + m[1], true
}

// FormatNetworks is the text form in which stores keep a key's networks:
// "10.0.0.0/8,2001:db8::/32".
func FormatNetworks(ns []netip.Prefix) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

// ParseNetworks reads FormatNetworks' text.
func ParseNetworks(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	ns := make([]netip.Prefix, len(parts))
	for i, p := range parts {
		n, err := netip.ParsePrefix(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("decode networks: %w", err)
		}
		ns[i] = n
	}
	return ns, nil
}
