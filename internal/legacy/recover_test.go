package legacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// doc is a one-license legacy document wrapped with an e-mail, on one line.
func doc(id string) string {
	return `{"email":"a@x","license":{"licenseList":{"licenses":[{"id":"` + id + `"}]}}}`
}

// ids lists the legacy ids of the records read without error, and the
// sources of those read with one.
func ids(recs []*Record) (good, bad []string) {
	for _, r := range recs {
		if r.Err != nil {
			bad = append(bad, r.Source)
		} else {
			good = append(good, r.Fields.ID.Text)
		}
	}
	return good, bad
}

// TestReadJSONResync: a broken document costs that document only. The
// first case is the regression of issue 11: a cut-off line opening an
// array swallowed the 41 documents after it.
func TestReadJSONResync(t *testing.T) {
	var after41 strings.Builder
	var want41 []string
	for i := range 41 {
		after41.WriteString(doc(string(rune('A'+i%26))+strings.Repeat("x", i/26)) + "\n")
		want41 = append(want41, string(rune('A'+i%26))+strings.Repeat("x", i/26))
	}
	for _, c := range []struct {
		name     string
		text     string
		good     []string
		bad      []string
		inReason string // of the first bad record
	}{
		{"cut-off array opener", `[{"email":"a@x","license":` + "\n" + after41.String(), want41, []string{"f.json:1"}, "does not end before line 2"},
		{"cut-off document", `{"email":"a@x","license":{"licenseList":` + "\n" + doc("1") + "\n" + doc("2") + "\n",
			[]string{"1", "2"}, []string{"f.json:1"}, "does not end before line 2"},
		{"string open at the end of the line", `{"email":"a@x","license":{"licenseList":{"licenses":[{"id":"1}]}}}` + "\n" + doc("2") + "\n",
			[]string{"2"}, []string{"f.json:1"}, "a string is still open at the end of line 1"},
		{"mismatched bracket", `{"email":"a@x","license":{"licenseList":{"licenses":[{"id":"1"}}}}` + "\n" + doc("2") + "\n",
			[]string{"2"}, []string{"f.json:1"}, `'}' at line 1 does not close the '['`},
		{"syntax error, balanced", `{"email":"a@x",,"license":{}}` + "\n" + doc("2") + "\n", []string{"2"}, []string{"f.json:1"}, "malformed JSON"},
		{"array, an element a line, one cut", "[\n" + doc("1") + ",\n" + `{"email":"a@x","lic` + "\n" + doc("3") + "\n]\n",
			[]string{"1", "3"}, []string{"f.json:3"}, "is cut off at line 4"},
		{"array, last element cut before ]", "[\n" + doc("1") + ",\n" + `{"email":"a@x","lic` + "\n]\n",
			[]string{"1"}, []string{"f.json:3"}, "is cut off at line 4"},
		{"indented array, an element cut", "[\n  {\n    \"email\": \"a@x\",\n    \"license\": {\"licenseList\": {\"licenses\": [\n      {\"id\": \"1\"}\n    ]}}\n  },\n  {\n    \"email\": \"a@x\",\n    \"license\": {\"licenseList\": {\n  {\n    \"email\": \"a@x\", \"license\": {\"licenseList\": {\"licenses\": [{\"id\": \"3\"}]}}\n  }\n]\n",
			[]string{"1", "3"}, []string{"f.json:8"}, "does not end before line 11"},
		{"array not closed", "[\n" + doc("1") + ",\n" + doc("2") + ",\n", []string{"1", "2"}, []string{"f.json:1"}, "the array opened at line 1 is not closed: the input is cut off after 2 documents"},
		{"array on one line, an element broken", "[" + doc("1") + `,{"email":"a@x","license":{"x":"y}}},` + doc("3") + "]\n" + doc("4") + "\n",
			[]string{"1", "4"}, []string{"f.json:1"}, "string is still open"},
		{"garbage between documents", doc("1") + "\nnot json\n" + doc("2") + "\n", []string{"1", "2"}, []string{"f.json:2"}, "not a JSON document"},
		{"a stray ]", doc("1") + "\n]\n" + doc("2") + "\n", []string{"1", "2"}, []string{"f.json:2"}, "not a JSON document"},
		{"pretty documents, one cut", "{\n  \"email\": \"a@x\",\n  \"license\": {\"licenseList\": {\"licenses\": [\n    {\"id\": \"1\"}\n  ]}}\n}\n{\n  \"email\": \"a@x\",\n  \"license\": {\n{\n  \"email\": \"a@x\", \"license\": {\"licenseList\": {\"licenses\": [{\"id\": \"3\"}]}}\n}\n",
			[]string{"1", "3"}, []string{"f.json:7"}, "does not end before line 10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := readAll(t, c.text, "f.json", FormatJSON)
			good, bad := ids(recs)
			if !reflect.DeepEqual(good, c.good) || !reflect.DeepEqual(bad, c.bad) {
				t.Fatalf("good %q bad %q, want %q and %q", good, bad, c.good, c.bad)
			}
			for _, r := range recs {
				if r.Err != nil {
					if !strings.Contains(r.Err.Error(), c.inReason) {
						t.Errorf("reason %q lacks %q", r.Err, c.inReason)
					}
					if len(r.Raw) == 0 {
						t.Errorf("no raw text")
					}
					break
				}
			}
		})
	}
}

