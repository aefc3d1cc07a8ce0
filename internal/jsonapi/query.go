package jsonapi

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// queryTextDetail is the detail of a parameter that breaks the text rule.
const queryTextDetail = "query parameter names and values must be valid UTF-8 without NUL (%00) characters"

// Query reads the query parameters of one request: every parameter must be
// read by the handler (or it is reported as unknown) and may appear once.
type Query struct {
	values url.Values
	seen   map[string]bool
	errs   licensor.Errors
}

// NewQuery parses the query string of u. A name or value that breaks the
// text rule is reported at once and is then absent.
func NewQuery(u *url.URL) *Query {
	q := &Query{}
	if u.RawQuery == "" {
		return q // nothing to parse, nothing to report as unknown
	}
	values, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		q.errs = append(q.errs, &licensor.Error{Code: licensor.CodeInvalidParameter, Detail: "the query string is malformed"})
	}
	q.values, q.seen = values, map[string]bool{}
	// The one rule for strings (licensor.ValidText), for every name and
	// value: %00 or %FF is refused here, and the parameter is then absent
	// for the handler.
	var bad []string
	for k, vs := range values {
		ok := licensor.ValidText(k)
		for _, v := range vs {
			ok = ok && licensor.ValidText(v)
		}
		if !ok {
			bad = append(bad, k)
		}
	}
	slices.Sort(bad)
	for _, k := range bad {
		delete(values, k)
		q.Fail(licensor.CodeInvalidParameter, textParameter(k), "%s", queryTextDetail)
	}
	return q
}

// Fail reports a problem with the parameter param.
func (q *Query) Fail(code licensor.Code, param, format string, args ...any) {
	e := licensor.Errorf(code, format, args...)
	e.Parameter = param
	q.errs = append(q.errs, e)
}

// Has reports whether the query names the parameter, without reading it.
func (q *Query) Has(name string) bool {
	_, ok := q.values[name]
	return ok
}

// Get returns the single value of name.
func (q *Query) Get(name string) (string, bool) {
	if q.seen == nil {
		return "", false // no query string
	}
	q.seen[name] = true
	vs, ok := q.values[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		q.Fail(licensor.CodeInvalidParameter, name, "%s is given %d times; give it once", name, len(vs))
		return "", false
	}
	return vs[0], true
}

// Bool reads a parameter that is true or false.
func (q *Query) Bool(name string) *bool {
	s, ok := q.Get(name)
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil || (s != "true" && s != "false") {
		q.Fail(licensor.CodeInvalidParameter, name, "%s must be true or false", name)
		return nil
	}
	return &b
}

// Int reads an int64 parameter of at least min.
func (q *Query) Int(name string, min int64) *int64 {
	s, ok := q.Get(name)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min {
		q.Fail(licensor.CodeInvalidParameter, name, "%s must be an integer of at least %d", name, min)
		return nil
	}
	return &n
}

// Text reads a parameter of 1 to maxLen characters.
func (q *Query) Text(name string, maxLen int) *string {
	s, ok := q.Get(name)
	if !ok {
		return nil
	}
	if s == "" || licensor.TextLen(s) > maxLen {
		q.Fail(licensor.CodeInvalidParameter, name, "%s must be 1 to %d characters", name, maxLen)
		return nil
	}
	return &s
}

// Done reports unknown parameters and returns every problem found.
func (q *Query) Done() error {
	var unknown []string
	for k := range q.values {
		if !q.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		q.Fail(licensor.CodeUnknownParameter, k, "unknown query parameter %q", k)
	}
	if len(q.errs) > 0 {
		return q.errs
	}
	return nil
}

// Sort reads sort=FIELD or sort=-FIELD.
func (q *Query) Sort(fields []string) licensor.SortOrder {
	s, ok := q.Get("sort")
	if !ok {
		return licensor.SortOrder{Field: "id"}
	}
	order := licensor.SortOrder{Field: strings.TrimPrefix(s, "-"), Desc: strings.HasPrefix(s, "-")}
	if !slices.Contains(fields, order.Field) {
		q.Fail(licensor.CodeInvalidParameter, "sort", "cannot sort by %q; sort by one of %s (prefix - for descending)", order.Field, strings.Join(fields, " "))
	}
	return order
}

