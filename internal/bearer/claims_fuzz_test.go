package bearer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
)

// FuzzClaims fuzzes the strict decoding of a token's header and claims
// (claims.go) and the verifier around it; seeds in testdata/fuzz/FuzzClaims.
//
//	go test -run='^$' -fuzz='^FuzzClaims$' -fuzztime=10s ./internal/bearer
//
// Properties: a refusal is a *tokenFormatError with a short detail; what
// is accepted is one JSON object of valid UTF-8 whose known members are
// of their types, spelled exactly, and read the same by encoding/json
// (which matches names case-insensitively and lets the last duplicate
// win, so agreement means neither happened); a token signed with the
// server's secret is accepted by the verifier only when both parts are,
// with the claims decoded here, and refused with a 401 otherwise.
func FuzzClaims(f *testing.F) {
	const now = 1700000000
	for _, s := range [][2]string{
		{`{"alg":"HS256","typ":"JWT"}`, `{"sub":"41","exp":1700003600,"iat":1700000000}`},
		{`{"alg":"HS256","kid":"k"}`, `{"sub":"41","exp":1700003600.25,"nbf":1e9,"aud":["a","b"],"iss":"i","jti":"j","user_flags":["LICENSE_PURCHASE_RESTRICTED"]}`},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":1700003600,"aud":"licensor","ext":{"a":[1,{"b":null}],"c":true}}`},
		{`{"alg":"HS256"}`, `{"s\u0075b":"41","exp":1700003600}`},
		{`{"alg":"HS256"}`, `{"sub":"42","sub":"41","exp":1700003600}`},
		{`{"alg":"HS256"}`, `{"sub":"42","SUB":"41","exp":1700003600}`},
		{`{"alg":"HS256"}`, `{"ſub":"41","Exp":1700003600}`},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":"1700003600"}`},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":1e400,"nbf":-1}`},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":1700003600,"x":{"a":1,"a":2}}`},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":1700003600,"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`},
		{`{"alg":"HS256"}`, "{\"sub\":\"41\",\"exp\":1700003600,\"n\":\"\xff\\ud800\"}"},
		{`{"alg":"HS256"}`, `{"sub":"41","exp":1700003600} {}`},
		{`{"alg":"HS256"}`, `["sub","41"]`},
		{`{"alg":"HS256","crit":["exp"]}`, `{"sub":"41","exp":1700003600}`},
		{`{"alg":"none","alg":"HS256"}`, `{"sub":"41","exp":1700003600}`},
		{`{"ALG":"none","alg":"HS256","Kid":1}`, `{"sub":"41","exp":1700003600}`},
	} {
		f.Add([]byte(s[0]), []byte(s[1]))
	}
	secret := []byte("0123456789abcdef0123456789abcdef-fuzz")
	v, err := New(Options{HS256Secret: secret}, func() time.Time { return time.Unix(now, 0) })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		headerErr := checkTokenHeader(header)
		checkFormatError(t, headerErr)
		if headerErr == nil {
			checkAcceptedHeader(t, header)
		}
		claims, claimsErr := decodeClaims(payload)
		checkFormatError(t, claimsErr)
		if claimsErr == nil {
			checkAcceptedClaims(t, payload, claims)
		}

		// Through the verifier, signed with its secret.
		b64 := base64.RawURLEncoding.EncodeToString
		signing := b64(header) + "." + b64(payload)
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(signing))
		got, err := v.Verify(signing + "." + b64(mac.Sum(nil)))
		if err != nil {
			var le *licensor.Error
			if !errors.As(err, &le) || status(le) != http.StatusUnauthorized {
				t.Fatalf("Verify: %v is not a 401 *licensor.Error", err)
			}
			if (headerErr != nil || claimsErr != nil) && le.Code != licensor.CodeTokenInvalid {
				t.Fatalf("a refused header (%v) or claims set (%v) answered %s", headerErr, claimsErr, le.Code)
			}
			return
		}
		if headerErr != nil || claimsErr != nil {
			t.Fatalf("Verify accepted a token whose header (%v) or claims (%v) were refused", headerErr, claimsErr)
		}
		if got.Subject != claims.Subject || !licensor.ValidUserID(got.Subject) || !slices.Equal(got.UserFlags, claims.UserFlags) ||
			!sameDate(got.ExpiresAt, claims.ExpiresAt) || got.ExpiresAt == nil {
			t.Fatalf("Verify's claims %+v differ from the decoder's %+v", got, claims)
		}
	})
}

// status is the HTTP status the API answers err with.
func status(err error) int {
	s, _ := jsonapi.ErrorResponse(err)
	return s
}

// checkFormatError fails unless err is nil or a *tokenFormatError with a
// short detail.
func checkFormatError(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	fe, ok := errTokenFormat(err)
	if !ok {
		t.Fatalf("error %T %v is not a *tokenFormatError", err, err)
	}
	if fe.msg == "" || len(fe.msg) > 200 || !utf8.ValidString(fe.msg) {
		t.Fatalf("detail %q: empty, longer than 200 bytes or not UTF-8", fe.msg)
	}
}

// decodedObject decodes an accepted part with encoding/json, exact keys.
func decodedObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	if !utf8.Valid(b) || !json.Valid(b) || jsonapi.CheckText(b) != nil {
		t.Fatalf("accepted %q: not valid JSON text", b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		t.Fatalf("accepted %q: not an object: %v", b, err)
	}
	// No duplicate member at any depth: the text has as many member
	// names as the decoded objects hold.
	if inText, decoded := textMembers(t, b), decodedMembers(m); inText != decoded {
		t.Fatalf("accepted %q: %d member names in the text, %d decoded: a duplicate", b, inText, decoded)
	}
	return m
}

// textMembers counts the member names of every object in b, a valid
// JSON text, keeping no set of them.
func textMembers(t *testing.T, b []byte) int {
	t.Helper()
	type open struct{ object, wantName bool }
	dec := json.NewDecoder(strings.NewReader(string(b)))
	var stack []open
	n := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		if k := len(stack) - 1; k >= 0 && stack[k].wantName {
			if _, ok := tok.(string); ok {
				n++
				stack[k].wantName = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, open{object: true, wantName: true})
			continue
		case json.Delim('['):
			stack = append(stack, open{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		if k := len(stack) - 1; k >= 0 && stack[k].object {
			stack[k].wantName = true // a member's value ended
		}
	}
}

// decodedMembers counts the members of every object in v.
func decodedMembers(v any) int {
	n := 0
	switch v := v.(type) {
	case map[string]any:
		n += len(v)
		for _, e := range v {
			n += decodedMembers(e)
		}
	case []any:
		for _, e := range v {
			n += decodedMembers(e)
		}
	}
	return n
}

// checkFoldedNames fails if a member of m is a case variant of a known name.
func checkFoldedNames(t *testing.T, m map[string]any, known []string) {
	t.Helper()
	for name := range m {
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				t.Fatalf("accepted %q beside the known name %q", name, k)
			}
		}
	}
}

func checkAcceptedHeader(t *testing.T, header []byte) {
	m := decodedObject(t, header)
	checkFoldedNames(t, m, tokenHeaderNames)
	if _, ok := m["crit"]; ok {
		t.Fatalf("accepted a header with crit: %q", header)
	}
	for _, name := range []string{"alg", "kid", "typ", "cty"} {
		if v, ok := m[name]; ok {
			if _, ok := v.(string); !ok {
				t.Fatalf("accepted %s = %v, not a string", name, v)
			}
		}
	}
}

func checkAcceptedClaims(t *testing.T, payload []byte, c *Claims) {
	m := decodedObject(t, payload)
	checkFoldedNames(t, m, tokenClaimNames)
	for _, name := range []string{"exp", "nbf", "iat"} {
		if v, ok := m[name]; ok {
			if f, ok := v.(float64); !ok || f < 0 || f > maxNumericDate {
				t.Fatalf("accepted %s = %v", name, v)
			}
		}
	}
	// encoding/json as the jwt library reads claims: case-insensitive
	// names, the last duplicate winning. It must read what we read.
	var lib struct {
		jwt.RegisteredClaims
		UserFlags []string `json:"user_flags"`
	}
	if err := json.Unmarshal(payload, &lib); err != nil {
		t.Fatalf("accepted %q, which encoding/json refuses: %v", payload, err)
	}
	r := lib.RegisteredClaims
	if r.Subject != c.Subject || r.Issuer != c.Issuer || r.ID != c.ID || !slices.Equal(r.Audience, c.Audience) ||
		!slices.Equal(lib.UserFlags, c.UserFlags) ||
		!sameDate(r.ExpiresAt, c.ExpiresAt) || !sameDate(r.NotBefore, c.NotBefore) || !sameDate(r.IssuedAt, c.IssuedAt) {
		t.Fatalf("for %q encoding/json reads %+v, the strict decoder %+v", payload, lib, c)
	}
	if s, _ := m["sub"].(string); s != c.Subject {
		t.Fatalf("sub %q, decoded %q", m["sub"], c.Subject)
	}
}

func sameDate(a, b *jwt.NumericDate) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b.Time)
}
