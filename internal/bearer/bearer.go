// Package bearer verifies the bearer tokens of end users (the End-user
// License API's callers). They are JWTs verified offline, against keys the
// operator configures: an HS256 shared secret, and/or RS256 and ES256
// public keys from a JWKS file. The accepted algorithms are exactly those of the keys
// configured, so "alg": "none" and algorithm confusion (an HS256 token
// "signed" with a public key, an RS256 token presented for an EC key) are
// refused by construction: an HS256 token is only ever checked against the
// shared secret, an RS256 one against RSA keys, an ES256 one against P-256
// keys.
//
// Claims: "sub" is the user id (1 to 64 characters of A-Z a-z 0-9 . _ : -);
// "exp" is required; "nbf" and "iat", when present, must not be in the
// future; "iss" and "aud" must match when the operator configures them;
// "user_flags", an optional array of strings, carries the user's flags
// (LICENSE_PURCHASE_RESTRICTED). Header and claims are decoded strictly
// (claims.go): no duplicate members, no "crit", no case variants of these
// names, NumericDates that are JSON numbers.
package bearer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/licensor/licensor"
)

// Options configure the verification of end-user bearer tokens.
type Options struct {
	// HS256Secret enables HS256 tokens signed with this shared secret (at
	// least 32 bytes).
	HS256Secret []byte
	// JWKS enables RS256 and ES256 tokens: a JSON Web Key Set of RSA (at
	// least 2048 bits) and P-256 EC public keys. A token's "kid" header
	// selects the key; without one, every key of the token's algorithm is
	// tried.
	JWKS []byte
	// Issuer and Audience, when set, must match the token's "iss" and one
	// of its "aud".
	Issuer, Audience string
	// Leeway tolerates clock skew on exp, nbf and iat; default none.
	Leeway time.Duration
}

// MinHS256SecretLen is the shortest HS256 secret accepted (RFC 7518 §3.2:
// at least the size of the hash output).
const MinHS256SecretLen = 32

// UserFlagPurchaseRestricted in a token's user_flags forbids purchases.
const UserFlagPurchaseRestricted = "LICENSE_PURCHASE_RESTRICTED"

// Verifier checks end-user tokens. A nil *Verifier accepts none.
type Verifier struct {
	secret  []byte
	keys    []publicKey
	parser  *jwt.Parser
	methods []string
}

type publicKey struct {
	kid string
	alg string // "RS256" or "ES256"
	key crypto.PublicKey
}

// Claims are the claims read from a token.
type Claims struct {
	jwt.RegisteredClaims
	UserFlags []string `json:"user_flags,omitempty"`
}

// Check reports whether o is a usable configuration (a secret long enough,
// a JWKS that parses), so that the binary can refuse to start with a bad
// one.
func Check(o Options) error {
	_, err := New(o, nil)
	return err
}

