package bearer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"github.com/licensor/licensor/internal/jsonapi"
)

// A token's JOSE header and claims set are decoded strictly, with a walk
// over the JSON tokens instead of encoding/json's struct decoding, which
// matches member names case-insensitively ("SUB", or "ſub", would fill
// "sub"), lets the last of two duplicate members win, and takes a string
// "exp" for a number. Refused, as a malformed token (401 TOKEN_INVALID):
//
//   - a header or claims set that is not one JSON object with nothing
//     after it, or whose strings break the rule of jsonapi.CheckText
//     (invalid UTF-8, NUL, lone surrogates);
//   - a member name twice in the same object, at any depth;
//   - a header with "crit" (RFC 7515 §4.1.11: this server understands no
//     extension, so every critical one is unknown);
//   - a member whose name differs from a name this server reads only in
//     case (or by Unicode case folding): claims iss, sub, aud, exp, nbf,
//     iat, jti, user_flags; header parameters alg, kid, typ, cty, crit;
//   - a claim or header parameter of the wrong type: exp, nbf and iat a
//     JSON number (a NumericDate from 0 to 253402300799, the end of year
//     9999), iss, sub, jti, alg, kid, typ and cty strings, aud a string
//     or an array of strings, user_flags an array of strings (null is
//     none of these);
//   - an object or array nested deeper than maxTokenJSONDepth.
//
// The claims used are exactly those decoded here: the user is the member
// named "sub", byte for byte.

// tokenFormatError says why a token's header or claims set is refused.
type tokenFormatError struct{ msg string }

func (e *tokenFormatError) Error() string { return e.msg }

func formatErr(format string, args ...any) error {
	return &tokenFormatError{msg: fmt.Sprintf(format, args...)}
}

// maxTokenJSONDepth bounds the nesting of objects and arrays in a token's
// header and claims (the request header limit bounds their size).
const maxTokenJSONDepth = 32

// maxNumericDate is 9999-12-31T23:59:59Z in unix seconds.
const maxNumericDate = 253402300799

var (
	tokenClaimNames  = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "user_flags"}
	tokenHeaderNames = []string{"alg", "kid", "typ", "cty", "crit"}
)

// UnmarshalJSON decodes a claims set strictly (see decodeClaims); the jwt
// parser calls it, so its claims are ours.
func (c *Claims) UnmarshalJSON(b []byte) error {
	d, err := decodeClaims(b)
	if err != nil {
		return err
	}
	*c = *d
	return nil
}

