// Package sqlfilter writes the list queries that are the same SQL on SQLite
// and PostgreSQL (licenses, products, the change feed, a webhook's
// deliveries) — the WHERE conditions of a filter (effective status
// included), the sort keys, the keyset cursor, the count — so that the two
// engines cannot drift apart. What differs is named by a Dialect: the
// placeholders and the substring test.
package sqlfilter

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// Dialect is what differs between the engines' SQL here.
type Dialect int

const (
	SQLite     Dialect = iota // ? placeholders, instr()
	PostgreSQL                // $n placeholders, strpos()
)

// licenseRangeFields are the fields a range filter may name.
var licenseRangeFields = licensor.LicenseRangeFields()

// Args returns an empty argument list written in d's placeholders.
func (d Dialect) Args() *Args { return &Args{numbered: d == PostgreSQL} }

// contains is d's substring test of needle in haystack.
func (d Dialect) contains(haystack, needle string) string {
	if d == PostgreSQL {
		return "strpos(" + haystack + ", " + needle + ") > 0"
	}
	return "instr(" + haystack + ", " + needle + ") > 0"
}

// Args collects a query's arguments and writes the engine's placeholder
// for each ("?" on SQLite, "$n" on PostgreSQL).
type Args struct {
	numbered bool
	Values   []any
}

// Arg appends v and returns its placeholder.
func (a *Args) Arg(v any) string {
	a.Values = append(a.Values, v)
	if a.numbered {
		return "$" + strconv.Itoa(len(a.Values))
	}
	return "?"
}

// In is the condition that column is one of values: IN (?, ...) on
// SQLite, = ANY($n) with one array argument on PostgreSQL.
func (a *Args) In(column string, values []string) string {
	if a.numbered {
		return column + " = ANY(" + a.Arg(values) + ")"
	}
	ps := make([]string, len(values))
	for i, v := range values {
		ps[i] = a.Arg(v)
	}
	return column + " IN (" + strings.Join(ps, ", ") + ")"
}

