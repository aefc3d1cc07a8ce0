// Package legacytest generates legacy license data sets for tests and
// benchmarks of the legacy import: deterministic for a seed, in every input
// form the importer reads (JSON lines of wrapped documents, per-user
// documents named by e-mail, CSV), with a known share of malformed records,
// and with the exact v4 license each good record must become.
package legacytest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// Options shape a data set.
type Options struct {
	Seed     uint64
	Users    int // users in the users mapping
	Licenses int // license records in the documents, good and bad
	// BadPercent is roughly the share of malformed license records; 0
	// makes every record good (and no unreadable documents either).
	BadPercent int
	Location   *time.Location // the zone of the legacy local times; nil is UTC
	Service    string         // the legacy service of the order ids; "" is "legacy"
	JSONFiles  int            // JSON lines files; 0 is 8
}

// Expected is the v4 license a good record must become.
type Expected struct {
	Source        string // relative to Dataset.Inputs
	UserID        string
	LegacyProduct string
	Status        licensor.Status
	Start, Stop   int64
	Purchase      int64
	Amount        int64
	Currency      string
	PaymentMethod *string
	Recurring     bool
}

// Dataset is a generated data set on disk.
type Dataset struct {
	Inputs    string // the directory of legacy files: the importer's input
	UsersFile string // the users mapping (email,user_id)
	// Products are the legacy product ids that the products mapping must
	// map; UnknownProduct is one that records use but no mapping has.
	Products       []string
	UnknownProduct string
	// Read is the number of records the importer reads: every license
	// record plus every document it cannot read.
	Read int
	// Good holds every record that must be imported, by order_id.
	Good map[string]Expected
	// Bad holds every record that must be rejected: its source (relative
	// to Inputs) → a substring of the reason.
	Bad map[string]string
}

// WriteProducts writes a products mapping for the data set to path, with
// the v4 id of each legacy product.
func (ds *Dataset) WriteProducts(path string, ids map[string]int64) error {
	var b strings.Builder
	b.WriteString("legacy_product_id,product_id\n")
	for _, p := range ds.Products {
		id, ok := ids[p]
		if !ok {
			return fmt.Errorf("no v4 id for legacy product %s", p)
		}
		fmt.Fprintf(&b, "%s,%d\n", p, id)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// member is one member of a legacy license object: its JSON text, or
// absent when raw is nil.
type member struct {
	key string
	raw string
}

type license struct {
	members []member
	id      string // "" when it has no usable id
	amount  int64  // the price in minor units, as generated
}

func (l *license) set(key, raw string) {
	for i := range l.members {
		if l.members[i].key == key {
			l.members[i].raw = raw
			return
		}
	}
	l.members = append(l.members, member{key, raw})
}

func (l *license) drop(key string) {
	for i := range l.members {
		if l.members[i].key == key {
			l.members = append(l.members[:i], l.members[i+1:]...)
			return
		}
	}
}

func (l *license) json() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range l.members {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(m.key))
		b.WriteByte(':')
		b.WriteString(m.raw)
	}
	b.WriteByte('}')
	return b.String()
}

// csvColumns is the column order of the generated CSV file.
var csvColumns = []string{"email", "id", "status", "startDate", "stopDate", "purchaseDate", "price", "currency", "paymentMethod", "recurring", "productUrl"}

func (l *license) csv(email string) string {
	vals := map[string]string{"email": email}
	for _, m := range l.members {
		var s string
		if err := json.Unmarshal([]byte(m.raw), &s); err != nil {
			s = m.raw // a number or a boolean, as written
		}
		vals[m.key] = s
	}
	fields := make([]string, len(csvColumns))
	for i, c := range csvColumns {
		fields[i] = csvField(vals[c])
	}
	return strings.Join(fields, ",")
}

func csvField(s string) string {
	if strings.ContainsAny(s, ",\"\n\r") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}

func q(s string) string { return strconv.Quote(s) }

// generator holds the state of one generation.
type generator struct {
	o      Options
	rnd    *rand.Rand
	loc    *time.Location
	ds     *Dataset
	nextID int
	ids    []string // legacy ids read so far, in reading order
	users  map[string]string
}

