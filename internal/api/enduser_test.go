package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/bearer"
)

const userBase = "/api/license/v4"

// testSecret is the HS256 secret of the test servers.
var testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")

// tokenKeys are the RS256 and ES256 keys of the test servers' JWKS, and
// keys the servers do not know.
type tokenKeys struct {
	rsa, otherRSA *rsa.PrivateKey
	ec, otherEC   *ecdsa.PrivateKey
	jwks          []byte
}

var testKeys = func() *tokenKeys {
	k := &tokenKeys{}
	var err error
	for _, p := range []**rsa.PrivateKey{&k.rsa, &k.otherRSA} {
		if *p, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	}
	for _, p := range []**ecdsa.PrivateKey{&k.ec, &k.otherEC} {
		if *p, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	}
	b64 := base64.RawURLEncoding.EncodeToString
	ecPoint, err := k.ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	k.jwks, _ = json.Marshal(map[string]any{"keys": []map[string]any{
		{"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
			"n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes())},
		{"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(ecPoint[1:33]), "y": b64(ecPoint[33:])},
		{"kty": "OKP", "kid": "ignored", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
	}})
	return k
}()

// withTokens configures a server with the test HS256 secret and JWKS.
func withTokens(o *api.Options) {
	o.EndUser.Tokens = bearer.Options{HS256Secret: testSecret, JWKS: testKeys.jwks}
}

// claims are a token's claims; exp defaults to an hour after the clock.
type claims map[string]any

// token mints an HS256 token for user with extra claims (nil values
// delete a claim).
func (en *env) token(user string, extra claims) string {
	en.t.Helper()
	return en.sign(jwt.SigningMethodHS256, testSecret, "", user, extra)
}

func (en *env) sign(m jwt.SigningMethod, key any, kid, user string, extra claims) string {
	en.t.Helper()
	now := en.clock.Now().Unix()
	c := jwt.MapClaims{"sub": user, "exp": now + 3600, "iat": now}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(m, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		en.t.Fatal(err)
	}
	return s
}

// unsigned builds a token with the given header and claims and a raw
// signature, as an attacker would.
func unsigned(header, payload map[string]any, sig []byte) string {
	h, _ := json.Marshal(header)
	p, _ := json.Marshal(payload)
	b64 := base64.RawURLEncoding.EncodeToString
	return b64(h) + "." + b64(p) + "." + b64(sig)
}

func bearerHeader(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// user sends r as the end user holding tok.
func (en *env) user(tok string, r req) *response {
	en.t.Helper()
	r.key = "-"
	if r.header == nil {
		r.header = map[string]string{}
	}
	r.header["Authorization"] = "Bearer " + tok
	return en.do(r)
}

func (en *env) userMust(want int, tok string, r req) *response {
	en.t.Helper()
	resp := en.user(tok, r)
	if resp.StatusCode != want {
		en.t.Fatalf("%s %s: status %d, want %d; body: %s", r.method, r.path, resp.StatusCode, want, resp.body)
	}
	return resp
}

func TestEndUserTokenAttacks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens, func(o *api.Options) {
			o.EndUser.Tokens.Issuer = "https://login.example"
			o.EndUser.Tokens.Audience = "licensor"
		})
		now := en.clock.Now().Unix()
		good := claims{"iss": "https://login.example", "aud": "licensor"}
		with := func(extra claims) claims {
			out := claims{}
			for k, v := range good {
				out[k] = v
			}
			for k, v := range extra {
				out[k] = v
			}
			return out
		}
		hs := func(extra claims) string { return en.token("41", with(extra)) }
		rs := func(key *rsa.PrivateKey, kid string, extra claims) string {
			return en.sign(jwt.SigningMethodRS256, key, kid, "41", with(extra))
		}
		es := func(key *ecdsa.PrivateKey, kid string, extra claims) string {
			return en.sign(jwt.SigningMethodES256, key, kid, "41", with(extra))
		}
		validPayload := map[string]any{"sub": "41", "exp": now + 3600, "iss": "https://login.example", "aud": "licensor"}
		pubDER, _ := x509.MarshalPKIXPublicKey(&testKeys.rsa.PublicKey)
		confusion := func(secret []byte) string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(validPayload))
			tok.Header["kid"] = "rsa-1"
			s, err := tok.SignedString(secret)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		tampered := func() string {
			parts := strings.Split(hs(nil), ".")
			p, _ := json.Marshal(map[string]any{"sub": "42", "exp": now + 3600, "iss": "https://login.example", "aud": "licensor"})
			parts[1] = base64.RawURLEncoding.EncodeToString(p)
			return strings.Join(parts, ".")
		}
		ps256 := en.sign(jwt.SigningMethodPS256, testKeys.rsa, "rsa-1", "41", good)
		rs512 := en.sign(jwt.SigningMethodRS512, testKeys.rsa, "rsa-1", "41", good)

		for _, c := range []struct {
			name   string
			header map[string]string
			status int
			code   string
		}{
			{"HS256", bearerHeader(hs(nil)), 200, ""},
			{"RS256 by kid", bearerHeader(rs(testKeys.rsa, "rsa-1", nil)), 200, ""},
			{"RS256 without kid", bearerHeader(rs(testKeys.rsa, "", nil)), 200, ""},
			{"ES256 by kid", bearerHeader(es(testKeys.ec, "ec-1", nil)), 200, ""},
			{"ES256 without kid", bearerHeader(es(testKeys.ec, "", nil)), 200, ""},
			{"scheme is case-insensitive", map[string]string{"Authorization": "bearer " + hs(nil)}, 200, ""},

			{"no Authorization", nil, 401, "TOKEN_MISSING"},
			{"an API key is not a token", map[string]string{"Authorization": "Apikey " + en.writeKey}, 401, "TOKEN_MISSING"},
			{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401, "TOKEN_MISSING"},
			{"not a JWT", bearerHeader("not.a.jwt"), 401, "TOKEN_INVALID"},
			{"garbage", bearerHeader("abc"), 401, "TOKEN_INVALID"},
			{"expired", bearerHeader(hs(claims{"exp": now - 1})), 401, "TOKEN_EXPIRED"},
			{"expires now (exp is exclusive)", bearerHeader(hs(claims{"exp": now})), 401, "TOKEN_EXPIRED"},
			{"no exp", bearerHeader(hs(claims{"exp": nil})), 401, "TOKEN_INVALID"},
			{"not yet valid (nbf)", bearerHeader(hs(claims{"nbf": now + 60})), 401, "TOKEN_INVALID"},
			{"issued in the future (iat)", bearerHeader(hs(claims{"iat": now + 60})), 401, "TOKEN_INVALID"},
			{"wrong issuer", bearerHeader(hs(claims{"iss": "https://evil.example"})), 401, "TOKEN_INVALID"},
			{"no issuer", bearerHeader(hs(claims{"iss": nil})), 401, "TOKEN_INVALID"},
			{"wrong audience", bearerHeader(hs(claims{"aud": "other"})), 401, "TOKEN_INVALID"},
			{"no subject", bearerHeader(hs(claims{"sub": nil})), 401, "TOKEN_INVALID"},
			{"badly signed HS256", bearerHeader(en.sign(jwt.SigningMethodHS256, []byte("another-secret-of-32-bytes-or-more!!"), "", "41", good)), 401, "TOKEN_INVALID"},
			{"tampered payload", bearerHeader(tampered()), 401, "TOKEN_INVALID"},
			{"RS256 by an unknown key", bearerHeader(rs(testKeys.otherRSA, "rsa-1", nil)), 401, "TOKEN_INVALID"},
			{"RS256 by an unknown key, no kid", bearerHeader(rs(testKeys.otherRSA, "", nil)), 401, "TOKEN_INVALID"},
			{"RS256 with an unknown kid", bearerHeader(rs(testKeys.rsa, "rsa-2", nil)), 401, "TOKEN_INVALID"},
			{"ES256 by an unknown key", bearerHeader(es(testKeys.otherEC, "ec-1", nil)), 401, "TOKEN_INVALID"},
			{"ES256 naming the RSA key", bearerHeader(es(testKeys.ec, "rsa-1", nil)), 401, "TOKEN_INVALID"},
			{"alg none", bearerHeader(unsigned(map[string]any{"alg": "none", "typ": "JWT"}, validPayload, nil)), 401, "TOKEN_INVALID"},
			{"alg None", bearerHeader(unsigned(map[string]any{"alg": "None"}, validPayload, nil)), 401, "TOKEN_INVALID"},
			{"alg NONE with a signature", bearerHeader(unsigned(map[string]any{"alg": "NONE"}, validPayload, []byte("x"))), 401, "TOKEN_INVALID"},
			{"no alg", bearerHeader(unsigned(map[string]any{"typ": "JWT"}, validPayload, []byte("x"))), 401, "TOKEN_INVALID"},
			{"confusion: HS256 keyed with the RSA public key (DER)", bearerHeader(confusion(pubDER)), 401, "TOKEN_INVALID"},
			{"confusion: HS256 keyed with the RSA modulus", bearerHeader(confusion(testKeys.rsa.N.Bytes())), 401, "TOKEN_INVALID"},
			{"PS256 is not configured", bearerHeader(ps256), 401, "TOKEN_INVALID"},
			{"RS512 is not configured", bearerHeader(rs512), 401, "TOKEN_INVALID"},
			{"another user's token", bearerHeader(en.token("42", good)), 403, "USER_MISMATCH"},
		} {
			t.Run(c.name, func(t *testing.T) {
				resp := en.do(req{method: "GET", path: userBase + "/users/41/licenses", key: "-", header: c.header})
				if resp.StatusCode != c.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, resp.body)
				}
				if c.code != "" {
					if got := resp.errorCodes(t); !slices.Equal(got, []string{c.code}) {
						t.Errorf("codes %v, want %s", got, c.code)
					}
				}
				if c.status == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer", resp.Header.Get("WWW-Authenticate"))
				}
			})
		}

		// Tokens with a subject that is not a user id, on every route.
		for _, path := range []string{"/products", "/users/41/licenses", "/users/41/entitlements"} {
			resp := en.do(req{method: "GET", path: userBase + path, key: "-", header: bearerHeader(en.token("bad/user", good))})
			if resp.StatusCode != 401 {
				t.Errorf("GET %s with a malformed subject: %d", path, resp.StatusCode)
			}
		}
		// The management API refuses tokens, the end-user API API keys.
		en.must(401, req{method: "GET", path: base + "/users/41/licenses", key: "-", header: bearerHeader(hs(nil))})
		en.must(401, req{method: "GET", path: userBase + "/products"})
	})
}

