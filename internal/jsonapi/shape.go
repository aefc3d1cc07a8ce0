package jsonapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// Limits on the shape of a request document, checked by CheckShape on the
// raw bytes before anything is decoded, so that no per-item work (a map
// per object, an error per member) is done for a document past them.
const (
	// MaxDocumentValues caps the JSON values of one request document
	// (objects, arrays, strings, numbers, literals, each member and item
	// counting once). The largest legitimate document, a product with
	// licensor.MaxChannelsPerService channels on each of the four services,
	// has about 120,000; decoded, a value costs up to about 200 bytes, so
	// a document's decoded form stays within a few tens of MiB whatever its
	// bytes are. (With --max-batch above 4096, 32 per item.)
	MaxDocumentValues = 1 << 17
	// MaxContainerLen caps the members of one object and the items of one
	// array (other than a batch's data, which --max-batch caps). No
	// resource has more than a dozen members, and no list more than
	// licensor.MaxChannelsPerService items.
	MaxContainerLen = 2 * licensor.MaxChannelsPerService
)

// Limits are the limits one request's document is held to.
type Limits struct {
	// Batch caps the items of the top-level data array (0: MaxContainerLen
	// applies, as to any array): past it, BATCH_TOO_LARGE.
	Batch int
}

// shapeFrame is an open object or array while CheckShape scans.
type shapeFrame struct {
	object  bool
	n       int    // members or items so far
	key     []byte // object: the raw last member name (without quotes)
	wantKey bool   // object: the next string is a member name
	data    bool   // the top-level data member's array
}

// CheckShape scans a request body once, without decoding it, and refuses
// it when its top-level data array has more than limits.batch items
// (BATCH_TOO_LARGE), an object or array has more than MaxContainerLen
// members or items, or the document more than MaxDocumentValues values
// (INVALID_REQUEST, with the pointer of the container that overflows). It
// stops at the first limit passed. It does not check the syntax: a body
// that is not JSON passes or fails here as it may, and the decoder that
// follows reports its syntax error.
func CheckShape(body []byte, limits Limits) error {
	maxValues := max(MaxDocumentValues, 32*limits.Batch)
	var stack []shapeFrame
	values := 0
	// overflow checks the innermost container's count.
	overflow := func() error {
		top := &stack[len(stack)-1]
		switch {
		case top.data && limits.Batch > 0:
			if top.n > limits.Batch {
				return &licensor.Error{Code: licensor.CodeBatchTooLarge, Pointer: "/data",
					Detail: "a batch may have at most " + strconv.Itoa(limits.Batch) + " items; this one has more"}
			}
		case top.n > MaxContainerLen:
			what := "an array may have at most " + strconv.Itoa(MaxContainerLen) + " items"
			if top.object {
				what = "an object may have at most " + strconv.Itoa(MaxContainerLen) + " members"
			}
			return &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: shapePointer(stack[:len(stack)-1]), Detail: what}
		}
		return nil
	}
	// item counts a value starting in the innermost container (or the root).
	item := func() error {
		values++
		if len(stack) > 0 && !stack[len(stack)-1].object {
			stack[len(stack)-1].n++
			if err := overflow(); err != nil {
				return err
			}
		}
		if values > maxValues {
			return &licensor.Error{Code: licensor.CodeInvalidRequest, Pointer: shapePointer(stack),
				Detail: "the document has more than " + strconv.Itoa(maxValues) + " JSON values"}
		}
		return nil
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch c {
		case ' ', '\t', '\n', '\r':
		case ',', ':':
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].wantKey = c == ','
			}
		case '"':
			start := i + 1
			i = stringEnd(body, start)
			if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].wantKey {
				top := &stack[len(stack)-1]
				top.key = body[start:i]
				top.n++
				top.wantKey = false
				if err := overflow(); err != nil {
					return err
				}
				continue
			}
			if err := item(); err != nil {
				return err
			}
		case '{', '[':
			if err := item(); err != nil {
				return err
			}
			data := c == '[' && len(stack) == 1 && stack[0].object && string(stack[0].key) == "data"
			stack = append(stack, shapeFrame{object: c == '{', wantKey: c == '{', data: data})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		default:
			// A number or literal: one value, up to the next delimiter.
			if err := item(); err != nil {
				return err
			}
			for i+1 < len(body) && !isDelimiter(body[i+1]) {
				i++
			}
		}
	}
	return nil
}

func isDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ':', '{', '}', '[', ']', '"':
		return true
	}
	return false
}

// shapePointer is the JSON pointer of the value that frames lead to.
func shapePointer(frames []shapeFrame) string {
	var b strings.Builder
	for _, f := range frames {
		b.WriteByte('/')
		if !f.object {
			b.WriteString(strconv.Itoa(max(0, f.n-1)))
			continue
		}
		var name string
		if err := json.Unmarshal([]byte(`"`+string(f.key)+`"`), &name); err != nil {
			name = string(f.key)
		}
		b.WriteString(escapePointer(Truncate(name, 200)))
	}
	return b.String()
}

// stringEnd returns the index of the quote closing the string whose
// contents start at start (len(b) if it is not closed).
func stringEnd(b []byte, start int) int {
	for i := start; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return len(b)
}

// ReadBody reads a request body (capped by http.MaxBytesReader) into one buffer of
// its declared length, when it declares one: not the doublings of
// io.ReadAll, which for a 4 MiB body allocate twice that.
func ReadBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= 1<<30 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(r.Body)
	return buf.Bytes(), err
}
