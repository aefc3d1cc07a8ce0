package jsonapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/licensor/licensor"
)

func TestCheckShape(t *testing.T) {
	many := func(open, item, end string, n int) string {
		return open + strings.TrimSuffix(strings.Repeat(item+",", n), ",") + end
	}
	for _, c := range []struct {
		name, body string
		batch      int
		code       licensor.Code
		pointer    string
	}{
		{name: "small", body: `{"data":[{"a":[1,2,{"b":"]}\"{"}]}]}`, batch: 10},
		{name: "batch at the limit", body: many(`{"data":[`, `{}`, `]}`, 10), batch: 10},
		{name: "batch past the limit", body: many(`{"data":[`, `{}`, `]}`, 11), batch: 10, code: licensor.CodeBatchTooLarge, pointer: "/data"},
		{name: "the last data member counts too", body: `{"data":[],"data":` + many(`[`, `1`, `]`, 11) + `}`, batch: 10, code: licensor.CodeBatchTooLarge, pointer: "/data"},
		{name: "a nested data is not the batch", body: `{"meta":{"data":` + many(`[`, `1`, `]`, 11) + `}}`, batch: 10},
		{name: "object past the limit", body: `{"data":{"attributes":` + many(`{`, `"k":1`, `}`, MaxContainerLen+1) + `}}`,
			code: licensor.CodeInvalidRequest, pointer: "/data/attributes"},
		{name: "array past the limit, escaped names", body: `{"data":[{"a/b~c":` + many(`[`, `null`, `]`, MaxContainerLen+1) + `}]}`, batch: 10,
			code: licensor.CodeInvalidRequest, pointer: "/data/0/a~1b~0c"},
		{name: "single resource data past the limit", body: many(`{"data":[`, `0`, `]}`, MaxContainerLen+1), code: licensor.CodeInvalidRequest, pointer: "/data"},
		{name: "too many values", body: `{"data":{"meta":` + many(`[`, many(`[`, `true`, `]`, 10000), `]`, 14) + `}}`,
			code: licensor.CodeInvalidRequest, pointer: "/data/meta/13/1055"}, // the value past the limit
		{name: "not JSON is the decoder's to report", body: `{"data":[1,2,` + strings.Repeat(`"`, 3)},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckShape([]byte(c.body), Limits{Batch: c.batch})
			if c.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var e *licensor.Error
			if !errors.As(err, &e) || e.Code != c.code || e.Pointer != c.pointer {
				t.Fatalf("got %#v, want %s at %q", err, c.code, c.pointer)
			}
		})
	}
}

// shapeOf is what checkShape should find, counted from encoding/json's
// token stream: the most items of the top-level data arrays, the most
// members or items of any other container, and the values. ok is false
// for a body that is not one JSON value.
func shapeOf(body []byte) (data, container, values int, ok bool) {
	if !json.Valid(body) {
		return 0, 0, 0, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object, data bool
		n            int
		key          string
		wantKey      bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, 0, 0, false
		}
		if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey {
			if d, isDelim := tok.(json.Delim); !isDelim || d != '}' {
				top := &stack[len(stack)-1]
				top.key, top.wantKey = tok.(string), false
				top.n++
				continue
			}
		}
		if d, isDelim := tok.(json.Delim); isDelim && (d == '}' || d == ']') {
			top := stack[len(stack)-1]
			if top.data {
				data = max(data, top.n)
			} else {
				container = max(container, top.n)
			}
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = true
			}
			continue
		}
		values++
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.object {
				top.wantKey = true
			} else {
				top.n++
			}
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			isData := d == '[' && len(stack) == 1 && stack[0].object && stack[0].key == "data"
			stack = append(stack, frame{object: d == '{', wantKey: d == '{', data: isData})
		}
	}
	return data, container, values, true
}

// FuzzCheckShape checks checkShape against encoding/json on every body
// that is JSON: it refuses exactly the documents past its limits (small
// ones here, so that the fuzzer reaches them).
func FuzzCheckShape(f *testing.F) {
	f.Add([]byte(`{"data":[{"type":"License","attributes":{"a":[1,2,3]}},{}]}`), 2)
	f.Add([]byte(`{"data":{"attributes":{"a\"b":1,"c":"]}[{,:"}}}`), 1)
	f.Add([]byte(`{"data":[1,2,3],"meta":{"data":[1,2,3,4]}}`), 3)
	f.Fuzz(func(t *testing.T, body []byte, batch int) {
		batch = 1 + abs(batch)%5
		err := CheckShape(body, Limits{Batch: batch})
		data, container, values, ok := shapeOf(body)
		if !ok {
			return // not JSON: whatever checkShape said, the decoder refuses it
		}
		wantRefused := data > batch || container > MaxContainerLen || values > max(MaxDocumentValues, 32*batch)
		if (err != nil) != wantRefused {
			t.Fatalf("checkShape(%q, batch %d) = %v; data %d, container %d, values %d", body, batch, err, data, container, values)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
