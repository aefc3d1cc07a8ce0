package jsonapi

// Fuzz targets of the cursors and of the stored form of error documents.
// Seed corpora are in testdata/fuzz/Fuzz*; run one briefly with e.g.
//
//	go test -run='^$' -fuzz='^FuzzCursor$' -fuzztime=10s ./internal/jsonapi

import (
	"encoding/json"
	"errors"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/licensor/licensor"
)

// FuzzCursor checks that a cursor the server makes decodes to the same
// position, only for the query it was made for, and that any accepted
// page[after] re-encodes to the same position.
func FuzzCursor(f *testing.F) {
	f.Add(int64(1700000000), "", int64(42), "sort=-stop_date", "eyJrIjoxNzAwMDAwMDAwLCJpIjo0MiwicSI6InNjb3BlIn0")
	f.Add(int64(0), "Sport channels <megapack> & more", int64(7), "sort=title&filter[title]=sport", "")
	f.Fuzz(func(t *testing.T, k int64, s string, id int64, query, raw string) {
		scope := NewQuery(&url.URL{RawQuery: query}).Scope("/products")
		if id > 0 && utf8.ValidString(s) && utf8.RuneCountInString(s) <= licensor.MaxTitleLen {
			c := licensor.Cursor{Int: k, Str: s, ID: id}
			enc := EncodeCursor(&c, scope)
			got, err := decodeCursor(enc, scope)
			if err != nil {
				t.Fatalf("a cursor the server made (%d bytes) is refused: %v", len(enc), err)
			}
			if *got != c {
				t.Fatalf("cursor %+v decodes to %+v", c, *got)
			}
			if _, err := decodeCursor(enc, scope+"x"); err == nil {
				t.Fatalf("a cursor is accepted for another query")
			}
		}
		c, err := decodeCursor(raw, scope)
		if err != nil {
			var ce cursorError
			if !errors.As(err, &ce) {
				t.Fatalf("cursor error %T", err)
			}
			return
		}
		if c.ID <= 0 {
			t.Fatalf("accepted cursor with id %d", c.ID)
		}
		again, err := decodeCursor(EncodeCursor(c, scope), scope)
		if err != nil || *again != *c {
			t.Fatalf("accepted cursor %+v re-encodes to %+v, %v", *c, again, err)
		}
	})
}

// FuzzCompactErrors: what an Idempotency-Key keeps of a 4xx is at most
// licensor.MaxStoredErrorBytes whatever the body, and of an error document
// it keeps a prefix of the error objects (status, code, source) and counts
// the others, so that the replay stands for as many errors as the answer.
func FuzzCompactErrors(f *testing.F) {
	for _, err := range []error{
		&licensor.Error{Code: licensor.CodeProductNotFound, Pointer: "/relationships/product", Detail: "there is no product 9"},
		&licensor.Error{Code: licensor.CodeOrderIDConflict, Meta: map[string]any{"existing_id": "7"}},
		func() error {
			var bad licensor.ItemErrors
			for i := range 300 {
				bad = AddItemErrors(bad, i, licensor.Errors{
					{Code: licensor.CodeUnknownAttribute, Pointer: "/attributes/" + strings.Repeat("x", 600), Detail: strings.Repeat("y", 600)},
				})
			}
			return bad
		}(),
	} {
		status, objs := ErrorResponse(err)
		b, _ := json.Marshal(ErrorDocument{Errors: objs})
		f.Add(status, b)
	}
	f.Add(400, []byte(strings.Repeat("z", 5000)))
	f.Add(409, []byte(`{"errors":[]}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 300 || status > 599 {
			return
		}
		out := CompactErrors(status, body)
		if len(out) > licensor.MaxStoredErrorBytes {
			t.Fatalf("kept %d bytes of a %d-byte body", len(out), len(body))
		}
		var in ErrorDocument
		if json.Unmarshal(body, &in) != nil || len(in.Errors) == 0 {
			return
		}
		var got ErrorDocument
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("kept form is not an error document: %v: %s", err, out)
		}
		count := func(d ErrorDocument) (objs []ErrorObject, total int) {
			for _, e := range d.Errors {
				if e.Code == licensor.CodeErrorsOmitted {
					n, _ := e.Meta["omitted"].(float64)
					total += max(1, int(n))
					continue
				}
				objs = append(objs, e)
				total++
			}
			return objs, total
		}
		inObjs, inTotal := count(in)
		gotObjs, gotTotal := count(got)
		if inTotal < 1<<30 && gotTotal != inTotal {
			t.Fatalf("kept form stands for %d errors, the answer for %d", gotTotal, inTotal)
		}
		if len(gotObjs) > len(inObjs) {
			t.Fatalf("kept %d objects of %d", len(gotObjs), len(inObjs))
		}
		for i, e := range gotObjs {
			w := inObjs[i]
			if e.Status != w.Status || e.Code != w.Code || !reflect.DeepEqual(e.Source, w.Source) || e.Detail != "" {
				t.Fatalf("kept object %d is %+v, the answer's %+v", i, e, w)
			}
		}
	})
}