// decodeClaims decodes a token's claims set strictly.
func decodeClaims(b []byte) (*Claims, error) {
	c := &Claims{}
	err := walkTokenObject(b, "claims set", tokenClaimNames, func(name string, dec *json.Decoder) error {
		var err error
		switch name {
		case "iss":
			c.Issuer, err = jsonString(dec, name)
		case "sub":
			c.Subject, err = jsonString(dec, name)
		case "jti":
			c.ID, err = jsonString(dec, name)
		case "aud":
			c.Audience, err = jsonStrings(dec, name, true)
		case "user_flags":
			c.UserFlags, err = jsonStrings(dec, name, false)
		case "exp":
			c.ExpiresAt, err = jsonNumericDate(dec, name)
		case "nbf":
			c.NotBefore, err = jsonNumericDate(dec, name)
		case "iat":
			c.IssuedAt, err = jsonNumericDate(dec, name)
		default:
			return skipJSONValue(dec, name, 1)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// checkTokenHeader checks a token's JOSE header strictly; the jwt parser
// then reads alg and kid from it.
func checkTokenHeader(b []byte) error {
	return walkTokenObject(b, "header", tokenHeaderNames, func(name string, dec *json.Decoder) error {
		switch name {
		case "crit":
			return formatErr(`the header has "crit": this server understands no JWS extension (RFC 7515 §4.1.11)`)
		case "alg", "kid", "typ", "cty":
			_, err := jsonString(dec, name)
			return err
		}
		return skipJSONValue(dec, name, 1)
	})
}

// walkTokenObject walks b, which must be one JSON object, calling member
// for each member after checking its name: not seen before and, when it
// folds to one of known, exactly that name. member must consume the value.
func walkTokenObject(b []byte, what string, known []string, member func(string, *json.Decoder) error) error {
	if !utf8.Valid(b) {
		return formatErr("the %s is not UTF-8", what)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return formatErr("the %s is not a JSON object", what)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return formatErr("the %s is not JSON", what)
		}
		name, ok := t.(string) // the decoder returns a member name here
		if !ok {
			return formatErr("the %s is not JSON", what)
		}
		if seen[name] {
			return formatErr("the %s has %s twice", what, quoteName(name))
		}
		seen[name] = true
		for _, k := range known {
			if name != k && strings.EqualFold(name, k) {
				return formatErr("the %s has %s, not %q: names are case-sensitive", what, quoteName(name), k)
			}
		}
		if err := member(name, dec); err != nil {
			return err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return formatErr("the %s is not JSON", what)
	}
	if _, err := dec.Token(); err != io.EOF {
		return formatErr("the %s has data after its object", what)
	}
	// The walk above proved b one JSON value; now its strings.
	if e := jsonapi.CheckText(b); e != nil {
		return formatErr("the %s has a string (at %q) that is not valid UTF-8 text, or holds NUL or a lone surrogate", what, e.Pointer)
	}
	return nil
}

// skipJSONValue consumes the value of member name (at depth, the top
// object's members being at 1), refusing duplicate member names in nested
// objects, nesting deeper than maxTokenJSONDepth and numbers beyond a
// float64 (which encoding/json refuses). It keeps its own
// stack: a deep value costs no goroutine stack.
func skipJSONValue(dec *json.Decoder, name string, depth int) error {
	type open struct {
		names   map[string]bool // of an object; nil for an array
		wantKey bool            // an object's next token is a name or its '}'
	}
	var stack []open
	for {
		t, err := dec.Token()
		if err != nil {
			return formatErr("%s is not JSON", quoteName(name))
		}
		if n := len(stack); n > 0 && stack[n-1].wantKey {
			if key, ok := t.(string); ok {
				if stack[n-1].names[key] {
					return formatErr("%s has a member %s twice", quoteName(name), quoteName(key))
				}
				stack[n-1].names[key] = true
				stack[n-1].wantKey = false
				continue
			}
		}
		if n, ok := t.(json.Number); ok {
			// encoding/json, which reads the claims after this walk (as
			// the jwt library does), refuses a number beyond float64.
			if _, err := n.Float64(); err != nil {
				return formatErr("%s holds a number beyond the range of a float64", quoteName(name))
			}
		}
		switch t {
		case json.Delim('{'), json.Delim('['):
			if depth+len(stack) >= maxTokenJSONDepth {
				return formatErr("%s nests deeper than %d levels", quoteName(name), maxTokenJSONDepth)
			}
			if t == json.Delim('{') {
				stack = append(stack, open{names: map[string]bool{}, wantKey: true})
			} else {
				stack = append(stack, open{})
			}
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value has ended: a scalar, or the container just closed.
		if len(stack) == 0 {
			return nil
		}
		if top := &stack[len(stack)-1]; top.names != nil {
			top.wantKey = true
		}
	}
}

func jsonString(dec *json.Decoder, name string) (string, error) {
	t, err := dec.Token()
	s, ok := t.(string)
	if err != nil || !ok {
		return "", formatErr("%q must be a string", name)
	}
	return s, nil
}

// jsonStrings reads an array of strings, or with one also a single string.
func jsonStrings(dec *json.Decoder, name string, one bool) ([]string, error) {
	bad := formatErr("%q must be an array of strings", name)
	if one {
		bad = formatErr("%q must be a string or an array of strings", name)
	}
	t, err := dec.Token()
	if err != nil {
		return nil, bad
	}
	if s, ok := t.(string); ok && one {
		return []string{s}, nil
	}
	if t != json.Delim('[') {
		return nil, bad
	}
	out := []string{}
	for dec.More() {
		t, err := dec.Token()
		s, ok := t.(string)
		if err != nil || !ok {
			return nil, bad
		}
		out = append(out, s)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim(']') {
		return nil, bad
	}
	return out, nil
}

// jsonNumericDate reads a NumericDate (RFC 7519 §2): a JSON number of
// seconds, possibly fractional, here from 0 to maxNumericDate.
func jsonNumericDate(dec *json.Decoder, name string) (*jwt.NumericDate, error) {
	t, err := dec.Token()
	n, ok := t.(json.Number)
	if err != nil || !ok {
		return nil, formatErr("%q must be a number (a NumericDate)", name)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil || !(f >= 0 && f <= maxNumericDate) {
		return nil, formatErr("%q must be a NumericDate from 0 to %d", name, maxNumericDate)
	}
	sec, frac := math.Modf(f)
	return jwt.NewNumericDate(time.Unix(int64(sec), int64(frac*1e9))), nil
}

// quoteName quotes a member name for an error detail, cut to 40 bytes.
func quoteName(s string) string {
	if len(s) <= 40 {
		return strconv.Quote(s)
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "…"
}

// errTokenFormat reports whether err holds a *tokenFormatError, and it.
func errTokenFormat(err error) (*tokenFormatError, bool) {
	var fe *tokenFormatError
	ok := errors.As(err, &fe)
	return fe, ok
}
