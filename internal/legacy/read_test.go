package legacy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

// readAll reads one input and returns its records.
func readAll(t *testing.T, text, name string, f Format) []*Record {
	t.Helper()
	var recs []*Record
	if err := Read(strings.NewReader(text), name, f, func(r *Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("Read: %v", err)
	}
	return recs
}

func sources(recs []*Record) []string {
	var out []string
	for _, r := range recs {
		s := r.Source
		if r.Err != nil {
			s += " ERR"
		}
		out = append(out, s)
	}
	return out
}

// TestSeedExamples reads the committed examples in testdata as the
// importer does and checks every conversion.
func TestSeedExamples(t *testing.T) {
	open := func(name string) *os.File {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	users, err := ReadUsers(open("users.csv"), "users.csv")
	if err != nil {
		t.Fatal(err)
	}
	products, err := ReadProducts(open("products.csv"), "products.csv")
	if err != nil {
		t.Fatal(err)
	}
	conv, err := NewConverter(users, products, mustLoad(t, "Europe/Helsinki"), "boox")
	if err != nil {
		t.Fatal(err)
	}
	inputs, err := Inputs([]string{"testdata"}, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range inputs {
		names = append(names, filepath.Base(in.Path))
	}
	// The mapping files are CSV too: the directory holds them, and the
	// importer is told its inputs one by one in real use.
	if want := []string{"alice@example.com.json", "licenses.csv", "products.csv", "users.csv", "wrapped.jsonl"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("inputs %v, want %v", names, want)
	}
	good := map[string]licensor.LicenseDraft{}
	rejected := map[string]string{}
	for _, in := range inputs {
		if strings.HasSuffix(in.Path, "users.csv") || strings.HasSuffix(in.Path, "products.csv") {
			continue
		}
		f := open(filepath.Base(in.Path))
		name := filepath.Base(in.Path)
		err := Read(f, name, in.Format, func(r *Record) error {
			if !json.Valid(r.Raw) {
				t.Errorf("%s: raw %q is not JSON", r.Source, r.Raw)
			}
			d, err := conv.Convert(r)
			if err != nil {
				rejected[r.Source] = err.Error()
			} else {
				good[r.Source] = d
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	eur, jpy, bhd := "EUR", "JPY", "BHD"
	want := map[string]licensor.LicenseDraft{
		"alice@example.com.json:1#0": {UserID: "41", ProductID: 7, Status: ptr(licensor.StatusActive),
			StartDate: ptr(utc(2013, 1, 11, 14, 22, 13)), StopDate: ptr(utc(2013, 2, 11, 14, 22, 18)),
			PurchaseTimestamp: ptr(utc(2013, 1, 11, 14, 22, 22)), OrderID: ptr("legacy:boox:1"),
			PriceAmount: ptr(int64(100)), PriceCurrency: &eur, PaymentMethod: ptr("credit_card"), Recurring: ptr(false)},
		"alice@example.com.json:1#1": {UserID: "41", ProductID: 8, Status: ptr(licensor.StatusSuspended),
			StartDate: ptr(utc(2024, 3, 31, 1, 30, 0)), StopDate: ptr(utc(2024, 10, 27, 0, 30, 0)),
			PurchaseTimestamp: ptr(utc(2024, 3, 30, 10, 0, 0)), OrderID: ptr("legacy:boox:2"),
			PriceAmount: ptr(int64(1500)), PriceCurrency: &jpy, PaymentMethod: ptr("wallet"), Recurring: ptr(true)},
		"wrapped.jsonl:1#0": {UserID: "42", ProductID: 9, Status: ptr(licensor.StatusExpired),
			StartDate: ptr(utc(2012, 4, 30, 21, 0, 0)), StopDate: ptr(utc(2013, 4, 30, 21, 0, 0)),
			PurchaseTimestamp: ptr(utc(2012, 4, 30, 21, 0, 0)), OrderID: ptr("legacy:boox:10"),
			PriceAmount: ptr(int64(1234)), PriceCurrency: &bhd, PaymentMethod: ptr("voucher"), Recurring: ptr(false)},
		"wrapped.jsonl:2#0": {UserID: "43", ProductID: 7, Status: ptr(licensor.StatusActive),
			StartDate: ptr(utc(2023, 6, 1, 5, 0, 0)), StopDate: ptr(utc(2023, 7, 1, 5, 0, 0)),
			PurchaseTimestamp: ptr(utc(2023, 6, 1, 4, 59, 30)), OrderID: ptr("legacy:boox:20"),
			PriceAmount: ptr(int64(999)), PriceCurrency: &eur, PaymentMethod: ptr("credit_card"), Recurring: ptr(true)},
		"licenses.csv:2": {UserID: "43", ProductID: 8, Status: ptr(licensor.StatusActive),
			StartDate: ptr(utc(2023, 12, 31, 22, 0, 0)), StopDate: ptr(utc(2024, 12, 31, 22, 0, 0)),
			PurchaseTimestamp: ptr(utc(2023, 12, 31, 21, 59, 59)), OrderID: ptr("legacy:boox:40"),
			PriceAmount: ptr(int64(1250)), PriceCurrency: &eur, PaymentMethod: ptr("credit_card"), Recurring: ptr(true)},
	}
	for src, w := range want {
		if g, ok := good[src]; !ok {
			t.Errorf("%s rejected: %s", src, rejected[src])
		} else if !reflect.DeepEqual(g, w) {
			t.Errorf("%s:\n got %+v\nwant %+v", src, g, w)
		}
	}
	if len(good) != len(want) {
		t.Errorf("%d good records, want %d: %v", len(good), len(want), good)
	}
	wantRejects := map[string][]string{
		"wrapped.jsonl:1#1": {`status "cancelled"`, `price "1,5"`},
		"wrapped.jsonl:3#0": {`"dave@example.com" is not in the users mapping`},
		"wrapped.jsonl:4":   {"malformed JSON", "does not end before line 5"},
		"wrapped.jsonl:5#0": {`duplicate: legacy license "1" was already read at alice@example.com.json:1#0`},
		"licenses.csv:3":    {`price "abc"`},
		"licenses.csv:4":    {"stopDate is missing"},
		"licenses.csv:5":    {"4 fields, but the header has 11"},
	}
	for src, subs := range wantRejects {
		reason, ok := rejected[src]
		if !ok {
			t.Errorf("%s not rejected", src)
			continue
		}
		for _, s := range subs {
			if !strings.Contains(reason, s) {
				t.Errorf("%s: reason %q lacks %q", src, reason, s)
			}
		}
	}
	if len(rejected) != len(wantRejects) {
		t.Errorf("rejected %v", rejected)
	}
}

func TestReadJSONLayouts(t *testing.T) {
	lic := `{"id":"%d","status":"active"}`
	doc := func(email string, ids ...int) string {
		var ls []string
		for _, id := range ids {
			ls = append(ls, strings.Replace(lic, "%d", string(rune('0'+id)), 1))
		}
		return `{"email":"` + email + `","license":{"licenseList":{"licenses":[` + strings.Join(ls, ",") + `]}}}`
	}
	pretty := func(s string) string {
		var v any
		_ = json.Unmarshal([]byte(s), &v)
		b, _ := json.MarshalIndent(v, "", "  ")
		return string(b)
	}
	for _, c := range []struct {
		name, text string
		want       []string
	}{
		{"json lines", doc("a@x", 1, 2) + "\n" + doc("b@x", 3) + "\n", []string{"f:1#0", "f:1#1", "f:2#0"}},
		{"concatenated on one line", doc("a@x", 1) + " " + doc("b@x", 2), []string{"f:1#0", "f:1#0"}},
		{"pretty", pretty(doc("a@x", 1, 2)) + "\n" + pretty(doc("b@x", 3)), []string{"f:1#0", "f:1#1", "f:18#0"}},
		{"array", "[\n" + doc("a@x", 1) + ",\n" + doc("b@x", 2, 3) + "\n]\n", []string{"f:2#0", "f:3#0", "f:3#1"}},
		{"commas between documents", doc("a@x", 1) + ",\n" + doc("b@x", 2) + ",\n", []string{"f:1#0", "f:2#0"}},
		{"byte order mark", "\ufeff" + doc("a@x", 1), []string{"f:1#0"}},
		{"empty", "  \n", nil},
		{"no licenses", `{"email":"a@x","license":{"licenseList":{"licenses":[]}}}`, nil},
		{"garbage then documents", "hello world\nmore\n" + doc("a@x", 1), []string{"f:1 ERR", "f:3#0"}},
		{"broken then documents", doc("a@x", 1)[:40] + "\n" + doc("b@x", 2) + "\n" + doc("c@x", 3),
			[]string{"f:1 ERR", "f:2#0", "f:3#0"}},
		{"syntax error inside", `{"email":"a@x","license":{"licenseList":{"licenses":[{"id":1,}]}}}` + "\n" + doc("b@x", 2),
			[]string{"f:1 ERR", "f:2#0"}},
		{"cut off at the end", doc("a@x", 1) + "\n" + doc("b@x", 2)[:50], []string{"f:1#0", "f:2 ERR"}},
		{"not a legacy document", `{"data":[]}` + "\n" + `{"license":{"licenseList":{"licenses":{}}}}`, []string{"f:1 ERR", "f:2 ERR"}},
		{"license not an object", `{"email":"a@x","license":{"licenseList":{"licenses":[1,{"id":"2"}]}}}`, []string{"f:1#0 ERR", "f:1#1"}},
		{"braces in strings", `{"email":"a@x","license":{"licenseList":{"licenses":[{"id":"{[\"}"}]}}}`, []string{"f:1#0"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := sources(readAll(t, c.text, "f", FormatJSON))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("records %q, want %q", got, c.want)
			}
		})
	}
}

// TestReadJSONLongLines reads documents longer than the reader's buffer,
// on one line.
func TestReadJSONLongLines(t *testing.T) {
	var b strings.Builder
	for d := range 3 {
		b.WriteString(`{"email":"a@x","license":{"licenseList":{"licenses":[`)
		for i := range 2000 {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"%d-%d","status":"active","productUrl":"https://boox.fi/api/user/a@x/product/2?service=s"}`, d, i)
		}
		b.WriteString("]}}}\n")
	}
	if b.Len() < 3*128<<10 {
		t.Fatalf("only %d bytes", b.Len())
	}
	recs := readAll(t, b.String(), "long.jsonl", FormatAuto)
	if len(recs) != 6000 || recs[5999].Source != "long.jsonl:3#1999" || recs[5999].Fields.ID != str("2-1999") {
		t.Fatalf("%d records, last %+v", len(recs), recs[len(recs)-1])
	}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Source, r.Err)
		}
	}
}

func TestReadJSONEmailAndFields(t *testing.T) {
	body := `"license":{"licenseList":{"licenses":[{"id":7,"status":"ACTIVE","price":1.50,"recurring":true,"paymentMethod":null,"stopDate":"","extra":{"a":1}}]}}`
	for _, c := range []struct {
		name, text, file, want string
	}{
		{"wrapper email", `{"email":"A@x.org",` + body + `}`, "whatever.jsonl", "A@x.org"},
		{"wrapper url", `{"url":"https://boox.fi/api/user/b%40x.org/license?Service=s",` + body + `}`, "-", "b@x.org"},
		{"file name", `{` + body + `}`, "dir/c@x.org.json", "c@x.org"},
		{"escaped file name", `{` + body + `}`, "dir/d%40x.org.json", "d@x.org"},
		{"wrapper beats file name", `{"email":"e@x.org",` + body + `}`, "dir/c@x.org.json", "e@x.org"},
		{"nothing", `{` + body + `}`, "dir/part-1.json", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := readAll(t, c.text, c.file, FormatAuto)
			if len(recs) != 1 || recs[0].Err != nil {
				t.Fatalf("records: %+v", recs)
			}
			r := recs[0]
			if r.Email != c.want {
				t.Errorf("e-mail %q, want %q", r.Email, c.want)
			}
			f := r.Fields
			if f.ID != num("7") || f.Status != str("ACTIVE") || f.Price != num("1.50") || f.Recurring != boolean(true) ||
				f.PaymentMethod.Set || f.StopDate != str("") || f.StartDate.Set {
				t.Errorf("fields %+v", f)
			}
			if !strings.Contains(string(r.Raw), `"extra":{"a":1}`) {
				t.Errorf("raw %s", r.Raw)
			}
		})
	}
	recs := readAll(t, `{"url":"https://boox.fi/api/products",`+body+`}`, "f", FormatJSON)
	if len(recs) != 1 || recs[0].Err == nil || !strings.Contains(recs[0].Err.Error(), "not a legacy request URL") {
		t.Errorf("bad url: %+v", recs)
	}
}

func TestReadCSV(t *testing.T) {
	header := "email,id,status,startDate,stopDate,purchaseDate,price,currency,paymentMethod,recurring,productUrl\n"
	text := "\ufeff" + header +
		"a@x,1,active,2024-01-01 00:00:00,2025-01-01 00:00:00,2024-01-01 00:00:00,\"1,5\",EUR,,true,https://x/product/2\n" +
		"\n" +
		"a@x,2,active,\"2024-01-01\n00:00:00\",,,1,EUR,,true,https://x/product/2\n" +
		"a@x,3,active\n" +
		"a@x,4,act\"ive,,,,,,,,\n" +
		"b@x,5,active,2024-01-01 00:00:00,2025-01-01 00:00:00,2024-01-01 00:00:00,1,EUR,card,1,https://x/product/2\n"
	recs := readAll(t, text, "l.csv", FormatAuto)
	if got, want := sources(recs), []string{"l.csv:2", "l.csv:4", "l.csv:6 ERR", "l.csv:7 ERR", "l.csv:8"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("records %q, want %q", got, want)
	}
	if recs[0].Email != "a@x" || recs[0].Fields.Price != str("1,5") || recs[0].Fields.PaymentMethod.Set || recs[0].Fields.Recurring != str("true") {
		t.Errorf("record 1: %+v", recs[0])
	}
	if !strings.HasPrefix(string(recs[0].Raw), `{"email":"a@x","id":"1",`) {
		t.Errorf("raw %s", recs[0].Raw)
	}
	if recs[1].Fields.StartDate != str("2024-01-01\n00:00:00") || recs[1].Fields.StopDate.Set {
		t.Errorf("record 2: %+v", recs[1].Fields)
	}
	if !strings.Contains(recs[2].Err.Error(), "3 fields, but the header has 11") || string(recs[2].Raw) != `["a@x","3","active"]` {
		t.Errorf("record 3: %v %s", recs[2].Err, recs[2].Raw)
	}
	if !strings.Contains(recs[3].Err.Error(), "malformed CSV") {
		t.Errorf("record 4: %v", recs[3].Err)
	}

	for _, c := range []struct{ name, header, want string }{
		{"unknown column", "email,id,status,startDate,stopDate,purchaseDate,price,currency,recurring,productUrl,colour", `unknown column "colour"`},
		{"repeated column", "email,id,id,status,startDate,stopDate,purchaseDate,price,currency,recurring,productUrl", "column id appears twice"},
		{"missing columns", "email,id,status", "lacks the columns startDate, stopDate, purchaseDate, price, currency, recurring, productUrl (or productId)"},
		{"empty", "", "empty CSV file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ReadCSV(strings.NewReader(c.header), "h.csv", func(*Record) error { return nil })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	// Any order, any case, productId instead of productUrl.
	recs = readAll(t, "PRODUCTID,Recurring,currency,price,purchasedate,stopdate,startdate,status,id,email\n2,false,EUR,1,a,b,c,d,9,z@x\n", "o.csv", FormatCSV)
	if len(recs) != 1 || recs[0].Fields.ProductID != str("2") || recs[0].Email != "z@x" || recs[0].Fields.ID != str("9") {
		t.Errorf("reordered: %+v", recs)
	}
}

func TestReadStopsOnEmitError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	err := Read(strings.NewReader(`{"email":"a@x","license":{"licenseList":{"licenses":[{},{},{}]}}}`), "f", FormatAuto, func(*Record) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("err %v after %d records", err, n)
	}
}

func TestMappings(t *testing.T) {
	users, err := ReadUsers(strings.NewReader("\ufeffuser_id,Email,name\n41, Alice@Example.com ,Alice\n41,alice2@example.com,\n"), "u.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(users, map[string]string{"alice@example.com": "41", "alice2@example.com": "41"}) {
		t.Errorf("users %v", users)
	}
	products, err := ReadProducts(strings.NewReader("legacy_product_id,product_id\n2,7\nsport-hd,9\n2,7\n"), "p.csv")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(products, map[string]int64{"2": 7, "sport-hd": 9}) {
		t.Errorf("products %v", products)
	}
	for _, c := range []struct{ name, text, want string }{
		{"no header", "", "empty file"},
		{"wrong header", "mail,user\na,1\n", "must name the columns email and user_id"},
		{"bad user id", "email,user_id\na@x,has space\n", `u.csv:2: user_id "has space" is not a v4 user id`},
		{"empty e-mail", "email,user_id\n,41\n", "u.csv:2: empty e-mail"},
		{"conflict", "email,user_id\na@x,1\nA@X,2\n", `u.csv:3: e-mail "A@X" is mapped to both 1 and 2`},
		{"short row", "user_id,x,email\n1\n", "u.csv:2: 1 fields"},
	} {
		t.Run("users "+c.name, func(t *testing.T) {
			_, err := ReadUsers(strings.NewReader(c.text), "u.csv")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	for _, c := range []struct{ name, text, want string }{
		{"bad id", "legacy_product_id,product_id\n2,seven\n", `p.csv:2: product_id "seven" is not a positive integer`},
		{"zero id", "legacy_product_id,product_id\n2,0\n", "not a positive integer"},
		{"conflict", "legacy_product_id,product_id\n2,7\n2,8\n", `p.csv:3: legacy product "2" is mapped to both 7 and 8`},
		{"empty legacy id", "legacy_product_id,product_id\n,8\n", "empty legacy_product_id"},
	} {
		t.Run("products "+c.name, func(t *testing.T) {
			_, err := ReadProducts(strings.NewReader(c.text), "p.csv")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestInputs(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"b.json", "a.csv", "c.txt", ".hidden.json", "sub/d.ndjson", ".git/e.json", "sub/f.jsonl"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel := func(ins []Input) []string {
		var out []string
		for _, in := range ins {
			r, _ := filepath.Rel(dir, in.Path)
			if in.Path == "-" {
				r = "-"
			}
			out = append(out, r+" "+string(in.Format))
		}
		return out
	}
	ins, err := Inputs([]string{dir, "-", filepath.Join(dir, "c.txt")}, FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.csv csv", "b.json json", "sub/d.ndjson json", "sub/f.jsonl json", "- auto", "c.txt auto"}
	if got := rel(ins); !reflect.DeepEqual(got, want) {
		t.Errorf("auto: %q, want %q", got, want)
	}
	ins, err = Inputs([]string{dir}, FormatCSV)
	if err != nil || !reflect.DeepEqual(rel(ins), []string{"a.csv csv"}) {
		t.Errorf("csv: %q %v", rel(ins), err)
	}
	if _, err := Inputs([]string{"-", "-"}, FormatAuto); err == nil {
		t.Error("stdin twice accepted")
	}
	if _, err := Inputs([]string{filepath.Join(dir, "missing")}, FormatAuto); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := Inputs([]string{filepath.Join(dir, "sub")}, FormatCSV); err == nil || !strings.Contains(err.Error(), "holds no .csv files") {
		t.Errorf("empty dir: %v", err)
	}
}