// Page reads page[size], count and page[after]. scope names everything else
// that decides the result (filters, sort, path), so that a cursor is only
// accepted by the query it was made for.
func (q *Query) Page(scope string) (limit int, after *licensor.Cursor, count bool) {
	limit = q.PageSize()
	if c := q.Bool("count"); c != nil {
		count = *c
	}
	if s, ok := q.Get("page[after]"); ok {
		c, err := decodeCursor(s, scope)
		if err != nil {
			q.Fail(licensor.CodeInvalidCursor, "page[after]", "%v", err)
		}
		after = c
	}
	return limit, after, count
}

// PageSize reads page[size] (1 to licensor.MaxPageSize, default
// licensor.DefaultPageSize).
func (q *Query) PageSize() int {
	if n := q.Int("page[size]", 1); n != nil {
		if *n > licensor.MaxPageSize {
			q.Fail(licensor.CodeInvalidParameter, "page[size]", "page[size] must be 1 to %d", licensor.MaxPageSize)
			return licensor.DefaultPageSize
		}
		return int(*n)
	}
	return licensor.DefaultPageSize
}

// Scope is a digest of every parameter except the page ones, plus extra
// (the path's user id, say).
func (q *Query) Scope(extra string) string {
	var parts []string
	for k, vs := range q.values {
		if k == "page[after]" || k == "page[size]" || k == "count" || k == "include" {
			continue
		}
		for _, v := range vs {
			parts = append(parts, k+"="+v)
		}
	}
	slices.Sort(parts)
	h := sha256.Sum256([]byte(extra + "\x00" + strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

// wireCursor is the JSON inside an opaque page[after] value.
type wireCursor struct {
	Int   int64  `json:"k,omitempty"`
	Str   string `json:"s,omitempty"`
	ID    int64  `json:"i"`
	Scope string `json:"q"`
}

// EncodeCursor makes the opaque page[after] value of c for the query whose
// Scope is scope.
func EncodeCursor(c *licensor.Cursor, scope string) string {
	b, _ := json.Marshal(wireCursor{Int: c.Int, Str: c.Str, ID: c.ID, Scope: scope})
	return base64.RawURLEncoding.EncodeToString(b)
}

type cursorError string

func (e cursorError) Error() string { return string(e) }

// maxCursorBytes bounds a decoded cursor. The largest the server makes holds
// a 255-character title whose characters JSON may escape as \u00XX, six
// bytes each: under 2 KiB.
const maxCursorBytes = 4096

func decodeCursor(s, scope string) (*licensor.Cursor, error) {
	if len(s) > base64.RawURLEncoding.EncodedLen(maxCursorBytes) {
		return nil, cursorError("page[after] is not a cursor from links.next")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, cursorError("page[after] is not a cursor from links.next")
	}
	var w wireCursor
	if err := json.Unmarshal(b, &w); err != nil || w.ID <= 0 {
		return nil, cursorError("page[after] is not a cursor from links.next")
	}
	if w.Scope != scope {
		return nil, cursorError("page[after] was made for other filters or another sort; start again without it")
	}
	return &licensor.Cursor{Int: w.Int, Str: w.Str, ID: w.ID}, nil
}

// NextLink is the request's URL with page[after] set to the next cursor.
func NextLink(u *url.URL, cursor string) string {
	values := u.Query()
	values.Set("page[after]", cursor)
	return u.Path + "?" + values.Encode()
}

// PathID parses a positive integer id from the path.
func PathID(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	// The canonical form only: no sign, no leading zeros (what ParseInt
	// accepts besides a positive n's own digits).
	if err != nil || n <= 0 || s[0] == '+' || s[0] == '0' {
		return 0, &licensor.Error{Code: licensor.CodeInvalidID, Detail: name + " must be a positive integer, not " + strconv.Quote(Truncate(s, 40))}
	}
	return n, nil
}

// Truncate cuts s to n bytes, marking the cut with "…": for quoting what a
// client sent in an error detail.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
