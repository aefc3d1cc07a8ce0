package legacy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor"
)

func utc(y int, mo time.Month, d, h, mi, s int) int64 {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC).Unix()
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestParseLocalTimeDST(t *testing.T) {
	for _, c := range []struct {
		zone, in string
		want     int64
	}{
		{"UTC", "2013-01-11 16:22:13", utc(2013, 1, 11, 16, 22, 13)},
		{"UTC", "1969-12-31 23:59:59", -1},
		{"UTC", "2024-02-29 00:00:00", utc(2024, 2, 29, 0, 0, 0)},

		// Europe/Helsinki, spring 2024: at 03:00 EET (+2) clocks jump to
		// 04:00 EEST (+3). Times in the gap move forward by one hour.
		{"Europe/Helsinki", "2024-03-31 02:59:59", utc(2024, 3, 31, 0, 59, 59)},
		{"Europe/Helsinki", "2024-03-31 03:00:00", utc(2024, 3, 31, 1, 0, 0)},  // = 04:00 EEST
		{"Europe/Helsinki", "2024-03-31 03:30:00", utc(2024, 3, 31, 1, 30, 0)}, // = 04:30 EEST
		{"Europe/Helsinki", "2024-03-31 03:59:59", utc(2024, 3, 31, 1, 59, 59)},
		{"Europe/Helsinki", "2024-03-31 04:00:00", utc(2024, 3, 31, 1, 0, 0)},
		{"Europe/Helsinki", "2024-03-31 04:30:00", utc(2024, 3, 31, 1, 30, 0)},
		// Autumn 2024: at 04:00 EEST (+3) clocks go back to 03:00 EET (+2).
		// Times in the overlap take the earlier instant (EEST).
		{"Europe/Helsinki", "2024-10-27 02:59:59", utc(2024, 10, 26, 23, 59, 59)},
		{"Europe/Helsinki", "2024-10-27 03:00:00", utc(2024, 10, 27, 0, 0, 0)},
		{"Europe/Helsinki", "2024-10-27 03:30:00", utc(2024, 10, 27, 0, 30, 0)},
		{"Europe/Helsinki", "2024-10-27 03:59:59", utc(2024, 10, 27, 0, 59, 59)},
		{"Europe/Helsinki", "2024-10-27 04:00:00", utc(2024, 10, 27, 2, 0, 0)},
		{"Europe/Helsinki", "2013-01-11 16:22:13", utc(2013, 1, 11, 14, 22, 13)},
		{"Europe/Helsinki", "2013-07-11 16:22:13", utc(2013, 7, 11, 13, 22, 13)},

		// America/New_York: gap 2024-03-10 02:00-03:00, overlap
		// 2024-11-03 01:00-02:00.
		{"America/New_York", "2024-03-10 02:30:00", utc(2024, 3, 10, 7, 30, 0)}, // = 03:30 EDT
		{"America/New_York", "2024-11-03 01:30:00", utc(2024, 11, 3, 5, 30, 0)}, // 01:30 EDT
		{"America/New_York", "2024-11-03 02:00:00", utc(2024, 11, 3, 7, 0, 0)},

		// Australia/Lord_Howe moves its clocks by half an hour: +10:30 and
		// +11. Gap 2024-10-06 02:00-02:30, overlap 2024-04-07 01:30-02:00.
		{"Australia/Lord_Howe", "2024-10-06 02:15:00", utc(2024, 10, 5, 15, 45, 0)}, // = 02:45 +11
		{"Australia/Lord_Howe", "2024-04-07 01:45:00", utc(2024, 4, 6, 14, 45, 0)},  // 01:45 +11
		{"Australia/Lord_Howe", "2024-04-07 02:00:00", utc(2024, 4, 6, 15, 30, 0)},

		// America/Santiago changes at midnight: 2024-09-08 00:00 (-4) is
		// 01:00 (-3), so the day starts with a gap.
		{"America/Santiago", "2024-09-08 00:30:00", utc(2024, 9, 8, 4, 30, 0)}, // = 01:30 -03
		{"America/Santiago", "2024-09-07 23:59:59", utc(2024, 9, 8, 3, 59, 59)},
	} {
		got, err := ParseLocalTime(c.in, mustLoad(t, c.zone))
		if err != nil {
			t.Errorf("%s %s: %v", c.zone, c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s %s = %s, want %s", c.zone, c.in, time.Unix(got, 0).UTC(), time.Unix(c.want, 0).UTC())
		}
	}
}

// TestParseLocalTimeProperties checks every quarter hour of two years in
// several zones against the rules: a time that exists reads back as
// itself and no earlier instant reads the same; a time in a gap is moved
// forward by exactly the gap.
func TestParseLocalTimeProperties(t *testing.T) {
	zones := []string{"Europe/Helsinki", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Tokyo", "Europe/Dublin"}
	if testing.Short() {
		zones = zones[:2]
	}
	for _, zone := range zones {
		loc := mustLoad(t, zone)
		gaps, overlaps := 0, 0
		for w := utc(2023, 1, 1, 0, 0, 0); w < utc(2025, 1, 1, 0, 0, 0); w += 900 {
			s := time.Unix(w, 0).UTC().Format(LocalTimeLayout)
			got, err := ParseLocalTime(s, loc)
			if err != nil {
				t.Fatal(err)
			}
			back := time.Unix(got, 0).In(loc).Format(LocalTimeLayout)
			if back == s {
				for _, d := range []int64{900, 1800, 3600, 7200} {
					if time.Unix(got-d, 0).In(loc).Format(LocalTimeLayout) == s {
						t.Fatalf("%s %s = %d, but %d seconds earlier reads the same", zone, s, got, d)
					}
				}
				if time.Unix(got+3600, 0).In(loc).Format(LocalTimeLayout) == s || time.Unix(got+1800, 0).In(loc).Format(LocalTimeLayout) == s {
					overlaps++
				}
				continue
			}
			gaps++
			_, after := time.Unix(got, 0).In(loc).Zone()
			_, before := time.Unix(got-3*3600, 0).In(loc).Zone()
			backWall, _ := parseWall(back)
			if shift := backWall - w; shift != int64(after-before) || shift <= 0 {
				t.Fatalf("%s %s (in a gap) reads back as %s: shifted by %ds, want the gap %ds", zone, s, back, shift, after-before)
			}
		}
		if zone != "Asia/Tokyo" && (gaps == 0 || overlaps == 0) {
			t.Errorf("%s: %d gap and %d overlap times in two years; the test does not test", zone, gaps, overlaps)
		}
	}
}

func TestParseLocalTimeRejects(t *testing.T) {
	for _, s := range []string{
		"", "2013-01-11", "2013-01-11T16:22:13", "2013/01/11 16:22:13", "2013-01-11 16:22:13.5",
		"2013-1-11 16:22:13", " 2013-01-11 16:22:13", "2013-01-11 16:22:13 ", "0000-01-01 00:00:00",
		"2013-00-11 16:22:13", "2013-13-11 16:22:13", "2013-02-29 00:00:00", "2013-04-31 00:00:00",
		"2013-01-00 00:00:00", "2013-01-11 24:00:00", "2013-01-11 23:60:00", "2013-01-11 23:59:60",
		"yesterday", "2013-01-1x 16:22:13", "２０１３-01-11 16:22",
	} {
		if got, err := ParseLocalTime(s, time.UTC); err == nil {
			t.Errorf("ParseLocalTime(%q) = %d, want an error", s, got)
		}
	}
}

func TestParsePrice(t *testing.T) {
	for _, c := range []struct {
		text, cur string
		want      int64
		err       string
	}{
		{"1.0", "EUR", 100, ""},
		{"12.5", "EUR", 1250, ""},
		{"12.50", "EUR", 1250, ""},
		{"9.99", "EUR", 999, ""},
		{"0", "EUR", 0, ""},
		{"0.01", "EUR", 1, ""},
		{"2.500", "EUR", 250, ""},
		{"00012.30", "EUR", 1230, ""},
		{"1e2", "EUR", 10000, ""},
		{"1E2", "EUR", 10000, ""},
		{"1.25e1", "EUR", 1250, ""},
		{"125e-2", "EUR", 125, ""},
		{"1.5e+1", "EUR", 1500, ""},
		{"92233720368547758.07", "EUR", 9223372036854775807, ""},
		{"1.234", "EUR", 0, "more decimals than EUR has minor digits (2)"},
		{"1.2555e1", "EUR", 0, "more decimals"}, {"1.255e1", "EUR", 1255, ""},
		{"1e-3", "EUR", 0, "more decimals"},
		{"92233720368547758.08", "EUR", 0, "too large"},
		{"1e100", "EUR", 0, "too large"},
		{"1e101", "EUR", 0, "exponent out of range"},
		{"1,5", "EUR", 0, "decimal separator is a dot"},
		{"abc", "EUR", 0, "not a decimal number"},
		{"-1", "EUR", 0, "negative"},
		{"-0.00", "EUR", 0, "negative"},
		{"+1", "EUR", 0, "not a decimal number"},
		{".5", "EUR", 0, "not a decimal number"},
		{"5.", "EUR", 0, "not a decimal number"},
		{" 1", "EUR", 0, "not a decimal number"},
		{"1 000", "EUR", 0, "not a decimal number"},
		{"", "EUR", 0, "not a decimal number"},
		{"NaN", "EUR", 0, "not a decimal number"},
		{"0x10", "EUR", 0, "not a decimal number"},
		{"1500", "JPY", 1500, ""},
		{"1500.0", "JPY", 1500, ""},
		{"1e3", "JPY", 1000, ""},
		{"1.5", "JPY", 0, "more decimals than JPY has minor digits (0)"},
		{"0.1", "JPY", 0, "more decimals"},
		{"1.234", "BHD", 1234, ""},
		{"0.5", "BHD", 500, ""},
		{"12", "BHD", 12000, ""},
		{"1.2345", "BHD", 0, "more decimals than BHD has minor digits (3)"},
		{"1.2345", "CLF", 12345, ""},
		{"1.0", "XYZ", 0, "not an ISO 4217 code"},
	} {
		got, err := ParsePrice(c.text, c.cur)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("ParsePrice(%q, %s): %v", c.text, c.cur, err)
		case c.err == "" && got != c.want:
			t.Errorf("ParsePrice(%q, %s) = %d, want %d", c.text, c.cur, got, c.want)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("ParsePrice(%q, %s) = %d, %v; want an error with %q", c.text, c.cur, got, err, c.err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for in, want := range map[string]licensor.Status{
		"active": licensor.StatusActive, "ACTIVE": licensor.StatusActive, "Active": licensor.StatusActive,
		"suspended": licensor.StatusSuspended, "SUSPENDED": licensor.StatusSuspended, "sUsPeNdEd": licensor.StatusSuspended,
		"expired": licensor.StatusExpired, "EXPIRED": licensor.StatusExpired, "Expired": licensor.StatusExpired,
	} {
		if got, err := ParseStatus(in); err != nil || got != want {
			t.Errorf("ParseStatus(%q) = %q, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "pending", "cancelled", "active ", " active", "SUSPENDEDADMIN", "PROCESSING", "actived", "inactive"} {
		if got, err := ParseStatus(in); err == nil {
			t.Errorf("ParseStatus(%q) = %q, want an error", in, got)
		}
	}
}

func TestProductFromURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://boox.fi/api/user/a@b.c/product/2?service=sevice1": "2",
		"https://boox.fi/api/user/a@b.c/product/2/":                "2",
		"/api/user/x/product/sport-hd":                             "sport-hd",
		"https://boox.fi/api/user/x/product/a%20b":                 "a b",
		"https://boox.fi/api/user/x/product/7#frag":                "7",
	} {
		if got, err := ProductFromURL(in); err != nil || got != want {
			t.Errorf("ProductFromURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "https://boox.fi/api/user/x/products/2", "https://boox.fi/api/user/x/product/", "https://boox.fi/product",
		"https://boox.fi/api/user/x/product/2/license", "http://[::1", "2"} {
		if got, err := ProductFromURL(in); err == nil {
			t.Errorf("ProductFromURL(%q) = %q, want an error", in, got)
		}
	}
}

func TestOrderIDAndService(t *testing.T) {
	if got := OrderID("boox", "17"); got != "legacy:boox:17" {
		t.Errorf("OrderID = %q", got)
	}
	for _, s := range []string{"legacy", "boox.fi", "service_1", "a-b"} {
		if !ValidService(s) {
			t.Errorf("ValidService(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a:b", "a b", strings.Repeat("x", 65), "ü"} {
		if ValidService(s) {
			t.Errorf("ValidService(%q) = true", s)
		}
	}
	if _, err := NewConverter(nil, nil, nil, "a:b"); err == nil {
		t.Error("NewConverter accepted service a:b")
	}
}

func str(s string) Field { return Field{Text: s, Kind: KindString, Set: true} }
func num(s string) Field { return Field{Text: s, Kind: KindNumber, Set: true} }
func boolean(b bool) Field {
	if b {
		return Field{Text: "true", Kind: KindBool, Set: true}
	}
	return Field{Text: "false", Kind: KindBool, Set: true}
}

func goodRecord() Record {
	return Record{Source: "t.json:1#0", Email: "Alice@Example.com", Fields: Fields{
		ID: str("1"), Status: str("active"), StartDate: str("2013-01-11 16:22:13"), StopDate: str("2013-02-11 16:22:13"),
		PurchaseDate: str("2013-01-11 16:22:22"), Currency: str("EUR"), PaymentMethod: str("credit_card"),
		Price: num("1.0"), ProductURL: str("https://boox.fi/api/user/alice@example.com/product/2?service=sevice1"),
		Recurring: boolean(false),
	}}
}

func newTestConverter(t *testing.T, zone, service string) *Converter {
	t.Helper()
	c, err := NewConverter(map[string]string{"alice@example.com": "41", "bob@example.com": "42"},
		map[string]int64{"2": 7, "3": 8}, mustLoad(t, zone), service)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

func TestConvert(t *testing.T) {
	c := newTestConverter(t, "Europe/Helsinki", "boox")
	rec := goodRecord()
	got, err := c.Convert(&rec)
	if err != nil {
		t.Fatal(err)
	}
	want := licensor.LicenseDraft{
		UserID: "41", ProductID: 7, Status: ptr(licensor.StatusActive),
		StartDate: ptr(utc(2013, 1, 11, 14, 22, 13)), StopDate: ptr(utc(2013, 2, 11, 14, 22, 13)),
		OrderID: ptr("legacy:boox:1"), Recurring: ptr(false), PriceAmount: ptr(int64(100)), PriceCurrency: ptr("EUR"),
		PurchaseTimestamp: ptr(utc(2013, 1, 11, 14, 22, 22)), PaymentMethod: ptr("credit_card"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Convert:\n got %+v\nwant %+v", got, want)
	}

	// Variants that convert, and what they change.
	rec = goodRecord()
	rec.Fields.ID = num("2")
	rec.Fields.Status = str("SUSPENDED")
	rec.Fields.Currency = str("jpy")
	rec.Fields.Price = str("1500.0")
	rec.Fields.PaymentMethod = Field{}
	rec.Fields.Recurring = str("TRUE")
	rec.Fields.ProductURL = Field{}
	rec.Fields.ProductID = str("3")
	got, err = c.Convert(&rec)
	if err != nil {
		t.Fatal(err)
	}
	if *got.OrderID != "legacy:boox:2" || *got.Status != licensor.StatusSuspended || *got.PriceCurrency != "JPY" ||
		*got.PriceAmount != 1500 || got.PaymentMethod != nil || !*got.Recurring || got.ProductID != 8 {
		t.Errorf("variant: %+v", got)
	}
}

func TestConvertRejects(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(r *Record)
		want   []string // substrings of the reason
	}{
		{"read error", func(r *Record) { r.Err = errors.New("malformed JSON: boom") }, []string{"malformed JSON: boom"}},
		{"no id", func(r *Record) { r.Fields.ID = Field{} }, []string{"id is missing"}},
		{"fraction id", func(r *Record) { r.Fields.ID = num("1.5") }, []string{"id 1.5 is not an integer"}},
		{"bool id", func(r *Record) { r.Fields.ID = boolean(true) }, []string{"id must be"}},
		{"empty id", func(r *Record) { r.Fields.ID = str("") }, []string{"id is empty"}},
		{"NUL in id", func(r *Record) { r.Fields.ID = str("7\x00") }, []string{"id \"7\\x00\" contains a NUL"}},
		{"long multibyte id", func(r *Record) { r.Fields.ID = str(strings.Repeat("é", 128-len("legacy:legacy:")+1)) }, []string{"longer than 128"}},
		{"long id", func(r *Record) { r.Fields.ID = str(strings.Repeat("9", 120)) }, []string{"longer than 128"}},
		{"no e-mail", func(r *Record) { r.Email = "" }, []string{"no user e-mail"}},
		{"unknown e-mail", func(r *Record) { r.Email = "carol@example.com" }, []string{`"carol@example.com" is not in the users mapping`}},
		{"unknown product", func(r *Record) { r.Fields.ProductURL = str("https://x/product/99") }, []string{`legacy product "99" is not in the products mapping`}},
		{"bad product URL", func(r *Record) { r.Fields.ProductURL = str("https://x/catalog/2") }, []string{"does not end in /product/<id>"}},
		{"no product", func(r *Record) { r.Fields.ProductURL = Field{} }, []string{"productUrl is missing"}},
		{"unknown status", func(r *Record) { r.Fields.Status = str("pending") }, []string{`status "pending" is not one of`}},
		{"no status", func(r *Record) { r.Fields.Status = Field{} }, []string{"status is missing"}},
		{"numeric status", func(r *Record) { r.Fields.Status = num("1") }, []string{"status must be a string"}},
		{"bad start", func(r *Record) { r.Fields.StartDate = str("2013-02-30 10:00:00") }, []string{"startDate: ", "has no day 30"}},
		{"no stop", func(r *Record) { r.Fields.StopDate = Field{} }, []string{"stopDate is missing"}},
		{"stop before start", func(r *Record) { r.Fields.StopDate = str("2013-01-11 16:22:13") }, []string{"stopDate 2013-01-11 16:22:13 is not after startDate"}},
		{"bad purchase", func(r *Record) { r.Fields.PurchaseDate = str("11.01.2013") }, []string{"purchaseDate: "}},
		{"comma price", func(r *Record) { r.Fields.Price = str("1,5") }, []string{"decimal separator is a dot"}},
		{"word price", func(r *Record) { r.Fields.Price = str("abc") }, []string{`price "abc" is not a decimal number`}},
		{"negative price", func(r *Record) { r.Fields.Price = num("-1.0") }, []string{"negative"}},
		{"precise price", func(r *Record) { r.Fields.Price = num("1.001") }, []string{"more decimals"}},
		{"no price", func(r *Record) { r.Fields.Price = Field{} }, []string{"price is missing"}},
		{"bool price", func(r *Record) { r.Fields.Price = boolean(true) }, []string{"price must be a number"}},
		{"no currency", func(r *Record) { r.Fields.Currency = Field{} }, []string{"currency is missing"}},
		{"no price or currency", func(r *Record) { r.Fields.Currency, r.Fields.Price = Field{}, Field{} }, []string{"price and currency are missing"}},
		{"unknown currency", func(r *Record) { r.Fields.Currency = str("XYZ") }, []string{`currency "XYZ" is not an ISO 4217 code`}},
		{"long payment method", func(r *Record) { r.Fields.PaymentMethod = str(strings.Repeat("x", 65)) }, []string{"longer than 64 characters"}},
		{"65 characters payment method", func(r *Record) { r.Fields.PaymentMethod = str(strings.Repeat("é", 65)) }, []string{"longer than 64 characters"}},
		{"NUL in payment method", func(r *Record) { r.Fields.PaymentMethod = str("card\x00") }, []string{"contains a NUL"}},
		{"lone surrogate in payment method", func(r *Record) {
			r.Fields.PaymentMethod = Field{Text: "card\ufffd", Kind: KindString, Set: true, Problem: loneSurrogate([]byte(`"card\ud800"`))}
		}, []string{`paymentMethod escapes the UTF-16 high surrogate \ud800`}},
		{"numeric payment method", func(r *Record) { r.Fields.PaymentMethod = num("3") }, []string{"paymentMethod must be a string"}},
		{"no recurring", func(r *Record) { r.Fields.Recurring = Field{} }, []string{"recurring is missing"}},
		{"bad recurring", func(r *Record) { r.Fields.Recurring = str("sometimes") }, []string{`recurring "sometimes" is not true or false`}},
		{"many problems", func(r *Record) {
			r.Fields.Status = str("x")
			r.Fields.Price = str("1,5")
			r.Email = "nobody@example.com"
		}, []string{"status", "decimal separator", "nobody@example.com"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conv := newTestConverter(t, "UTC", "legacy")
			rec := goodRecord()
			c.change(&rec)
			d, err := conv.Convert(&rec)
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("Convert = %+v, %v; want a *Rejection", d, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("reason %q lacks %q", err, w)
				}
			}
			if len(c.want) > 1 && len(rej.Problems) < 2 && c.name == "many problems" {
				t.Errorf("only %d problems reported: %v", len(rej.Problems), rej.Problems)
			}
		})
	}
}

// TestConvertServerStrings: what the server accepts in a string
// attribute, the importer accepts too (the regression: a line break in
// paymentMethod was refused as "at most 64 characters").
func TestConvertServerStrings(t *testing.T) {
	for _, pm := range []string{"card\nvisa", "tab\there", strings.Repeat("é", 64), strings.Repeat("💳", 64), "\u2028", "", "\x7f\x01"} {
		conv := newTestConverter(t, "UTC", "legacy")
		rec := goodRecord()
		rec.Fields.PaymentMethod = str(pm)
		rec.Fields.ID = str("id\twith a tab")
		d, err := conv.Convert(&rec)
		if err != nil || d.PaymentMethod == nil || *d.PaymentMethod != pm || *d.OrderID != "legacy:legacy:id\twith a tab" {
			t.Errorf("paymentMethod %q: %+v, %v", pm, d, err)
		}
	}
	for _, c := range []struct{ raw, want string }{
		{`"a\ud83d\udcb3b"`, ""},
		{`"\\ud800"`, ""}, // an escaped backslash, then text
		{`"\ud800"`, "high surrogate"},
		{`"\ud800\u0041"`, "high surrogate"},
		{`"x\udc00"`, "low surrogate"},
		{`"\uD83D"`, "high surrogate"},
	} {
		if got := loneSurrogate([]byte(c.raw)); (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("loneSurrogate(%s) = %q, want %q", c.raw, got, c.want)
		}
	}
}

func TestConvertDuplicates(t *testing.T) {
	c := newTestConverter(t, "UTC", "legacy")
	first := goodRecord()
	first.Fields.Status = str("bogus") // the first is rejected for another reason
	if _, err := c.Convert(&first); err == nil {
		t.Fatal("bogus status accepted")
	}
	second := goodRecord()
	second.Source = "t.json:9#3"
	_, err := c.Convert(&second)
	if err == nil || !strings.Contains(err.Error(), `duplicate: legacy license "1" was already read at t.json:1#0`) {
		t.Fatalf("second record: %v", err)
	}
	// A numeric id and a string id with the same text are the same license.
	third := goodRecord()
	third.Fields.ID = num("1")
	if _, err := c.Convert(&third); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("numeric duplicate: %v", err)
	}
	other := goodRecord()
	other.Fields.ID = str("2")
	if _, err := c.Convert(&other); err != nil {
		t.Fatalf("another id: %v", err)
	}
}
