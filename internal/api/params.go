package api

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

// query reads the query parameters of one request: every parameter must be
// read by the handler (or it is reported as unknown) and may appear once.
type query struct {
	values url.Values
	seen   map[string]bool
	errs   licensor.Errors
}

// The fields and operators of list parameters, read once.
var (
	licenseSortFields  = licensor.LicenseSortFields()
	productSortFields  = licensor.ProductSortFields()
	licenseRangeFields = licensor.LicenseRangeFields()
	rangeOps           = licensor.RangeOps()
)

func newQuery(u *url.URL) *query {
	q := &query{}
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
		q.fail(licensor.CodeInvalidParameter, textParameter(k), "%s", queryTextDetail)
	}
	return q
}

func (q *query) fail(code licensor.Code, param, format string, args ...any) {
	e := licensor.Errorf(code, format, args...)
	e.Parameter = param
	q.errs = append(q.errs, e)
}

// get returns the single value of name.
func (q *query) get(name string) (string, bool) {
	if q.seen == nil {
		return "", false // no query string
	}
	q.seen[name] = true
	vs, ok := q.values[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		q.fail(licensor.CodeInvalidParameter, name, "%s is given %d times; give it once", name, len(vs))
		return "", false
	}
	return vs[0], true
}

func (q *query) boolean(name string) *bool {
	s, ok := q.get(name)
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil || (s != "true" && s != "false") {
		q.fail(licensor.CodeInvalidParameter, name, "%s must be true or false", name)
		return nil
	}
	return &b
}

func (q *query) integer(name string, min int64) *int64 {
	s, ok := q.get(name)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < min {
		q.fail(licensor.CodeInvalidParameter, name, "%s must be an integer of at least %d", name, min)
		return nil
	}
	return &n
}

func (q *query) text(name string, maxLen int) *string {
	s, ok := q.get(name)
	if !ok {
		return nil
	}
	if s == "" || licensor.TextLen(s) > maxLen {
		q.fail(licensor.CodeInvalidParameter, name, "%s must be 1 to %d characters", name, maxLen)
		return nil
	}
	return &s
}

// done reports unknown parameters and returns every problem found.
func (q *query) done() error {
	var unknown []string
	for k := range q.values {
		if !q.seen[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		q.fail(licensor.CodeUnknownParameter, k, "unknown query parameter %q", k)
	}
	if len(q.errs) > 0 {
		return q.errs
	}
	return nil
}

// sort reads sort=FIELD or sort=-FIELD.
func (q *query) sort(fields []string) licensor.SortOrder {
	s, ok := q.get("sort")
	if !ok {
		return licensor.SortOrder{Field: "id"}
	}
	order := licensor.SortOrder{Field: strings.TrimPrefix(s, "-"), Desc: strings.HasPrefix(s, "-")}
	if !slices.Contains(fields, order.Field) {
		q.fail(licensor.CodeInvalidParameter, "sort", "cannot sort by %q; sort by one of %s (prefix - for descending)", order.Field, strings.Join(fields, " "))
	}
	return order
}

// page reads page[size], count and page[after]. scope names everything else
// that decides the result (filters, sort, path), so that a cursor is only
// accepted by the query it was made for.
func (q *query) page(scope string) (limit int, after *licensor.Cursor, count bool) {
	limit = licensor.DefaultPageSize
	if n := q.integer("page[size]", 1); n != nil {
		if *n > licensor.MaxPageSize {
			q.fail(licensor.CodeInvalidParameter, "page[size]", "page[size] must be 1 to %d", licensor.MaxPageSize)
		} else {
			limit = int(*n)
		}
	}
	if c := q.boolean("count"); c != nil {
		count = *c
	}
	if s, ok := q.get("page[after]"); ok {
		c, err := decodeCursor(s, scope)
		if err != nil {
			q.fail(licensor.CodeInvalidCursor, "page[after]", "%v", err)
		}
		after = c
	}
	return limit, after, count
}

// scope is a digest of every parameter except the page ones, plus extra
// (the path's user id, say).
func (q *query) scope(extra string) string {
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

func encodeCursor(c *licensor.Cursor, scope string) string {
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

// nextLink is the request's URL with page[after] set to the next cursor.
func nextLink(u *url.URL, cursor string) string {
	values := u.Query()
	values.Set("page[after]", cursor)
	return u.Path + "?" + values.Encode()
}

// licenseFilter reads the filters of a license list. byUser is set on
// GetLicensesByUser, where the user comes from the path.
func (q *query) licenseFilter(byUser bool) licensor.LicenseFilter {
	var f licensor.LicenseFilter
	if !byUser {
		if s := q.text("filter[user_id]", 64); s != nil {
			if !licensor.ValidUserID(*s) {
				q.fail(licensor.CodeInvalidParameter, "filter[user_id]", "a user id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
			}
			f.UserID = s
		}
	}
	f.ProductID = q.integer("filter[product_id]", 1)
	f.OrderID = q.text("filter[order_id]", licensor.MaxOrderIDLen)
	if s, ok := q.get("filter[status]"); ok {
		for _, part := range strings.Split(s, ",") {
			st := licensor.Status(strings.TrimSpace(part))
			if !st.Valid() {
				q.fail(licensor.CodeInvalidParameter, "filter[status]", "unknown status %q; one of %s", part, joinStatuses())
				continue
			}
			f.Statuses = append(f.Statuses, st)
		}
	}
	f.Recurring = q.boolean("filter[recurring]")
	for _, field := range licenseRangeFields {
		for _, op := range rangeOps {
			name := "filter[" + field + "][" + op + "]"
			if v := q.integer(name, -1<<62); v != nil {
				f.Ranges = append(f.Ranges, licensor.Range{Field: field, Op: op, Value: *v})
			}
		}
	}
	return f
}

func (q *query) productFilter() licensor.ProductFilter {
	var f licensor.ProductFilter
	if t := q.text("filter[type]", 64); t != nil {
		if !licensor.ValidProductType(*t) {
			q.fail(licensor.CodeInvalidParameter, "filter[type]", "a product type is an upper-case identifier such as CHANNEL_GROUP")
		}
		f.Type = t
	}
	f.IsPremium = q.boolean("filter[is_premium]")
	f.IsBuyable = q.boolean("filter[is_buyable]")
	f.IsVisible = q.boolean("filter[is_visible]")
	f.Title = q.text("filter[title]", licensor.MaxTitleLen)
	return f
}

// include reads include=product (the only inclusion licenses offer).
func (q *query) includeProduct() bool {
	s, ok := q.get("include")
	if !ok {
		return false
	}
	if s != "product" {
		q.fail(licensor.CodeInvalidParameter, "include", "only include=product is supported")
		return false
	}
	return true
}

// pathID parses a positive integer id from the path.
func pathID(s, name string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	// The canonical form only: no sign, no leading zeros (what ParseInt
	// accepts besides a positive n's own digits).
	if err != nil || n <= 0 || s[0] == '+' || s[0] == '0' {
		return 0, &licensor.Error{Code: licensor.CodeInvalidID, Detail: name + " must be a positive integer, not " + strconv.Quote(truncate(s, 40))}
	}
	return n, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