const layout = "2006-01-02 15:04:05"

// Generate writes a data set into dir: dir/users.csv and the legacy files
// in dir/legacy: per-user documents named <email>.json in legacy/by-user,
// a CSV file legacy/export.csv, and JSON lines files legacy/part-NN.jsonl
// (wrapped documents, named by "email" or by the legacy "url").
func Generate(dir string, o Options) (*Dataset, error) {
	if o.Users <= 0 || o.Licenses < o.Users {
		return nil, fmt.Errorf("legacytest: want at least one license per user")
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Service == "" {
		o.Service = "legacy"
	}
	if o.JSONFiles <= 0 {
		o.JSONFiles = 8
	}
	g := &generator{
		o: o, rnd: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), loc: o.Location,
		ds: &Dataset{
			Inputs: filepath.Join(dir, "legacy"), UsersFile: filepath.Join(dir, "users.csv"),
			UnknownProduct: "999", Good: map[string]Expected{}, Bad: map[string]string{},
		},
		users: map[string]string{},
	}
	for i := 1; i <= 12; i++ {
		g.ds.Products = append(g.ds.Products, strconv.Itoa(i))
	}
	g.ds.Products = append(g.ds.Products, "sport-hd", "vod.premium")
	if err := os.MkdirAll(filepath.Join(g.ds.Inputs, "by-user"), 0o755); err != nil {
		return nil, err
	}

	// Users, their licenses counts, and which file holds each.
	var mapping strings.Builder
	mapping.WriteString("email,user_id\n")
	type user struct {
		email string // as written in the legacy data
		count int
		ghost bool // not in the users mapping
	}
	var users []user
	for i := range o.Users {
		email := fmt.Sprintf("user%05d@example.com", i)
		mapping.WriteString(email + "," + strconv.Itoa(100000+i) + "\n")
		g.users[email] = strconv.Itoa(100000 + i)
		if i%7 == 3 {
			email = strings.ToUpper(email[:1]) + email[1:] // e-mails match case-insensitively
		}
		users = append(users, user{email: email, count: o.Licenses / o.Users})
	}
	for i := range o.Licenses % o.Users {
		users[i].count++
	}
	for range o.Users { // uneven counts, same total
		a, b := g.rnd.IntN(o.Users), g.rnd.IntN(o.Users)
		if users[a].count > 1 {
			users[a].count--
			users[b].count++
		}
	}
	if o.BadPercent > 0 { // users missing from the mapping: every record is rejected
		for i := 0; i < len(users) && i < o.Users/200+1; i++ {
			j := g.rnd.IntN(len(users))
			users[j].email = fmt.Sprintf("ghost%05d@example.net", i)
			users[j].ghost = true
		}
	}
	if err := os.WriteFile(g.ds.UsersFile, []byte(mapping.String()), 0o644); err != nil {
		return nil, err
	}

	// Files in the order the importer reads them (lexical order of the
	// directory walk): by-user/, export.csv, part-NN.jsonl.
	var byUser, csvUsers []int
	parts := make([][]int, o.JSONFiles)
	for i := range users {
		switch {
		case i%97 == 5:
			byUser = append(byUser, i)
		case i%23 == 11:
			csvUsers = append(csvUsers, i)
		default:
			parts[i%o.JSONFiles] = append(parts[i%o.JSONFiles], i)
		}
	}
	sort.Slice(byUser, func(a, b int) bool { // the order of a directory listing
		return users[byUser[a]].email+".json" < users[byUser[b]].email+".json"
	})

	for _, i := range byUser {
		u := users[i]
		name := "by-user/" + u.email + ".json"
		lics := make([]license, u.count)
		for k := range lics {
			lics[k] = g.record(u.email, name+":1#"+strconv.Itoa(k), u.ghost, true)
		}
		b, err := json.MarshalIndent(json.RawMessage(document("", "", lics)), "", "  ")
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(g.ds.Inputs, name), append(b, '\n'), 0o644); err != nil {
			return nil, err
		}
		g.ds.Read += len(lics)
	}

	if err := g.writeFile("export.csv", func(w *bufio.Writer) error {
		w.WriteString(strings.Join(csvColumns, ",") + "\n")
		line := 2
		for _, i := range csvUsers {
			u := users[i]
			for range u.count {
				src := "export.csv:" + strconv.Itoa(line)
				if g.bad(2) {
					// A row with too few fields.
					w.WriteString(u.email + "," + strconv.Itoa(g.newID()) + ",active\n")
					g.ds.Bad[src] = "fields, but the header has"
				} else {
					l := g.record(u.email, src, u.ghost, false)
					w.WriteString(l.csv(u.email) + "\n")
				}
				g.ds.Read++
				line++
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}

	for p, members := range parts {
		name := fmt.Sprintf("part-%02d.jsonl", p)
		if err := g.writeFile(name, func(w *bufio.Writer) error {
			line := 1
			for _, i := range members {
				u := users[i]
				// Some users' licenses come in two documents (two legacy
				// pages); some documents are cut off.
				sizes := []int{u.count}
				if u.count > 3 && g.rnd.IntN(10) == 0 {
					sizes = []int{u.count / 2, u.count - u.count/2}
				}
				for _, n := range sizes {
					if g.bad(4) {
						// An unreadable document, then the real one.
						lics := []license{g.good(u.email)}
						doc := document(u.email, "", lics)
						w.WriteString(doc[:len(doc)/2] + "\n")
						g.ds.Bad[name+":"+strconv.Itoa(line)] = "malformed JSON"
						g.ds.Read++
						line++
					}
					lics := make([]license, n)
					for k := range lics {
						lics[k] = g.record(u.email, fmt.Sprintf("%s:%d#%d", name, line, k), u.ghost, true)
					}
					url := ""
					email := u.email
					if g.rnd.IntN(4) == 0 {
						url = "https://boox.fi/api/user/" + strings.ReplaceAll(u.email, "@", "%40") + "/license?Service=" + o.Service + "&Output=full"
						email = ""
					}
					w.WriteString(document(email, url, lics) + "\n")
					g.ds.Read += n
					line++
				}
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	if g.ds.Read != len(g.ds.Good)+len(g.ds.Bad) {
		return nil, fmt.Errorf("legacytest: %d records read but %d good and %d bad", g.ds.Read, len(g.ds.Good), len(g.ds.Bad))
	}
	return g.ds, nil
}

func (g *generator) writeFile(name string, body func(w *bufio.Writer) error) error {
	f, err := os.Create(filepath.Join(g.ds.Inputs, name))
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if err := body(w); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// document is a legacy document holding lics, wrapped with email or url
// unless both are "".
func document(email, url string, lics []license) string {
	var b strings.Builder
	switch {
	case email != "":
		b.WriteString(`{"email":` + q(email) + `,`)
	case url != "":
		b.WriteString(`{"url":` + q(url) + `,`)
	default:
		b.WriteString(`{`)
	}
	fmt.Fprintf(&b, `"license":{"resultSet":{"totalItems":%d,"totalPages":1,"itemsPerPage":1000,"currentPage":0,"offset":0},"licenseList":{"description":"User licenses","licenses":[`, len(lics))
	for i := range lics {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(lics[i].json())
	}
	b.WriteString(`]}}}`)
	return b.String()
}

// bad decides whether the next record is malformed; weight scales the
// configured share.
func (g *generator) bad(weight int) bool {
	return g.o.BadPercent > 0 && g.rnd.IntN(100*weight) < g.o.BadPercent
}

func (g *generator) newID() int {
	g.nextID++
	return 1000000 + g.nextID*7
}

// record makes one license record of a user, good or (sometimes) bad, and
// records what must become of it. json says whether the record is written
// as JSON (CSV cannot carry types, so some defects are JSON-only).
func (g *generator) record(email, src string, ghost, json bool) license {
	if ghost {
		l := g.good(email)
		g.ds.Bad[src] = "is not in the users mapping"
		g.ids = append(g.ids, l.id)
		return l
	}
	if !g.bad(1) {
		l := g.good(email)
		g.expect(&l, email, src)
		g.ids = append(g.ids, l.id)
		return l
	}
	l := g.good(email)
	kinds := 13
	if json {
		kinds = 15
	}
	reason := ""
	switch g.rnd.IntN(kinds) {
	case 0: // a bad date
		field := []string{"startDate", "stopDate", "purchaseDate"}[g.rnd.IntN(3)]
		l.set(field, q([]string{"2013-02-30 10:00:00", "2013/01/11 16:22:13", "yesterday", "2021-13-01 00:00:00", "2021-06-01 25:00:00", "2021-06-01"}[g.rnd.IntN(6)]))
		reason = field + ": "
	case 1: // an unknown status
		st := []string{"pending", "cancelled", "ACTIVATED", "deleted", "inactive"}[g.rnd.IntN(5)]
		l.set("status", q(st))
		reason = "status " + q(st) + " is not one of"
	case 2: // a price with a comma
		l.set("price", q("1,5"))
		reason = "decimal separator is a dot"
	case 3: // a price that is not a number
		l.set("price", q("abc"))
		reason = `price "abc" is not a decimal number`
	case 4: // a negative price
		l.set("price", "-2.00")
		reason = "is negative"
	case 5: // too many decimals for the currency
		switch g.rnd.IntN(3) {
		case 0:
			l.set("currency", q("EUR"))
			l.set("price", "1.234")
		case 1:
			l.set("currency", q("JPY"))
			l.set("price", "1500.5")
		default:
			l.set("currency", q("BHD"))
			l.set("price", "0.0005")
		}
		reason = "more decimals than"
	case 6: // an unknown currency
		l.set("currency", q("XYZ"))
		reason = `currency "XYZ" is not an ISO 4217 code`
	case 7: // an unknown product
		l.set("productUrl", q("https://boox.fi/api/user/"+email+"/product/"+g.ds.UnknownProduct+"?service=s"))
		reason = `legacy product "999" is not in the products mapping`
	case 8: // a missing field
		field := []string{"status", "startDate", "stopDate", "purchaseDate", "price", "currency", "productUrl", "recurring"}[g.rnd.IntN(8)]
		l.drop(field)
		reason = field + " is missing"
	case 9: // a missing id
		l.drop("id")
		l.id = ""
		reason = "id is missing"
	case 10, 11: // a duplicate of an earlier legacy id
		if len(g.ids) == 0 {
			l.set("status", q("pending"))
			reason = "is not one of"
			break
		}
		dup := g.ids[g.rnd.IntN(len(g.ids))]
		l.set("id", q(dup))
		l.id = dup
		reason = "duplicate: legacy license " + q(dup) + " was already read at"
		g.ds.Bad[src] = reason
		return l // its id is not a new one
	case 12: // stops before it starts
		l.set("stopDate", l.get("startDate"))
		reason = "is not after startDate"
	case 13: // JSON only: a price of the wrong type
		l.set("price", "true")
		reason = "price must be a number"
	case 14: // JSON only: an id that is not an integer
		l.set("id", "12.5")
		l.id = ""
		reason = "id 12.5 is not an integer"
	}
	g.ds.Bad[src] = reason
	if l.id != "" {
		g.ids = append(g.ids, l.id)
	}
	return l
}

func (l *license) get(key string) string {
	for _, m := range l.members {
		if m.key == key {
			return m.raw
		}
	}
	return ""
}

// wallTime returns a random instant between 2010 and 2035 whose local time
// in loc is unambiguous, and that local time.
func (g *generator) wallTime() (int64, string) {
	for {
		t := time.Unix(1262304000+g.rnd.Int64N(25*365*86400), 0).In(g.loc)
		s := t.Format(layout)
		ambiguous := false
		for _, d := range []time.Duration{-2 * time.Hour, -time.Hour, -30 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour} {
			if t.Add(d).Format(layout) == s {
				ambiguous = true
			}
		}
		if !ambiguous {
			return t.Unix(), s
		}
	}
}

var (
	currencies = []struct {
		code   string
		digits int
	}{{"EUR", 2}, {"EUR", 2}, {"EUR", 2}, {"USD", 2}, {"JPY", 0}, {"BHD", 3}}
	paymentMethods = []string{"credit_card", "credit_card", "wallet", "voucher", ""}
)

// good makes a well-formed license of a user, with a new legacy id.
func (g *generator) good(email string) license {
	var l license
	id := g.newID()
	l.id = strconv.Itoa(id)
	if g.rnd.IntN(5) == 0 {
		l.set("id", l.id) // a JSON number
	} else {
		l.set("id", q(l.id))
	}
	st := []string{"active", "ACTIVE", "Active", "suspended", "SUSPENDED", "expired", "EXPIRED", "Expired"}[g.rnd.IntN(8)]
	l.set("status", q(st))
	start, startText := g.wallTime()
	stop, stopText := start, startText
	for stop <= start {
		stop, stopText = g.wallTime()
		if stop < start {
			start, stop, startText, stopText = stop, start, stopText, startText
		}
	}
	l.set("startDate", q(startText))
	l.set("stopDate", q(stopText))
	_, purchaseText := g.wallTime()
	l.set("purchaseDate", q(purchaseText))
	cur := currencies[g.rnd.IntN(len(currencies))]
	l.set("currency", q(cur.code))
	l.amount = g.rnd.Int64N(100000)
	l.set("price", priceText(l.amount, cur.digits, g.rnd.IntN(10)))
	if pm := paymentMethods[g.rnd.IntN(len(paymentMethods))]; pm != "" {
		l.set("paymentMethod", q(pm))
	}
	product := g.ds.Products[g.rnd.IntN(len(g.ds.Products))]
	l.set("productUrl", q("https://boox.fi/api/user/"+email+"/product/"+product+"?service="+g.o.Service))
	l.set("recurring", strconv.FormatBool(g.rnd.IntN(2) == 0))
	return l
}

// priceText writes amount minor units as the legacy API wrote prices: a
// float in major units ("12.5", "1500.0"); style 0 writes it as a JSON
// string with every minor digit, style 1 with an exponent.
func priceText(amount int64, digits, style int) string {
	s := strconv.FormatInt(amount, 10)
	if digits > 0 {
		for len(s) <= digits {
			s = "0" + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	switch style {
	case 0:
		return q(s)
	case 1:
		return strconv.FormatInt(amount, 10) + "e-" + strconv.Itoa(digits)
	}
	if digits == 0 {
		return s + ".0"
	}
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
	}
	return s
}

// expect records what the good license l must become.
func (g *generator) expect(l *license, email, src string) {
	var e Expected
	e.Source = src
	e.UserID = g.users[strings.ToLower(email)]
	unq := func(key string) string {
		s, _ := strconv.Unquote(l.get(key))
		return s
	}
	e.Status = licensor.Status(strings.ToUpper(unq("status")))
	parse := func(key string) int64 {
		t, err := time.ParseInLocation(layout, unq(key), g.loc)
		if err != nil {
			panic(err)
		}
		return t.Unix() // unambiguous by construction
	}
	e.Start, e.Stop, e.Purchase = parse("startDate"), parse("stopDate"), parse("purchaseDate")
	e.Currency = unq("currency")
	e.Amount = l.amount
	if pm := unq("paymentMethod"); pm != "" {
		e.PaymentMethod = &pm
	}
	e.Recurring = l.get("recurring") == "true"
	u := unq("productUrl")
	u = u[strings.LastIndex(u, "/product/")+len("/product/"):]
	e.LegacyProduct = u[:strings.IndexByte(u, '?')]
	g.ds.Good[OrderID(g.o.Service, l.id)] = e
}

// OrderID is the order id the importer gives legacy id of service (the
// same rule as legacy.OrderID, restated so that the test data does not
// trust the code under test).
func OrderID(service, id string) string { return "legacy:" + service + ":" + id }
