package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// signRaw signs a token whose header and claims are exactly the given
// JSON texts, as an issuer with a careless (or hostile) encoder would.
func signRaw(t *testing.T, m jwt.SigningMethod, key any, header, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	signing := b64([]byte(header)) + "." + b64([]byte(payload))
	sig, err := m.Sign(signing, key)
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

// TestEndUserTokenStrictClaims: a token's header and claims are decoded
// strictly. Every token here is signed with a key the server trusts; the
// defective ones were accepted before (most of them with 200, some as
// another user or with another code) and are 401 TOKEN_INVALID, each
// with WWW-Authenticate: Bearer.
func TestEndUserTokenStrictClaims(t *testing.T) {
	en := newEnv(t, engines(t)[0], withTokens)
	now := en.clock.Now().Unix()
	future, past := now+3600, now-3600
	p := func(format string) string { // %[1]d: a future exp, %[2]d: a past one, %[3]d: now
		return fmt.Sprintf(format, future, past, now)
	}
	hs := `{"alg":"HS256","typ":"JWT"}`
	type signer struct {
		m   jwt.SigningMethod
		key any
	}
	HS := signer{jwt.SigningMethodHS256, testSecret}
	RS := signer{jwt.SigningMethodRS256, testKeys.rsa}
	ES := signer{jwt.SigningMethodES256, testKeys.ec}

	for _, c := range []struct {
		name            string
		s               signer
		header, payload string
		ok              bool
		detail          string // a part of the refusal's detail
	}{
		// Controls: the same helper, tokens without defects.
		{"control: HS256", HS, hs, p(`{"sub":"41","exp":%[1]d,"iat":%[3]d}`), true, ""},
		{"control: RS256 by kid", RS, `{"alg":"RS256","kid":"rsa-1"}`, p(`{"sub":"41","exp":%[1]d}`), true, ""},
		{"control: ES256 by kid", ES, `{"alg":"ES256","kid":"ec-1","typ":"JWT"}`, p(`{"sub":"41","exp":%[1]d}`), true, ""},
		{"control: other claims, nested, fractional exp, aud array", HS, hs,
			p(`{"sub":"41","exp":%[1]d.5,"nbf":%[3]d,"aud":["a","b"],"user_flags":[],"jti":"j","ext":{"a":[1,{"a":null}],"b":"c"},"subject":1,"Sub2":{}}`), true, ""},
		{"control: an escaped name is that name", HS, hs, p(`{"s\u0075b":"41","exp":%[1]d}`), true, ""},
		{"control: an unknown header parameter", HS, `{"alg":"HS256","x5t":"abc","jku":{"a":1}}`, p(`{"sub":"41","exp":%[1]d}`), true, ""},

		// Duplicate members: encoding/json lets the last win.
		{"sub twice, the last the path's user", HS, hs, p(`{"sub":"42","sub":"41","exp":%[1]d}`), false, `"sub" twice`},
		{"sub twice, the first the path's user", HS, hs, p(`{"sub":"41","sub":"42","exp":%[1]d}`), false, `"sub" twice`},
		{"sub twice, once escaped", HS, hs, p(`{"sub":"42","s\u0075b":"41","exp":%[1]d}`), false, `"sub" twice`},
		{"exp twice, past then future", HS, hs, p(`{"sub":"41","exp":%[2]d,"exp":%[1]d}`), false, `"exp" twice`},
		{"a duplicate inside another claim", HS, hs, p(`{"sub":"41","exp":%[1]d,"ext":{"a":1,"b":[{"c":1,"c":2}]}}`), false, `member "c" twice`},
		{"RS256: sub twice", RS, `{"alg":"RS256","kid":"rsa-1"}`, p(`{"sub":"42","sub":"41","exp":%[1]d}`), false, `"sub" twice`},

		// Case variants: encoding/json matches struct fields case-insensitively.
		{"SUB instead of sub", HS, hs, p(`{"SUB":"41","exp":%[1]d}`), false, `"SUB", not "sub"`},
		{"Sub instead of sub", HS, hs, p(`{"Sub":"41","exp":%[1]d}`), false, `"Sub", not "sub"`},
		{"SUB after sub (SUB won)", HS, hs, p(`{"sub":"42","SUB":"41","exp":%[1]d}`), false, `"SUB", not "sub"`},
		{"ſub (U+017F folds to s)", HS, hs, p(`{"ſub":"41","exp":%[1]d}`), false, `not "sub"`},
		{"Exp instead of exp", HS, hs, p(`{"sub":"41","Exp":%[1]d}`), false, `"Exp", not "exp"`},
		{"EXP after an expired exp", HS, hs, p(`{"sub":"41","exp":%[2]d,"EXP":%[1]d}`), false, `"EXP", not "exp"`},
		{"USER_FLAGS", HS, hs, p(`{"sub":"41","exp":%[1]d,"USER_FLAGS":["LICENSE_PURCHASE_RESTRICTED"]}`), false, `not "user_flags"`},
		{"ES256: SUB", ES, `{"alg":"ES256","kid":"ec-1"}`, p(`{"SUB":"41","exp":%[1]d}`), false, `"SUB", not "sub"`},

		// Types: a NumericDate is a JSON number.
		{"exp a string", HS, hs, p(`{"sub":"41","exp":"%[1]d"}`), false, `"exp" must be a number`},
		{"nbf a string", HS, hs, p(`{"sub":"41","exp":%[1]d,"nbf":"%[3]d"}`), false, `"nbf" must be a number`},
		{"iat a string", HS, hs, p(`{"sub":"41","exp":%[1]d,"iat":"%[3]d"}`), false, `"iat" must be a number`},
		{"exp beyond year 9999", HS, hs, `{"sub":"41","exp":1e20}`, false, `"exp" must be a NumericDate from 0`},
		{"user_flags null", HS, hs, p(`{"sub":"41","exp":%[1]d,"user_flags":null}`), false, `"user_flags" must be an array of strings`},
		{"aud null", HS, hs, p(`{"sub":"41","exp":%[1]d,"aud":null}`), false, `"aud" must be a string or an array of strings`},

		// Text: the rule of every other decoded string.
		{"invalid UTF-8 in a claim", HS, hs, p("{\"sub\":\"41\",\"exp\":%[1]d,\"note\":\"\xff\"}"), false, "not UTF-8"},
		{"a lone surrogate in a claim", HS, hs, p(`{"sub":"41","exp":%[1]d,"note":"\ud800"}`), false, `at "/note"`},

		// The header.
		{"crit naming a registered claim", HS, `{"alg":"HS256","crit":["exp"]}`, p(`{"sub":"41","exp":%[1]d}`), false, `"crit"`},
		{"crit naming an extension", HS, `{"alg":"HS256","crit":["x-ext"],"x-ext":true}`, p(`{"sub":"41","exp":%[1]d}`), false, `"crit"`},
		{"Crit", HS, `{"alg":"HS256","Crit":["x-ext"],"x-ext":true}`, p(`{"sub":"41","exp":%[1]d}`), false, `not "crit"`},
		{"ES256: crit", ES, `{"alg":"ES256","kid":"ec-1","crit":["b64"],"b64":false}`, p(`{"sub":"41","exp":%[1]d}`), false, `"crit"`},
		{"alg twice, none first", HS, `{"alg":"none","alg":"HS256"}`, p(`{"sub":"41","exp":%[1]d}`), false, `"alg" twice`},
		{"ALG beside alg", HS, `{"ALG":"none","alg":"HS256"}`, p(`{"sub":"41","exp":%[1]d}`), false, `"ALG", not "alg"`},
		{"kid twice", RS, `{"alg":"RS256","kid":"rsa-2","kid":"rsa-1"}`, p(`{"sub":"41","exp":%[1]d}`), false, `"kid" twice`},
		{"kid a number", RS, `{"alg":"RS256","kid":1}`, p(`{"sub":"41","exp":%[1]d}`), false, `"kid" must be a string`},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := signRaw(t, c.s.m, c.s.key, c.header, c.payload)
			resp := en.do(req{method: "GET", path: userBase + "/users/41/licenses", key: "-", header: bearerHeader(tok)})
			if c.ok {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d, want 200: %s", resp.StatusCode, resp.body)
				}
				return
			}
			if resp.StatusCode != 401 {
				t.Fatalf("status %d, want 401: %s", resp.StatusCode, resp.body)
			}
			if got := resp.errorCodes(t); !slices.Equal(got, []string{"TOKEN_INVALID"}) {
				t.Errorf("codes %v, want TOKEN_INVALID", got)
			}
			if got, want := resp.Header.Get("WWW-Authenticate"), `Bearer realm="licensor", error="invalid_token"`; got != want {
				t.Errorf("WWW-Authenticate = %q, want %q", got, want)
			}
			var doc struct {
				Errors []struct{ Detail string }
			}
			if err := json.Unmarshal(resp.body, &doc); err != nil || len(doc.Errors) != 1 {
				t.Fatalf("error document: %s", resp.body)
			}
			if d := doc.Errors[0].Detail; !strings.Contains(d, c.detail) || !strings.HasPrefix(d, "the token is malformed: ") {
				t.Errorf("detail %q, want the token is malformed: ...%s...", d, c.detail)
			}
		})
	}
}