// New builds the verifier of o; it returns nil (no end-user
// authentication) when o configures no key.
func New(o Options, now func() time.Time) (*Verifier, error) {
	v := &Verifier{}
	if len(o.HS256Secret) > 0 {
		if len(o.HS256Secret) < MinHS256SecretLen {
			return nil, fmt.Errorf("the HS256 secret has %d bytes; it needs at least %d", len(o.HS256Secret), MinHS256SecretLen)
		}
		v.secret = slices.Clone(o.HS256Secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if len(o.JWKS) > 0 {
		keys, err := parseJWKS(o.JWKS)
		if err != nil {
			return nil, err
		}
		v.keys = keys
		for _, k := range keys {
			if !slices.Contains(v.methods, k.alg) {
				v.methods = append(v.methods, k.alg)
			}
		}
	}
	if len(v.methods) == 0 {
		return nil, nil
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(o.Leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	}
	if o.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(o.Issuer))
	}
	if o.Audience != "" {
		opts = append(opts, jwt.WithAudience(o.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// keyFor picks the keys a token may be verified with: the shared secret
// for HS256, the public keys of the token's algorithm (and kid) otherwise.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, errors.New("HS256 is not configured")
		}
		return v.secret, nil
	}
	kid, hasKid := t.Header["kid"].(string)
	var set jwt.VerificationKeySet
	for _, k := range v.keys {
		if k.alg == alg && (!hasKid || k.kid == kid) {
			set.Keys = append(set.Keys, k.key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no %s key with kid %q", alg, kid)
	}
	return set, nil
}

// Verify checks raw and returns its claims, or a 401 error.
func (v *Verifier) Verify(raw string) (*Claims, error) {
	if v == nil {
		return nil, licensor.Errorf(licensor.CodeTokenInvalid, "this server accepts no end-user tokens: no token keys are configured")
	}
	// The parser reads the header with encoding/json (the last of two
	// "alg" wins, "crit" is ignored): check it strictly first. The claims
	// are decoded strictly by endUserClaims.UnmarshalJSON.
	head, _, _ := strings.Cut(raw, ".")
	header, err := base64.RawURLEncoding.Strict().DecodeString(head)
	if err != nil {
		return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token is malformed")
	}
	if err := checkTokenHeader(header); err != nil {
		return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token is malformed: %v", err)
	}
	var claims Claims
	if _, err := v.parser.ParseWithClaims(raw, &claims, v.keyFor); err != nil {
		if fe, ok := errTokenFormat(err); ok {
			return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token is malformed: %v", fe)
		}
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, licensor.Errorf(licensor.CodeTokenExpired, "the token has expired")
		case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token is not valid yet")
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token lacks a required claim (exp, or iss or aud when configured)")
		case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
			return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token was not issued for this service")
		case errors.Is(err, jwt.ErrTokenMalformed):
			return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token is malformed")
		}
		return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token's signature or algorithm is not accepted")
	}
	if !licensor.ValidUserID(claims.Subject) {
		return nil, licensor.Errorf(licensor.CodeTokenInvalid, "the token's subject (sub) must be a user id")
	}
	return &claims, nil
}

// parseJWKS reads the public keys of a JSON Web Key Set (RFC 7517). Keys
// for encryption ("use": "enc") and of kinds other than RSA and P-256 EC
// are skipped; private key material is refused.
func parseJWKS(b []byte) ([]publicKey, error) {
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	var out []publicKey
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			return nil, fmt.Errorf("parse JWKS: key %d: %w", i, err)
		}
		if k != nil {
			out = append(out, *k)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("parse JWKS: no RS256 or ES256 signature key in the set")
	}
	return out, nil
}

func parseJWK(m map[string]any) (*publicKey, error) {
	str := func(name string) string { s, _ := m[name].(string); return s }
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
		if _, ok := m[private]; ok {
			return nil, fmt.Errorf("it holds private or secret key material (%q): give the server public keys only", private)
		}
	}
	if use := str("use"); use != "" && use != "sig" {
		return nil, nil
	}
	k := &publicKey{kid: str("kid"), alg: str("alg")}
	switch str("kty") {
	case "RSA":
		if k.alg == "" {
			k.alg = "RS256"
		}
		if k.alg != "RS256" {
			return nil, nil
		}
		n, err := b64Int(str("n"))
		if err != nil {
			return nil, fmt.Errorf("n: %w", err)
		}
		e, err := b64Int(str("e"))
		if err != nil {
			return nil, fmt.Errorf("e: %w", err)
		}
		if n.BitLen() < 2048 {
			return nil, fmt.Errorf("an RSA key of %d bits is too short (at least 2048)", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, errors.New("the RSA exponent is not acceptable")
		}
		k.key = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		if k.alg == "" {
			k.alg = "ES256"
		}
		if k.alg != "ES256" || str("crv") != "P-256" {
			return nil, nil
		}
		x, errX := b64Fixed(str("x"), 32)
		y, errY := b64Fixed(str("y"), 32)
		if err := errors.Join(errX, errY); err != nil {
			return nil, err
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return nil, fmt.Errorf("the EC point: %w", err)
		}
		k.key = pub
	default:
		return nil, nil
	}
	return k, nil
}

func b64Int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not a base64url integer")
	}
	return new(big.Int).SetBytes(b), nil
}

func b64Fixed(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != n {
		return nil, fmt.Errorf("a coordinate must be %d bytes of base64url", n)
	}
	return b, nil
}

// Token returns the token of an Authorization: Bearer header.
func Token(r *http.Request) (string, bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
