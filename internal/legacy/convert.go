package legacy

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/licensor/licensor"
)

// LocalTimeLayout is the legacy date format, a wall-clock time without a
// zone, in the reference layout of package time.
const LocalTimeLayout = "2006-01-02 15:04:05"

// ParseLocalTime converts a legacy local time "YYYY-MM-DD hh:mm:ss" in loc
// to unix seconds.
//
// The text must be exactly that: 19 characters, a real calendar date
// (year 0001 to 9999), hours 00-23, minutes and seconds 00-59. Wall-clock
// times that a DST change makes ambiguous are resolved deterministically:
//
//   - a time that does not exist (in the gap when clocks go forward) is
//     moved forward by the length of the gap: in Europe/Helsinki
//     2024-03-31 03:30:00 (clocks jump from 03:00 to 04:00) is read as
//     04:30:00 EEST. This is what Go's time.Date does in practice, but
//     time.Date does not promise it, so it is computed here explicitly;
//   - a time that exists twice (in the overlap when clocks go back) is the
//     earlier of the two instants: in Europe/Helsinki 2024-10-27 03:30:00
//     is 03:30:00 EEST (00:30:00 UTC), not 03:30:00 EET.
func ParseLocalTime(s string, loc *time.Location) (int64, error) {
	wall, err := parseWall(s)
	if err != nil {
		return 0, err
	}
	return resolveWall(wall, loc), nil
}

// parseWall reads s as a wall-clock time and returns it as seconds since
// 1970-01-01 00:00:00 of the same wall clock (as if it were UTC).
func parseWall(s string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("%s is not a date and time %q: %s", strconv.Quote(s), "YYYY-MM-DD hh:mm:ss", why)
	}
	if len(s) != len(LocalTimeLayout) {
		return 0, bad("wrong length")
	}
	for i := 0; i < len(s); i++ {
		want := LocalTimeLayout[i]
		if want >= '0' && want <= '9' {
			if s[i] < '0' || s[i] > '9' {
				return 0, bad("a digit is expected at position " + strconv.Itoa(i+1))
			}
		} else if s[i] != want {
			return 0, bad(fmt.Sprintf("%q is expected at position %d", want, i+1))
		}
	}
	num := func(from, to int) int { n, _ := strconv.Atoi(s[from:to]); return n }
	y, mo, d := num(0, 4), num(5, 7), num(8, 10)
	h, mi, sec := num(11, 13), num(14, 16), num(17, 19)
	switch {
	case y < 1:
		return 0, bad("year 0000 does not exist")
	case mo < 1 || mo > 12:
		return 0, bad("no month " + s[5:7])
	case d < 1 || d > daysIn(y, time.Month(mo)):
		return 0, bad(fmt.Sprintf("%s %d has no day %s", time.Month(mo), y, s[8:10]))
	case h > 23:
		return 0, bad("hour beyond 23")
	case mi > 59:
		return 0, bad("minute beyond 59")
	case sec > 59:
		return 0, bad("second beyond 59")
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC).Unix(), nil
}

func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// zonePeriod is a span of instants [start, end) with one UTC offset.
type zonePeriod struct {
	start, end       int64
	hasStart, hasEnd bool // false: unbounded on that side
	offset           int64
}

func (p zonePeriod) contains(t int64) bool {
	return (!p.hasStart || t >= p.start) && (!p.hasEnd || t < p.end)
}

// offsetSpan bounds the distance between a wall-clock reading and its
// instant: no UTC offset, even a historical local mean time, reaches 24
// hours.
const offsetSpan = 48 * 3600

// resolveWall returns the instant at which the clocks of loc read wall
// (seconds of a wall clock, as if UTC), by the rules of ParseLocalTime.
func resolveWall(wall int64, loc *time.Location) int64 {
	// The zone periods covering every instant that could read as wall.
	var periods []zonePeriod
	for u := wall - offsetSpan; ; {
		t := time.Unix(u, 0).In(loc)
		_, off := t.Zone()
		start, end := t.ZoneBounds()
		p := zonePeriod{offset: int64(off), hasStart: !start.IsZero(), hasEnd: !end.IsZero()}
		if p.hasStart {
			p.start = start.Unix()
		}
		if p.hasEnd {
			p.end = end.Unix()
		}
		periods = append(periods, p)
		if !p.hasEnd || p.end > wall+offsetSpan || p.end <= u {
			break
		}
		u = p.end
	}
	// Every period in which wall is a real reading gives one instant; in an
	// overlap there are two, and the earlier one wins.
	found := false
	var best int64
	for _, p := range periods {
		if t := wall - p.offset; p.contains(t) && (!found || t < best) {
			best, found = t, true
		}
	}
	if found {
		return best
	}
	// A gap: the clocks jumped from p's offset to q's at q.start, and wall
	// lies in [q.start+p.offset, q.start+q.offset). Reading wall with the
	// offset from before the jump lands after it, shifted by the gap.
	for i := 0; i+1 < len(periods); i++ {
		p, q := periods[i], periods[i+1]
		if q.hasStart && wall >= q.start+p.offset && wall < q.start+q.offset {
			return wall - p.offset
		}
	}
	// Unreachable for a consistent zone database; keep Go's own reading.
	_, off := time.Unix(wall, 0).In(loc).Zone()
	return wall - int64(off)
}