// TestEndUserAlgorithmConfusionJWKSOnly: a server with RSA keys only takes
// no HS256 token, even one "signed" with its public key.
func TestEndUserAlgorithmConfusionJWKSOnly(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, func(o *api.Options) { o.EndUser.Tokens = bearer.Options{JWKS: testKeys.jwks} })
		pubDER, _ := x509.MarshalPKIXPublicKey(&testKeys.rsa.PublicKey)
		for _, secret := range [][]byte{pubDER, testKeys.rsa.N.Bytes(), testKeys.jwks} {
			tok := en.sign(jwt.SigningMethodHS256, secret, "rsa-1", "41", nil)
			resp := en.user(tok, req{method: "GET", path: userBase + "/users/41/licenses"})
			if resp.StatusCode != 401 {
				t.Errorf("an HS256 token keyed with public material: %d %s", resp.StatusCode, resp.body)
			}
		}
		en.userMust(200, en.sign(jwt.SigningMethodRS256, testKeys.rsa, "rsa-1", "41", nil), req{method: "GET", path: userBase + "/users/41/licenses"})
	})
}

// TestEndUserWithoutKeys: a server configured with no token keys refuses
// every token.
func TestEndUserWithoutKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		resp := en.user(en.token("41", nil), req{method: "GET", path: userBase + "/users/41/licenses"})
		if resp.StatusCode != 401 || !slices.Equal(resp.errorCodes(t), []string{"TOKEN_INVALID"}) {
			t.Fatalf("no keys configured: %d %s", resp.StatusCode, resp.body)
		}
	})
}

