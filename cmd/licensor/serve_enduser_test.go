package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestServeEndUserFlags: bad token configurations stop serve before it
// listens.
func TestServeEndUserFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	short := write("short", "too short\n")
	badJWKS := write("jwks.json", `{"keys":[]}`)
	db := filepath.Join(dir, "x.db")
	for _, c := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"missing secret file", nil, []string{"--jwt-hs256-secret-file", filepath.Join(dir, "none")}, "jwt-hs256-secret-file"},
		{"short secret", nil, []string{"--jwt-hs256-secret-file", short}, "at least 32"},
		{"short secret in the environment", map[string]string{"LICENSOR_JWT_HS256_SECRET": "abc"}, nil, "at least 32"},
		{"JWKS without keys", map[string]string{"LICENSOR_JWT_JWKS_FILE": badJWKS}, nil, "no RS256 or ES256"},
		{"zero TTL", nil, []string{"--entitlement-ttl", "0s"}, "entitlement-ttl"},
		{"zero cache bytes", nil, []string{"--entitlement-cache-bytes", "0"}, "entitlement-cache-bytes"},
	} {
		env := map[string]string{"DATABASE_URL": db}
		for k, v := range c.env {
			env[k] = v
		}
		_, _, err := cli(t, env, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %s", c.name, err, c.want)
		}
	}
}

// TestServeEndUserFlow runs the binary with an HS256 secret file and plays
// the viewer-app flow of the README: browse, buy, play.
func TestServeEndUserFlow(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "licensor.db")
	secret := "an-hs256-secret-of-at-least-32-bytes!"
	secretFile := filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key := createKey(t, db, "bss", "write")
	p := startServer(t, db, "--jwt-hs256-secret-file", secretFile, "--jwt-issuer", "https://login.example")
	call := func(method, path, auth string, body any, header ...string) (int, map[string]any) {
		t.Helper()
		var rd *bytes.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		} else {
			rd = bytes.NewReader(nil)
		}
		req, _ := http.NewRequest(method, p.url+path, rd)
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/vnd.api+json")
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var doc map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&doc)
		return resp.StatusCode, doc
	}
	status, doc := call("POST", "/api/license/management/v4/products", "Apikey "+key, map[string]any{"data": map[string]any{
		"type": "Product", "attributes": map[string]any{"title": "Sports", "price_currency_amount": 999, "price_currency_iso4217": "EUR", "license_period": "P1M"},
		"relationships": map[string]any{"live": map[string]any{"data": []any{map[string]any{"type": "Channel", "id": "espn"}}}}}})
	if status != 201 {
		t.Fatalf("create product: %d %v", status, doc)
	}
	product := doc["data"].(map[string]any)["id"].(string)

	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": "41", "iss": "https://login.example", "exp": time.Now().Add(time.Hour).Unix(),
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := call("GET", "/api/license/v4/products", "Bearer "+tok, nil); status != 200 {
		t.Fatalf("products: %d", status)
	}
	check := func() bool {
		status, doc := call("POST", "/api/license/management/v4/entitlements/check", "Apikey "+key, map[string]any{"data": []any{
			map[string]any{"type": "EntitlementCheck", "attributes": map[string]any{"user_id": "41", "channel_id": "espn", "service": "live"}}}})
		if status != 200 {
			t.Fatalf("check: %d %v", status, doc)
		}
		return doc["data"].([]any)[0].(map[string]any)["attributes"].(map[string]any)["entitled"].(bool)
	}
	if check() {
		t.Fatal("entitled before buying")
	}
	purchase := map[string]any{"data": map[string]any{"type": "License",
		"attributes":    map[string]any{"purchase_record": map[string]any{"payment_method": "billing"}},
		"relationships": map[string]any{"product": map[string]any{"data": map[string]any{"type": "Product", "id": product}}}}}
	if status, doc := call("POST", "/api/license/v4/users/41/licenses", "Bearer "+tok, purchase, "Idempotency-Key", "k-1"); status != 201 {
		t.Fatalf("purchase: %d %v", status, doc)
	}
	if !check() {
		t.Fatal("not entitled after buying")
	}
	if status, _ := call("GET", "/api/license/v4/users/41/entitlements", "Bearer "+tok, nil); status != 200 {
		t.Fatalf("own entitlements: %d", status)
	}
	if status, _ := call("GET", "/api/license/v4/users/42/licenses", "Bearer "+tok, nil); status != 403 {
		t.Fatalf("another user's licenses: %d", status)
	}
}