// ParsePrice converts a legacy price, a decimal number of major units as
// text ("12.5", "1.0", "1500", "1.25e1"), into minor units of currency
// (1250 for "12.5" EUR), with integer arithmetic only.
//
// The value must be exact in minor units: "1.234" EUR and "1.5" JPY are
// rejected, while trailing zeros are fine ("1.0" JPY is 1, "2.500" EUR is
// 250), since the legacy API printed prices as floats. An exponent is
// accepted when the result is exact. Negative numbers, a comma as the
// decimal separator ("1,5"), signs, blanks, a missing digit before or after
// the point (".5", "5.") and anything else that is not a decimal number are
// rejected, as is an amount beyond the range of int64.
func ParsePrice(text, currency string) (int64, error) {
	digits, ok := licensor.CurrencyDigits(currency)
	if !ok {
		return 0, fmt.Errorf("currency %s is not an ISO 4217 code", strconv.Quote(currency))
	}
	m := decimalPattern.FindStringSubmatch(text)
	if m == nil {
		switch {
		case strings.HasPrefix(text, "-"):
			return 0, fmt.Errorf("price %s is negative", strconv.Quote(text))
		case strings.Contains(text, ","):
			return 0, fmt.Errorf("price %s is not a decimal number (the decimal separator is a dot)", strconv.Quote(text))
		}
		return 0, fmt.Errorf("price %s is not a decimal number", strconv.Quote(text))
	}
	intPart, fracPart, expPart := m[1], m[2], m[3]
	exp := 0
	if expPart != "" {
		e, err := strconv.Atoi(strings.TrimPrefix(expPart, "+"))
		if err != nil || e < -100 || e > 100 {
			return 0, fmt.Errorf("price %s: exponent out of range", strconv.Quote(text))
		}
		exp = e
	}
	// All the digits, and where the point goes once scaled to minor units.
	all := intPart + fracPart
	point := len(intPart) + exp + digits
	if point < 0 {
		all = strings.Repeat("0", -point) + all
		point = 0
	}
	if point > len(all) {
		all += strings.Repeat("0", point-len(all))
	}
	whole, rest := all[:point], all[point:]
	if strings.Trim(rest, "0") != "" {
		return 0, fmt.Errorf("price %s has more decimals than %s has minor digits (%d)", strconv.Quote(text), currency, digits)
	}
	whole = strings.TrimLeft(whole, "0")
	if whole == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("price %s is too large", strconv.Quote(text))
	}
	return n, nil
}

// decimalPattern is a non-negative decimal number with an optional
// fraction and exponent: the JSON number grammar without a sign, and with
// leading zeros allowed.
var decimalPattern = regexp.MustCompile(`^([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$`)

// ParseStatus maps a legacy status, matched case-insensitively, to the v4
// enum: active → ACTIVE, suspended → SUSPENDED, expired → EXPIRED. Anything
// else is an error.
func ParseStatus(s string) (licensor.Status, error) {
	for _, st := range []licensor.Status{licensor.StatusActive, licensor.StatusSuspended, licensor.StatusExpired} {
		if strings.EqualFold(s, string(st)) {
			return st, nil
		}
	}
	return "", fmt.Errorf("status %s is not one of active, suspended, expired", strconv.Quote(s))
}

// ProductFromURL returns the legacy product id of a legacy productUrl,
// whose path ends in /product/<id> ("https://boox.fi/api/user/a@b.c/product/2?service=s"
// is product "2"). The query and a trailing slash are ignored.
func ProductFromURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("productUrl %s is not a URL", strconv.Quote(s))
	}
	segs := strings.Split(strings.TrimSuffix(u.EscapedPath(), "/"), "/")
	if n := len(segs); n >= 2 && segs[n-2] == "product" && segs[n-1] != "" {
		if id, err := url.PathUnescape(segs[n-1]); err == nil {
			return id, nil
		}
	}
	return "", fmt.Errorf("productUrl %s does not end in /product/<id>", strconv.Quote(s))
}