// NullIfEmpty is the argument of an optional text column: SQL NULL for "".
func NullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Qualify prefixes each of a comma list of columns with a table alias
// ("d." + "id, url" is "d.id, d.url").
func Qualify(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// EventConditions returns the WHERE conditions of a change-feed filter.
func EventConditions(ph *Args, f licensor.EventFilter) []string {
	conds := []string{}
	if len(f.Types) > 0 {
		types := make([]string, len(f.Types))
		for i, t := range f.Types {
			types[i] = string(t)
		}
		conds = append(conds, ph.In("type", types))
	}
	if f.LicenseID != nil {
		conds = append(conds, "license_id = "+ph.Arg(*f.LicenseID))
	}
	if f.ProductID != nil {
		conds = append(conds, "product_id = "+ph.Arg(*f.ProductID))
	}
	if f.UserID != nil {
		conds = append(conds, "user_id = "+ph.Arg(*f.UserID))
	}
	return conds
}

// LicenseSortKey returns the SQL expression a license sort field orders
// by. Missing stop and expiry dates sort as MaxInt64, "never".
func LicenseSortKey(field string) (string, bool) {
	switch field {
	case "id", "created_at", "start_date":
		return field, true
	case "stop_date", "expiry_date":
		return "COALESCE(" + field + ", 9223372036854775807)", true
	}
	return "", false
}

func RangeOperator(op string) (string, bool) {
	switch op {
	case "gt":
		return ">", true
	case "gte":
		return ">=", true
	case "lt":
		return "<", true
	case "lte":
		return "<=", true
	}
	return "", false
}

// LicenseConditions returns the WHERE conditions of a license filter.
// Statuses match the effective status at now.
func LicenseConditions(ph *Args, f licensor.LicenseFilter, now int64) ([]string, error) {
	conds := []string{"deleted_at IS NULL"}
	if f.UserID != nil {
		conds = append(conds, "user_id = "+ph.Arg(*f.UserID))
	}
	if f.ProductID != nil {
		conds = append(conds, "product_id = "+ph.Arg(*f.ProductID))
	}
	if f.OrderID != nil {
		conds = append(conds, "order_id = "+ph.Arg(*f.OrderID))
	}
	if len(f.Statuses) > 0 {
		var alts, literal []string
		for _, s := range f.Statuses {
			switch s {
			case licensor.StatusActive:
				alts = append(alts, "(status = 'ACTIVE' AND (stop_date IS NULL OR stop_date > "+ph.Arg(now)+"))")
			case licensor.StatusExpired:
				alts = append(alts, "(status = 'EXPIRED' OR (status = 'ACTIVE' AND stop_date <= "+ph.Arg(now)+"))")
			default:
				literal = append(literal, ph.Arg(string(s)))
			}
		}
		if len(literal) > 0 {
			alts = append(alts, "status IN ("+strings.Join(literal, ", ")+")")
		}
		conds = append(conds, "("+strings.Join(alts, " OR ")+")")
	}
	if f.Recurring != nil {
		conds = append(conds, "recurring = "+ph.Arg(*f.Recurring))
	}
	for _, r := range f.Ranges {
		op, ok := RangeOperator(r.Op)
		if !ok || !slices.Contains(licenseRangeFields, r.Field) {
			return nil, &licensor.Error{Code: licensor.CodeInvalidParameter,
				Parameter: fmt.Sprintf("filter[%s][%s]", r.Field, r.Op),
				Detail:    fmt.Sprintf("cannot filter licenses on %s %s", r.Field, r.Op)}
		}
		if key, ok := LicenseSortKey(r.Field); ok && key != r.Field {
			// A date that may be missing is compared through its sort
			// key, COALESCE(date, max), which is exactly the same
			// condition once NULL is excluded. Then both engines walk
			// the sort index (COALESCE(date, max), id) from the bound and
			// stop after a page, instead of collecting every license of
			// the range and sorting them ("who renews in the next week",
			// sorted by stop_date, was linear in the data; issue 4), and
			// PostgreSQL estimates the range from that index's
			// statistics.
			conds = append(conds, r.Field+" IS NOT NULL AND "+key+" "+op+" "+ph.Arg(r.Value))
			continue
		}
		// A NULL never satisfies a comparison: licenses without the
		// date never match a range on it.
		conds = append(conds, r.Field+" "+op+" "+ph.Arg(r.Value))
	}
	return conds, nil
}

// LicenseCursor is the keyset position of l in a walk sorted by field.
func LicenseCursor(l *licensor.License, field string) *licensor.Cursor {
	orNever := func(t *int64) int64 {
		if t == nil {
			return math.MaxInt64
		}
		return *t
	}
	c := &licensor.Cursor{ID: l.ID}
	switch field {
	case "id":
		c.Int = l.ID
	case "created_at":
		c.Int = l.CreatedAt
	case "start_date":
		c.Int = l.StartDate
	case "stop_date":
		c.Int = orNever(l.StopDate)
	case "expiry_date":
		c.Int = orNever(l.ExpiryDate)
	}
	return c
}

// PageLimit clamps a page size to 1..MaxPageSize (0 means the default).
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return licensor.DefaultPageSize
	case n > licensor.MaxPageSize:
		return licensor.MaxPageSize
	}
	return n
}

// LicenseKeyset returns the condition of the licenses after a in a walk
// sorted by field, descending if desc. Besides the row comparison on (sort
// key, id) it bounds the sort key alone: SQLite searches an index on an
// expression only from such a bound, and PostgreSQL can compare it with a
// range filter's bound on the same key and start from the tighter one.
func LicenseKeyset(ph *Args, field string, a *licensor.Cursor, desc bool) string {
	op := ">"
	if desc {
		op = "<"
	}
	if field == "id" {
		return "id " + op + " " + ph.Arg(a.ID)
	}
	key, _ := LicenseSortKey(field)
	return fmt.Sprintf("%s %s= %s AND (%s, id) %s (%s, %s)", key, op, ph.Arg(a.Int), key, op, ph.Arg(a.Int), ph.Arg(a.ID))
}

// InIDs is the condition that column is one of ids, as one argument: =
// ANY($n) with an array on PostgreSQL, IN (SELECT value FROM json_each(?))
// with a JSON array on SQLite, so that the statement's text is the same
// whatever the number of ids (one prepared statement).
func (a *Args) InIDs(column string, ids []int64) string {
	if a.numbered {
		return column + " = ANY(" + a.Arg(ids) + ")"
	}
	b := make([]byte, 0, 1+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return column + " IN (SELECT value FROM json_each(" + a.Arg(string(append(b, ']'))) + "))"
}

// Rebind writes query, whose placeholders are ?, in d's placeholders:
// $1, $2, … on PostgreSQL. The statements written once for both engines
// (internal/sqlstore) use ?; none of them has a ? in a literal.
func (d Dialect) Rebind(query string) string {
	if d != PostgreSQL || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}
