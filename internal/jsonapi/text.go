package jsonapi

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/licensor/licensor"
)

// The one rule for strings (licensor.ValidText: valid UTF-8, no NUL) is
// applied where input is decoded: to every string and member name of a
// JSON request body (CheckText) and to every query parameter name and
// value (NewQuery). Path ids and the headers that reach the database
// (Idempotency-Key, X-Request-Id) are already limited to ASCII.
//
// encoding/json replaces invalid UTF-8 and lone surrogate escapes
// (\ud800) with U+FFFD without a word, so the rule is checked on the raw
// bytes: a string the decoder would change, or that holds \u0000, is
// refused with 400 INVALID_ATTRIBUTE and the pointer of the string (of
// the member, for a member name).

// textDetail is the detail of a refused string.
const textDetail = "strings must be valid UTF-8 without NUL (U+0000) characters or lone surrogates (\\ud800-\\udfff)"

// CheckText returns the error for the first string of body, a valid
// JSON document, that breaks the rule, or nil. A body that is valid UTF-8
// and has no \u escape is accepted without further work: the common case
// costs one pass of utf8.Valid.
func CheckText(body []byte) *licensor.Error {
	if SimpleText(body) {
		return nil
	}
	s := textScanner{b: body}
	s.space()
	if !s.value("") {
		return &licensor.Error{Code: licensor.CodeInvalidAttribute, Pointer: s.bad, Detail: textDetail}
	}
	return nil
}

// SimpleText is the fast check: no string of body can break the rule.
func SimpleText(body []byte) bool {
	return utf8.Valid(body) && !bytes.Contains(body, []byte(`\u`))
}

// textScanner walks a valid JSON document and stops at the first string
// that breaks the rule, remembering its JSON pointer.
type textScanner struct {
	b   []byte
	i   int
	bad string // the pointer of the string that broke the rule
}

func (s *textScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// value scans the value at s.i, whose pointer is ptr; false if a string in
// it breaks the rule.
func (s *textScanner) value(ptr string) bool {
	if s.i >= len(s.b) {
		return true
	}
	switch s.b[s.i] {
	case '"':
		if _, ok := s.str(); !ok {
			s.bad = ptr
			return false
		}
		return true
	case '{':
		s.i++
		s.space()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return true
		}
		for s.i < len(s.b) {
			key, ok := s.str()
			name := key
			if !ok {
				name = strings.ToValidUTF8(strings.ReplaceAll(key, "\x00", "\uFFFD"), "\uFFFD")
			}
			member := ptr + "/" + escapePointer(name)
			if !ok {
				s.bad = member
				return false
			}
			s.space()
			s.i++ // ':'
			s.space()
			if !s.value(member) {
				return false
			}
			s.space()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				s.i++
				s.space()
				continue
			}
			s.i++ // '}'
			return true
		}
		return true
	case '[':
		s.i++
		s.space()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return true
		}
		for n := 0; s.i < len(s.b); n++ {
			if !s.value(ptr + "/" + strconv.Itoa(n)) {
				return false
			}
			s.space()
			if s.i < len(s.b) && s.b[s.i] == ',' {
				s.i++
				s.space()
				continue
			}
			s.i++ // ']'
			return true
		}
		return true
	default:
		// A number, true, false or null.
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return true
			}
			s.i++
		}
		return true
	}
}

// str scans the string at s.i and returns it decoded (as far as that is
// possible) and whether it keeps the rule.
func (s *textScanner) str() (string, bool) {
	start := s.i
	s.i++ // '"'
	ok, escaped := true, false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			raw := s.b[start:s.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), ok
			}
			var out string
			_ = json.Unmarshal(raw, &out) // valid JSON: only the replacements differ
			return out, ok
		case c == '\\':
			escaped = true
			if s.i+1 < len(s.b) && s.b[s.i+1] == 'u' {
				r, n := s.escape(s.i)
				switch {
				case r == 0:
					ok = false
				case r >= 0xD800 && r <= 0xDBFF:
					lo, m := s.escape(s.i + n)
					if m == 0 || lo < 0xDC00 || lo > 0xDFFF {
						ok = false // a high surrogate without its low half
					} else {
						n += m
					}
				case r >= 0xDC00 && r <= 0xDFFF:
					ok = false // a low surrogate alone
				}
				s.i += n
			} else {
				s.i += 2
			}
		case c < utf8.RuneSelf:
			s.i++
		default:
			r, n := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && n == 1 {
				ok = false
			}
			s.i += n
		}
	}
	return string(s.b[start:]), ok
}

// escape decodes the \uXXXX escape at i: its value and length (0 if there
// is none at i).
func (s *textScanner) escape(i int) (rune, int) {
	if i+6 > len(s.b) || s.b[i] != '\\' || s.b[i+1] != 'u' {
		return -1, 0
	}
	n, err := strconv.ParseUint(string(s.b[i+2:i+6]), 16, 16)
	if err != nil {
		return -1, 0
	}
	return rune(n), 6
}

// textParameter is a parameter name that breaks the rule, made printable
// for source.parameter.
func textParameter(name string) string {
	if licensor.ValidText(name) {
		return name
	}
	return strings.ToValidUTF8(strings.ReplaceAll(name, "\x00", "\uFFFD"), "\uFFFD")
}