// OrderIDPrefix starts every order_id the import gives a license.
const OrderIDPrefix = "legacy:"

// OrderID is the v4 order_id of legacy license id of service:
// "legacy:<service>:<id>". It is the same on every run, which is what makes
// a second import of the same data create nothing.
func OrderID(service, id string) string {
	return OrderIDPrefix + service + ":" + id
}

var servicePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidService reports whether s can name a legacy service in order ids: 1
// to 64 characters of A-Z a-z 0-9 . _ - (no colon, so that the order_id
// reads back unambiguously).
func ValidService(s string) bool { return servicePattern.MatchString(s) }

// NormalizeEmail is the form in which e-mails are compared: without
// surrounding blanks, lower-case.
func NormalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Converter turns legacy records into v4 license drafts. It remembers the
// legacy ids it has seen, so it must see the records of one import in
// order; it is not safe for concurrent use.
type Converter struct {
	users    map[string]string // normalized e-mail → v4 user id
	products map[string]int64  // legacy product id → v4 product id
	loc      *time.Location
	service  string
	seen     map[string]string // legacy id → source of its first record
}

// NewConverter returns a converter using the mappings (see ReadUsers and
// ReadProducts), reading local times in loc, and making order ids for
// service.
func NewConverter(users map[string]string, products map[string]int64, loc *time.Location, service string) (*Converter, error) {
	if !ValidService(service) {
		return nil, fmt.Errorf("service %s: use 1 to 64 characters of A-Z a-z 0-9 . _ -", strconv.Quote(service))
	}
	if loc == nil {
		loc = time.UTC
	}
	return &Converter{users: users, products: products, loc: loc, service: service, seen: map[string]string{}}, nil
}

// Rejection is why a record cannot be imported: one or more problems.
type Rejection struct {
	Problems []string
}

func (r *Rejection) Error() string { return strings.Join(r.Problems, "; ") }

// LegacyProduct returns the legacy product id a record names, from its
// productUrl or productId.
func LegacyProduct(f *Fields) (string, error) {
	switch {
	case f.ProductURL.Set:
		if f.ProductURL.Kind != KindString {
			return "", errors.New("productUrl must be a string")
		}
		return ProductFromURL(f.ProductURL.Text)
	case f.ProductID.Set:
		if f.ProductID.Text == "" || hasControl(f.ProductID.Text) {
			return "", fmt.Errorf("productId %s is not a product id", strconv.Quote(f.ProductID.Text))
		}
		return f.ProductID.Text, nil
	}
	return "", errors.New("productUrl is missing")
}

// Convert converts one record. When the record cannot be imported, the
// error is a *Rejection listing every problem found.
//
// The legacy id is checked first: a record whose legacy id an earlier
// record already had is rejected as a duplicate, whatever became of the
// earlier one.
func (c *Converter) Convert(r *Record) (licensor.LicenseDraft, error) {
	if r.Err != nil {
		return licensor.LicenseDraft{}, &Rejection{Problems: []string{r.Err.Error()}}
	}
	var problems []string
	fail := func(err error) { problems = append(problems, err.Error()) }
	f := &r.Fields
	var d licensor.LicenseDraft

	id, err := legacyID(f.ID)
	if err != nil {
		fail(err)
	} else {
		if first, dup := c.seen[id]; dup {
			return d, &Rejection{Problems: []string{fmt.Sprintf("duplicate: legacy license %s was already read at %s", strconv.Quote(id), first)}}
		}
		c.seen[id] = r.Source
		order := OrderID(c.service, id)
		if licensor.TextLen(order) > licensor.MaxOrderIDLen {
			fail(fmt.Errorf("order_id %s is longer than %d characters", strconv.Quote(order), licensor.MaxOrderIDLen))
		}
		d.OrderID = &order
	}

	if r.Email == "" {
		fail(errors.New(`no user e-mail: wrap the document as {"email": ..., "license": ...}, name the file <email>.json, or fill the email column`))
	} else if user, ok := c.users[NormalizeEmail(r.Email)]; ok {
		d.UserID = user
	} else {
		fail(fmt.Errorf("user e-mail %s is not in the users mapping", strconv.Quote(r.Email)))
	}

	if legacyProduct, err := LegacyProduct(f); err != nil {
		fail(err)
	} else if p, ok := c.products[legacyProduct]; ok {
		d.ProductID = p
	} else {
		fail(fmt.Errorf("legacy product %s is not in the products mapping", strconv.Quote(legacyProduct)))
	}

	if s, err := text(f.Status, "status"); err != nil {
		fail(err)
	} else if st, err := ParseStatus(s); err != nil {
		fail(err)
	} else {
		d.Status = &st
	}

	date := func(fd Field, name string) *int64 {
		s, err := text(fd, name)
		if err != nil {
			fail(err)
			return nil
		}
		t, err := ParseLocalTime(s, c.loc)
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
			return nil
		}
		return &t
	}
	d.StartDate = date(f.StartDate, "startDate")
	d.StopDate = date(f.StopDate, "stopDate")
	d.PurchaseTimestamp = date(f.PurchaseDate, "purchaseDate")
	if d.StartDate != nil && d.StopDate != nil && *d.StopDate <= *d.StartDate {
		fail(fmt.Errorf("stopDate %s is not after startDate %s", f.StopDate.Text, f.StartDate.Text))
	}

	switch cur, err := text(f.Currency, "currency"); {
	case !f.Currency.Set && !f.Price.Set:
		fail(errors.New("price and currency are missing"))
	case err != nil:
		fail(err)
	case !licensor.ValidCurrency(strings.ToUpper(cur)):
		fail(fmt.Errorf("currency %s is not an ISO 4217 code", strconv.Quote(cur)))
	case !f.Price.Set:
		fail(errors.New("price is missing"))
	case f.Price.Kind != KindNumber && f.Price.Kind != KindString:
		fail(errors.New("price must be a number"))
	default:
		cur = strings.ToUpper(cur)
		if amount, err := ParsePrice(f.Price.Text, cur); err != nil {
			fail(err)
		} else {
			d.PriceAmount, d.PriceCurrency = &amount, &cur
		}
	}

	if f.PaymentMethod.Set {
		if pm, err := attrText(f.PaymentMethod, "paymentMethod", licensor.MaxPaymentMethodLen); err != nil {
			fail(err)
		} else {
			d.PaymentMethod = &pm
		}
	}

	if rec, err := parseRecurring(f.Recurring); err != nil {
		fail(err)
	} else {
		d.Recurring = &rec
	}

	if len(problems) > 0 {
		return licensor.LicenseDraft{}, &Rejection{Problems: problems}
	}
	return d, nil
}