// TestReadCSVQuotes: an unterminated quote costs its line, not the rows
// after it; a quoted field may still hold line breaks.
func TestReadCSVQuotes(t *testing.T) {
	const header = "email,id,status,startDate,stopDate,purchaseDate,price,currency,paymentMethod,recurring,productId\n"
	row := func(id, pm string) string {
		return "a@x," + id + ",active,2024-01-01 00:00:00,2025-01-01 00:00:00,2024-01-01 00:00:00,1,EUR," + pm + ",true,1\n"
	}
	var rows strings.Builder
	var want []string
	for i := range 10 {
		id := string(rune('a' + i))
		rows.WriteString(row(id, "card"))
		want = append(want, id)
	}
	for _, c := range []struct {
		name     string
		text     string
		good     []string
		bad      []string
		inReason string
		pm       map[string]string // id → payment method
	}{
		{"unterminated quote, no quote after", header + row("0", `"card`) + rows.String(), want, []string{"f.csv:2"}, "still open at the end of the input", nil},
		{"unterminated quote, quotes after", header + row("0", `"card`) + row("1", `"a,b"`) + row("2", "x") + row("3", `"c""d"`),
			[]string{"1", "2", "3"}, []string{"f.csv:2"}, "reading resumes at line 3", map[string]string{"1": "a,b", "3": `c"d`}},
		{"a stray quote closed by another one rows later", header + row("0", `"card`) + row("1", "x") + row("2", "y") + row("3", `""z"`),
			[]string{"1", "2"}, []string{"f.csv:2", "f.csv:5"}, "line 3, inside the quoted field, is a record of its own", nil},
		{"line break in a quoted field", header + row("0", "\"card\nvisa\"") + row("1", "x"), []string{"0", "1"}, nil, "", map[string]string{"0": "card\nvisa"}},
		{"CRLF line break in a quoted field", strings.ReplaceAll(header+row("0", "\"card\nvisa\"")+row("1", "x"), "\n", "\r\n"), []string{"0", "1"}, nil, "", map[string]string{"0": "card\nvisa"}},
		{"quote inside an unquoted field", header + row("0", `ca"rd`) + row("1", "x"), []string{"1"}, []string{"f.csv:2"}, "a quote inside a field that is not quoted", nil},
		{"text after a closing quote", header + row("0", `"card"x`) + row("1", "x"), []string{"1"}, []string{"f.csv:2"}, "after the closing quote", nil},
		{"too many lines in a quote", header + row("0", `"card`) + strings.Repeat("x\n", MaxCSVRecordLines+5) + row("1", "y"),
			[]string{"1"}, append([]string{"f.csv:2"}, func() []string {
				var s []string
				for i := range MaxCSVRecordLines + 5 {
					s = append(s, "f.csv:"+strconv.Itoa(3+i))
				}
				return s
			}()...), "still open after 64 lines", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := readAll(t, c.text, "f.csv", FormatCSV)
			good, bad := ids(recs)
			if !reflect.DeepEqual(good, c.good) || !reflect.DeepEqual(bad, c.bad) {
				t.Fatalf("good %q bad %q, want %q and %q", good, bad, c.good, c.bad)
			}
			for _, r := range recs {
				if r.Err != nil && !strings.Contains(r.Err.Error(), c.inReason) {
					t.Errorf("reason %q lacks %q", r.Err, c.inReason)
				}
				if r.Err != nil {
					break
				}
			}
			for _, r := range recs {
				if want, ok := c.pm[r.Fields.ID.Text]; ok && r.Err == nil && r.Fields.PaymentMethod.Text != want {
					t.Errorf("record %s: paymentMethod %q, want %q", r.Fields.ID.Text, r.Fields.PaymentMethod.Text, want)
				}
			}
		})
	}
}

func utf16Bytes(s string, big, bom bool) []byte {
	var b []byte
	units := utf16.Encode([]rune(s))
	if bom {
		units = append([]uint16{0xFEFF}, units...)
	}
	for _, u := range units {
		if big {
			b = append(b, byte(u>>8), byte(u))
		} else {
			b = append(b, byte(u), byte(u>>8))
		}
	}
	return b
}