func TestEndUserProductsAndLicenses(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		now := en.clock.Now().Unix()
		sports := en.createProduct(map[string]any{"title": "Sports", "price_currency_amount": 999, "price_currency_iso4217": "EUR",
			"license_period": "P1M", "is_premium": true})
		hidden := en.createProduct(map[string]any{"title": "Hidden", "is_visible": false})
		notForSale := en.createProduct(map[string]any{"title": "Bundle", "is_buyable": false})
		tok := en.token("41", nil)

		// Only the visible products, in the storefront form.
		resp := en.userMust(200, tok, req{method: "GET", path: userBase + "/products"})
		var ids []string
		for _, p := range resp.json(t)["data"].([]any) {
			ids = append(ids, path(p, "id").(string))
			if path(p, "attributes", "is_visible") != true {
				t.Errorf("an invisible product is listed: %v", p)
			}
			if path(p, "attributes", "created_at") != nil {
				t.Errorf("management attributes leak: %v", p)
			}
		}
		if !slices.Equal(ids, []string{sports, notForSale}) {
			t.Errorf("products %v, want %v", ids, []string{sports, notForSale})
		}
		resp = en.userMust(200, tok, req{method: "GET", path: userBase + "/products?filter[is_buyable]=true&count=true"})
		if n := num(path(resp.json(t), "meta", "total")); n != 1 {
			t.Errorf("buyable visible products: %d", n)
		}
		en.userMust(400, tok, req{method: "GET", path: userBase + "/products?filter[is_visible]=false"})
		en.userMust(400, tok, req{method: "GET", path: userBase + "/products?bogus=1"})

		// An unknown user has no licenses.
		resp = en.userMust(200, tok, req{method: "GET", path: userBase + "/users/41/licenses"})
		if d := resp.json(t)["data"].([]any); len(d) != 0 {
			t.Errorf("licenses of a new user: %v", d)
		}

		// The reduced form: status and dates; products in included, once.
		a := en.createLicense("41", sports, map[string]any{"order_id": "o-1"})
		en.createLicense("41", sports, map[string]any{"start_date": now - 100, "stop_date": now - 10})
		en.createLicense("41", hidden, map[string]any{"status": "SUSPENDED"})
		en.createLicense("42", sports, nil)
		resp = en.userMust(200, tok, req{method: "GET", path: userBase + "/users/41/licenses"})
		doc := resp.json(t)
		data := doc["data"].([]any)
		if len(data) != 3 {
			t.Fatalf("licenses of 41: %d: %s", len(data), resp.body)
		}
		first := data[0]
		if path(first, "id") != path(a, "id") || path(first, "attributes", "status") != "ACTIVE" ||
			num(path(first, "attributes", "start_date")) != now || path(first, "attributes", "stop_date") == nil {
			t.Errorf("first license: %v", first)
		}
		attrs := path(first, "attributes").(map[string]any)
		if len(attrs) != 3 {
			t.Errorf("the end-user license shows more than status and dates: %v", attrs)
		}
		if s := path(data[1], "attributes", "status"); s != "EXPIRED" {
			t.Errorf("past license status %v, want EXPIRED", s)
		}
		var included []string
		for _, p := range doc["included"].([]any) {
			included = append(included, path(p, "id").(string))
		}
		if !slices.Equal(included, []string{sports, hidden}) {
			t.Errorf("included %v, want %v", included, []string{sports, hidden})
		}
		resp = en.userMust(200, tok, req{method: "GET", path: userBase + "/users/41/licenses?filter[status]=ACTIVE&page[size]=1&count=true"})
		doc = resp.json(t)
		if len(doc["data"].([]any)) != 1 || num(path(doc, "meta", "total")) != 1 {
			t.Errorf("filtered: %s", resp.body)
		}
		en.userMust(400, tok, req{method: "GET", path: userBase + "/users/41/licenses?filter[order_id]=o-1"})
		en.userMust(403, tok, req{method: "GET", path: userBase + "/users/42/licenses"})
	})
}

