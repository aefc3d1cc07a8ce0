package bearer_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/licensor/licensor/internal/bearer"
)

// TestCheck: a configuration is usable when its secret is long enough and
// its JWKS holds public signature keys the server accepts.
func TestCheck(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := ecKey.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(rsaKey.N.Bytes()), "e": b64(big.NewInt(int64(rsaKey.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:])},
		{"kty": "OKP", "kid": "ignored", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	}})
	for _, c := range []struct {
		name string
		o    bearer.Options
		ok   bool
	}{
		{"none", bearer.Options{}, true},
		{"secret", bearer.Options{HS256Secret: []byte(strings.Repeat("s", bearer.MinHS256SecretLen))}, true},
		{"short secret", bearer.Options{HS256Secret: []byte("short")}, false},
		{"jwks", bearer.Options{JWKS: jwks}, true},
		{"not JSON", bearer.Options{JWKS: []byte("{")}, false},
		{"no usable key", bearer.Options{JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`)}, false},
		{"private key", bearer.Options{JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}]}`)}, false},
		{"short RSA", bearer.Options{JWKS: []byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`)}, false},
		{"EC point off the curve", bearer.Options{JWKS: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("A", 42) + `E"}]}`)}, false},
	} {
		if err := bearer.Check(c.o); (err == nil) != c.ok {
			t.Errorf("%s: Check = %v", c.name, err)
		}
	}
}