func decodeAll(in []byte, enc Encoding) (string, Detected, error) {
	r, det, err := NewDecoder(bytes.NewReader(in), "f", enc)
	if err != nil {
		return "", "", err
	}
	out, err := io.ReadAll(r)
	return string(out), det, err
}

// TestDecoder: each encoding is read exactly or refused with its line;
// nothing becomes U+FFFD.
func TestDecoder(t *testing.T) {
	text := "email,x\nmüller@x,€ “quoted” 💳\n"
	for _, c := range []struct {
		name string
		in   []byte
		enc  Encoding
		want string // the text, or a substring of the error after "ERR "
		det  Detected
	}{
		{"UTF-8", []byte(text), EncodingAuto, text, "UTF-8"},
		{"UTF-8 BOM", append([]byte("\ufeff"), text...), EncodingAuto, text, "UTF-8 (byte order mark)"},
		{"UTF-16LE BOM", utf16Bytes(text, false, true), EncodingAuto, text, "UTF-16LE (byte order mark)"},
		{"UTF-16BE BOM", utf16Bytes(text, true, true), EncodingAuto, text, "UTF-16BE (byte order mark)"},
		{"UTF-16LE without BOM, named", utf16Bytes(text, false, false), EncodingUTF16LE, text, "UTF-16LE"},
		{"UTF-16LE without BOM, auto", utf16Bytes(text, false, false), EncodingAuto, "ERR looks like UTF-16LE without a byte order mark", ""},
		{"UTF-16BE without BOM, auto", utf16Bytes(text, true, false), EncodingAuto, "ERR --encoding utf-16be", ""},
		{"UTF-16 BOM, other order named", utf16Bytes(text, false, true), EncodingUTF16BE, "ERR starts with a UTF-16LE byte order mark, but --encoding utf-16be", ""},
		{"UTF-16 lone high surrogate", append(utf16Bytes("a\nb", false, true), 0x00, 0xD8, 'c', 0), EncodingAuto, "ERR f:2: UTF-16 high surrogate U+D800", ""},
		{"UTF-16 lone low surrogate", append(utf16Bytes("a\n", false, true), 0x00, 0xDC), EncodingAuto, "ERR f:2: UTF-16 low surrogate U+DC00", ""},
		{"UTF-16 odd length", append(utf16Bytes("a", false, true), 'b'), EncodingAuto, "ERR half a UTF-16 character", ""},
		{"UTF-32 BOM", []byte{0xFF, 0xFE, 0, 0, 'a', 0, 0, 0}, EncodingAuto, "ERR UTF-32 is not supported", ""},
		{"Latin-1 as UTF-8", []byte("a\nb\nm\xfcller,d\xe9bit\n"), EncodingAuto, "ERR f:3: byte 0xFC is not UTF-8, after \"m\"", ""},
		{"Latin-1 hint", []byte("m\xfcller\n"), EncodingUTF8, "ERR --encoding latin1", ""},
		{"Latin-1", []byte("m\xfcller,d\xe9bit \x80 \x93q\x94 \x81\xff\n"), EncodingLatin1, "müller,débit € “q” \u0081ÿ\n", "Latin-1 (Windows-1252)"},
		{"Latin-1 with UTF-8 BOM", append([]byte("\ufeff"), 'a'), EncodingLatin1, "ERR starts with a UTF-8 byte order mark, but --encoding latin1", ""},
		{"UTF-8 cut mid-character", []byte("ab\xe2\x82"), EncodingAuto, "ERR byte 0xE2 is not UTF-8", ""},
		{"empty", nil, EncodingAuto, "", "UTF-8"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, det, err := decodeAll(c.in, c.enc)
			if want, ok := strings.CutPrefix(c.want, "ERR "); ok {
				var ee *EncodingError
				if err == nil || !errors.As(err, &ee) || !strings.Contains(err.Error(), want) {
					t.Fatalf("got %q, %v; want an *EncodingError with %q", got, err, want)
				}
				return
			}
			if err != nil || got != c.want || det != c.det {
				t.Fatalf("got %q (%s), %v; want %q (%s)", got, det, err, c.want, c.det)
			}
		})
	}
	// A character split across reads is still one character.
	big := bytes.Repeat([]byte("é"), 100000)
	got, _, err := decodeAll(big, EncodingAuto)
	if err != nil || got != string(big) {
		t.Errorf("long UTF-8: %v", err)
	}
	got, _, err = decodeAll(utf16Bytes(strings.Repeat("💳", 50000), false, true), EncodingAuto)
	if err != nil || got != strings.Repeat("💳", 50000) {
		t.Errorf("long UTF-16: %v", err)
	}
}