// purchaseBody is a purchase of product with payment method billing.
func purchaseBody(product string) map[string]any {
	return map[string]any{"data": map[string]any{
		"type":          "License",
		"attributes":    map[string]any{"purchase_record": map[string]any{"payment_method": "billing"}},
		"relationships": map[string]any{"product": map[string]any{"data": map[string]any{"type": "Product", "id": product}}},
	}}
}

func idem(key string) map[string]string { return map[string]string{"Idempotency-Key": key} }

var uuidV8 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestPurchase(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		now := en.clock.Now().Unix()
		sports := en.product(map[string]any{"title": "Sports", "price_currency_amount": 999, "price_currency_iso4217": "EUR",
			"license_period": "P1M", "recurring": true, "live": channels("espn")})
		notForSale := en.createProduct(map[string]any{"title": "Bundle", "is_buyable": false})
		hidden := en.createProduct(map[string]any{"title": "Secret", "is_visible": false})
		extra := en.createProduct(map[string]any{"title": "Extra"})
		tok := en.token("41", nil)
		buy := func(tok, key string, body any) *response {
			r := req{method: "POST", path: userBase + "/users/41/licenses", body: body}
			if key != "" {
				r.header = idem(key)
			}
			return en.user(tok, r)
		}
		expect := func(resp *response, status int, code, pointer string) {
			t.Helper()
			if resp.StatusCode != status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.body)
			}
			if code == "" {
				return
			}
			var doc struct {
				Errors []struct {
					Code   string `json:"code"`
					Source struct {
						Pointer string `json:"pointer"`
					} `json:"source"`
				} `json:"errors"`
			}
			_ = json.Unmarshal(resp.body, &doc)
			for _, e := range doc.Errors {
				if e.Code == code && e.Source.Pointer == pointer {
					return
				}
			}
			t.Errorf("no error %s at %q in %s", code, pointer, resp.body)
		}

		// Refusals.
		expect(buy(tok, "", purchaseBody(sports)), 400, "IDEMPOTENCY_KEY_REQUIRED", "")
		expect(buy(en.token("41", claims{"user_flags": []string{"VIP", "LICENSE_PURCHASE_RESTRICTED"}}), "k0", purchaseBody(sports)), 403, "PURCHASE_RESTRICTED", "")
		expect(buy(tok, "k1", purchaseBody(notForSale)), 403, "PRODUCT_NOT_BUYABLE", "/data/relationships/product")
		expect(buy(tok, "k2", purchaseBody("999")), 404, "PRODUCT_NOT_FOUND", "/data/relationships/product")
		// A product the storefront does not show is not for sale, and is
		// answered as unknown: guessing its id finds nothing.
		resp := buy(tok, "k2h", purchaseBody(hidden))
		expect(resp, 404, "PRODUCT_NOT_FOUND", "/data/relationships/product")
		if want := "there is no product " + hidden; !strings.Contains(string(resp.body), want) {
			t.Errorf("an invisible product is answered otherwise than an unknown one: %s", resp.body)
		}
		noMethod := purchaseBody(sports)
		noMethod["data"].(map[string]any)["attributes"] = map[string]any{}
		expect(buy(tok, "k3", noMethod), 400, "MISSING_ATTRIBUTE", "/data/attributes/purchase_record/payment_method")
		card := purchaseBody(sports)
		card["data"].(map[string]any)["attributes"] = map[string]any{"purchase_record": map[string]any{"payment_method": "credit card"}}
		expect(buy(tok, "k4", card), 400, "INVALID_ATTRIBUTE", "/data/attributes/purchase_record/payment_method")
		free := purchaseBody(sports)
		free["data"].(map[string]any)["attributes"] = map[string]any{"start_date": 0, "order_id": "mine",
			"purchase_record": map[string]any{"payment_method": "billing", "price_currency_amount": 0}}
		resp = buy(tok, "k5", free)
		expect(resp, 400, "INVALID_ATTRIBUTE", "/data/attributes/start_date")
		expect(resp, 400, "INVALID_ATTRIBUTE", "/data/attributes/order_id")
		expect(resp, 400, "INVALID_ATTRIBUTE", "/data/attributes/purchase_record/price_currency_amount")
		typo := purchaseBody(sports)
		typo["data"].(map[string]any)["attributes"].(map[string]any)["purchase_recrod"] = map[string]any{}
		expect(buy(tok, "k6", typo), 400, "UNKNOWN_ATTRIBUTE", "/data/attributes/purchase_recrod")
		forOther := purchaseBody(sports)
		forOther["data"].(map[string]any)["relationships"].(map[string]any)["user"] = map[string]any{"data": map[string]any{"type": "User", "id": "42"}}
		expect(buy(tok, "k7", forOther), 403, "USER_MISMATCH", "/data/relationships/user/data/id")
		expect(en.user(en.token("42", nil), req{method: "POST", path: userBase + "/users/41/licenses", body: purchaseBody(sports), header: idem("k8")}), 403, "USER_MISMATCH", "")
		expect(buy(tok, "k9", `{"data":`), 400, "MALFORMED_JSON", "")
		if resp := en.must(200, req{method: "GET", path: base + "/licenses?filter[user_id]=41&count=true"}); num(path(resp.json(t), "meta", "total")) != 0 {
			t.Fatalf("a refused purchase wrote a license: %s", resp.body)
		}

		// Not yet entitled; the purchase entitles at once.
		check := func() bool {
			resp := en.must(200, req{method: "POST", path: base + "/entitlements/check", key: en.readKey, body: map[string]any{"data": []any{
				map[string]any{"type": "EntitlementCheck", "attributes": map[string]any{"user_id": "41", "channel_id": "espn", "service": "live"}}}}})
			return path(resp.json(t), "data", 0, "attributes", "entitled") == true
		}
		if check() {
			t.Fatal("entitled before buying")
		}
		first := buy(tok, "order-1", purchaseBody(sports))
		expect(first, 201, "", "")
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Error("the first response says it is replayed")
		}
		lic := first.json(t)
		id := path(lic, "data", "id").(string)
		wantStop := time.Unix(now, 0).UTC().AddDate(0, 1, 0).Unix()
		if path(lic, "data", "attributes", "status") != "ACTIVE" || num(path(lic, "data", "attributes", "start_date")) != now ||
			num(path(lic, "data", "attributes", "stop_date")) != wantStop {
			t.Errorf("purchase: %s", first.body)
		}
		if path(lic, "included", 0, "id") != sports {
			t.Errorf("included: %s", first.body)
		}
		if !check() {
			t.Error("not entitled right after buying (the cache is stale towards this instance's write)")
		}

		// The license in the management API: the product's defaults,
		// billing, a server-made order_id.
		m := en.must(200, req{method: "GET", path: base + "/licenses/" + id}).json(t)
		attrs := path(m, "data", "attributes")
		order, _ := path(attrs, "order_id").(string)
		if !uuidV8.MatchString(order) {
			t.Errorf("order_id %q is not a version 8 UUID", order)
		}
		for _, c := range []struct{ got, want any }{
			{path(attrs, "purchase_record", "payment_method"), "billing"},
			{num(path(attrs, "purchase_record", "price_currency_amount")), int64(999)},
			{path(attrs, "purchase_record", "price_currency_iso4217"), "EUR"},
			{path(attrs, "renew_record", "recurring"), true},
			{num(path(attrs, "renew_record", "expiry_date")), wantStop},
			{path(m, "data", "relationships", "user", "data", "id"), "41"},
		} {
			if c.got != c.want {
				t.Errorf("management view: %v, want %v", c.got, c.want)
			}
		}

		// A retry replays; the same key for another request is refused; a
		// new key buys again (the docs warn that nothing stops that).
		again := buy(tok, "order-1", purchaseBody(sports))
		expect(again, 201, "", "")
		if again.Header.Get("Idempotent-Replayed") != "true" || string(again.body) != string(first.body) {
			t.Errorf("replay: %s %s", again.Header.Get("Idempotent-Replayed"), again.body)
		}
		expect(buy(tok, "order-1", purchaseBody(extra)), 422, "IDEMPOTENCY_KEY_REUSED", "")
		expect(buy(tok, "order-2", purchaseBody(extra)), 201, "", "")
		expect(buy(tok, "order-3", purchaseBody(sports)), 201, "", "")
		// Keys are the user's own: another user's "order-1" is another purchase.
		other := en.user(en.token("42", nil), req{method: "POST", path: userBase + "/users/42/licenses", body: purchaseBody(sports), header: idem("order-1")})
		expect(other, 201, "", "")
		if other.Header.Get("Idempotent-Replayed") != "" {
			t.Error("another user's purchase replayed user 41's")
		}
		resp = en.must(200, req{method: "GET", path: base + "/licenses?filter[user_id]=41&count=true"})
		if n := num(path(resp.json(t), "meta", "total")); n != 3 {
			t.Errorf("user 41 holds %d licenses, want 3", n)
		}
		// The order id is stable for (user, product, key), so even when the
		// idempotency record is gone, a retry cannot bill twice.
		resp = en.must(200, req{method: "GET", path: base + "/licenses?filter[order_id]=" + order})
		if n := len(resp.json(t)["data"].([]any)); n != 1 {
			t.Errorf("order %s: %d licenses", order, n)
		}
	})
}