// legacyID reads the legacy license id: a non-empty string, or an integer.
func legacyID(f Field) (string, error) {
	switch {
	case !f.Set:
		return "", errors.New("id is missing")
	case f.Kind == KindNumber:
		if _, err := strconv.ParseUint(f.Text, 10, 64); err != nil {
			return "", fmt.Errorf("id %s is not an integer", f.Text)
		}
	case f.Kind != KindString:
		return "", errors.New("id must be a string or an integer")
	case f.Text == "":
		return "", errors.New("id is empty")
	default:
		return attrText(f, "id", 0)
	}
	return f.Text, nil
}

// attrText returns the value of a string field that goes to the server as
// a string attribute, checked by the server's rules for such attributes:
// licensor.ValidText (valid UTF-8, no NUL) and, when maxLen > 0, at most
// maxLen characters (code points, as the API counts them). Anything else
// is the server's to accept, line breaks and other control characters
// included.
func attrText(f Field, name string, maxLen int) (string, error) {
	switch {
	case f.Kind != KindString:
		return "", errors.New(name + " must be a string")
	case f.Problem != "":
		return "", fmt.Errorf("%s %s", name, f.Problem)
	case !utf8.ValidString(f.Text):
		return "", fmt.Errorf("%s %s is not valid UTF-8", name, strconv.Quote(f.Text))
	case !licensor.ValidText(f.Text):
		return "", fmt.Errorf("%s %s contains a NUL character, which no string attribute may hold", name, strconv.Quote(f.Text))
	case maxLen > 0 && licensor.TextLen(f.Text) > maxLen:
		return "", fmt.Errorf("%s %s is longer than %d characters", name, strconv.Quote(f.Text), maxLen)
	}
	return f.Text, nil
}

// text returns the value of a required string field.
func text(f Field, name string) (string, error) {
	switch {
	case !f.Set:
		return "", errors.New(name + " is missing")
	case f.Kind != KindString:
		return "", errors.New(name + " must be a string")
	case f.Problem != "":
		return "", fmt.Errorf("%s %s", name, f.Problem)
	}
	return f.Text, nil
}

// parseRecurring reads the recurring flag: a JSON boolean, or the text
// true/false (any case) or 1/0.
func parseRecurring(f Field) (bool, error) {
	if !f.Set {
		return false, errors.New("recurring is missing")
	}
	if f.Kind == KindString || f.Kind == KindBool || f.Kind == KindNumber {
		switch strings.ToLower(f.Text) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
	}
	return false, fmt.Errorf("recurring %s is not true or false", strconv.Quote(f.Text))
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}