// TestCheckEncoding: --encoding latin1 refuses a file that is UTF-8.
func TestCheckEncoding(t *testing.T) {
	for _, c := range []struct {
		in   string
		enc  Encoding
		want string
	}{
		{"a\nb\nmüller\n", EncodingLatin1, "f:3: the file is valid UTF-8 with non-ASCII characters"},
		{"a\nb\nm\xfcller\n", EncodingLatin1, ""},
		{"ascii only\n", EncodingLatin1, ""},
		{"a\nb\nm\xfcller\n", EncodingAuto, "f:3: byte 0xFC is not UTF-8"},
		{"müller\n", EncodingAuto, ""},
	} {
		_, err := CheckEncoding(strings.NewReader(c.in), "f", c.enc)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("CheckEncoding(%q, %s) = %v, want %q", c.in, c.enc, err, c.want)
		}
	}
}

// TestReadEncoded reads the same CSV in every encoding with the same
// result, and stops at a bad line having emitted the records before it.
func TestReadEncoded(t *testing.T) {
	text := "email,id,status,startDate,stopDate,purchaseDate,price,currency,paymentMethod,recurring,productId\n" +
		"müller@x,1,active,2024-01-01 00:00:00,2025-01-01 00:00:00,2024-01-01 00:00:00,1,EUR,débit,true,1\n"
	for _, in := range [][]byte{[]byte(text), append([]byte("\ufeff"), text...), utf16Bytes(text, false, true), utf16Bytes(text, true, true)} {
		var recs []*Record
		_, err := ReadEncoded(bytes.NewReader(in), "f.csv", FormatAuto, EncodingAuto, func(r *Record) error { recs = append(recs, r); return nil })
		if err != nil || len(recs) != 1 || recs[0].Err != nil || recs[0].Email != "müller@x" || recs[0].Fields.PaymentMethod.Text != "débit" {
			t.Errorf("% X…: %v %+v", in[:4], err, recs)
		}
	}
	bad := text + "a@x,2,active,2024-01-01 00:00:00,2025-01-01 00:00:00,2024-01-01 00:00:00,1,EUR,d\xe9bit,true,1\n"
	var recs []*Record
	_, err := ReadEncoded(strings.NewReader(bad), "-", FormatCSV, EncodingAuto, func(r *Record) error { recs = append(recs, r); return nil })
	var ee *EncodingError
	if !errors.As(err, &ee) || ee.Line != 3 || len(recs) != 1 {
		t.Errorf("bad byte on line 3: %v after %d records", err, len(recs))
	}
}

// FuzzRead: any input either fails with an error or yields records that
// each carry a source and, when rejected, a reason and JSON raw text;
// decoded strings are valid UTF-8.
func FuzzRead(f *testing.F) {
	f.Add([]byte(doc("1")+"\n"), false)
	f.Add([]byte(`[{"email":"a@x","license":`+"\n"+doc("2")+"\n"), false)
	f.Add([]byte("email,id,status,startDate,stopDate,purchaseDate,price,currency,recurring,productId\na,\"1\n2,3\n"), true)
	f.Add(utf16Bytes(doc("3"), false, true), false)
	f.Fuzz(func(t *testing.T, in []byte, csv bool) {
		format := FormatJSON
		if csv {
			format = FormatCSV
		}
		_, _ = ReadEncoded(bytes.NewReader(in), "f", format, EncodingAuto, func(r *Record) error {
			if r.Source == "" {
				t.Fatalf("a record without a source")
			}
			if r.Err != nil && (len(r.Raw) == 0 || !json.Valid(r.Raw)) {
				t.Fatalf("reject %s without JSON raw text: %q", r.Source, r.Raw)
			}
			if r.Err == nil && (!utf8.ValidString(r.Email) || !utf8.ValidString(r.Fields.ID.Text) || !utf8.ValidString(r.Fields.PaymentMethod.Text)) {
				t.Fatalf("invalid UTF-8 in a record")
			}
			return nil
		})
		for _, enc := range []Encoding{EncodingAuto, EncodingLatin1} {
			out, _, err := decodeAll(in, enc)
			if err == nil && !utf8.ValidString(out) {
				t.Fatalf("%s: decoded text is not UTF-8", enc)
			}
			if err == nil && enc == EncodingLatin1 && !bytes.HasPrefix(in, []byte{0xEF, 0xBB, 0xBF}) && utf8.RuneCountInString(out) != len(in) {
				t.Fatalf("latin1: %d characters from %d bytes", utf8.RuneCountInString(out), len(in))
			}
			if err == nil && enc == EncodingAuto && !bytes.HasPrefix(in, []byte{0xEF, 0xBB, 0xBF}) && !bytes.HasPrefix(in, []byte{0xFF, 0xFE}) && !bytes.HasPrefix(in, []byte{0xFE, 0xFF}) && out != string(in) {
				t.Fatalf("UTF-8 decoded differs from its input")
			}
		}
	})
}