// TestPurchaseReplayAfterExpiry: once the idempotency record has expired, a
// retry of the same purchase is refused by its order_id instead of billed.
func TestPurchaseReplayAfterExpiry(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		p := en.createProduct(map[string]any{"title": "Sports"})
		tok := en.token("41", claims{"exp": en.clock.Now().Unix() + 10*86400})
		en.userMust(201, tok, req{method: "POST", path: userBase + "/users/41/licenses", body: purchaseBody(p), header: idem("k")})
		en.clock.Set(en.clock.Now().Add(25 * time.Hour))
		if _, err := en.store.PruneIdempotencyKeys(t.Context(), en.clock.Now().Unix()); err != nil {
			t.Fatal(err)
		}
		resp := en.userMust(409, tok, req{method: "POST", path: userBase + "/users/41/licenses", body: purchaseBody(p), header: idem("k")})
		if codes := resp.errorCodes(t); !slices.Equal(codes, []string{string(licensor.CodeOrderIDConflict)}) {
			t.Errorf("codes %v", codes)
		}
		if strings.Contains(string(resp.body), "pointer") || !strings.Contains(string(resp.body), "existing_id") {
			t.Errorf("conflict: %s", resp.body)
		}
	})
}

// TestStorefrontPageBounded: products with long channel lists end a
// storefront page early, with links.next, so that a page stays near
// api.MaxStorefrontPageBytes however long the lists; following next lists
// every product once.
func TestStorefrontPageBounded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens)
		long := func(prefix string) map[string]any {
			ids := make([]string, licensor.MaxChannelsPerService)
			for i := range ids {
				ids[i] = prefix + "-channel-with-a-long-identifier-" + strconv.Itoa(i)
			}
			return channels(ids...)
		}
		var want []string
		want = append(want, en.createProduct(map[string]any{"title": "Small"}))
		for _, title := range []string{"Big A", "Big B", "Big C"} {
			want = append(want, en.product(map[string]any{"title": title, "live": long(title[4:] + "l"), "catchup": long(title[4:] + "c")}))
		}
		want = append(want, en.createProduct(map[string]any{"title": "Small too"}))

		tok := en.token("41", nil)
		var got []string
		pages := 0
		for next := userBase + "/products?count=true"; next != ""; pages++ {
			resp := en.userMust(200, tok, req{method: "GET", path: next})
			doc := resp.json(t)
			data := doc["data"].([]any)
			if len(data) == 0 {
				t.Fatalf("an empty page before the end: %s", next)
			}
			// At most the budget plus one product (the one that passed it).
			if n := len(resp.body); n > 2*api.MaxStorefrontPageBytes {
				t.Errorf("page %d is %d bytes with %d products", pages, n, len(data))
			}
			if n := num(path(doc, "meta", "total")); n != int64(len(want)) {
				t.Errorf("meta.total %d, want %d", n, len(want))
			}
			t.Logf("page %d: %d products, %d bytes", pages, len(data), len(resp.body))
			for _, p := range data {
				got = append(got, path(p, "id").(string))
				if n := len(path(p, "relationships", "live", "data").([]any)); strings.HasPrefix(path(p, "attributes", "title").(string), "Big") && n != licensor.MaxChannelsPerService {
					t.Errorf("product %v lists %d live channels", path(p, "id"), n)
				}
			}
			next, _ = path(doc, "links", "next").(string)
			if pages > 10 {
				t.Fatal("no end to the pages")
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("products %v, want %v", got, want)
		}
		if pages < 3 {
			t.Errorf("%d products (three of about 1.3 MB) came in %d pages", len(want), pages)
		}
	})
}
