package legacy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// Encoding is the character encoding of an input, as asked for with
// --encoding.
type Encoding string

// Encodings an input may be read in. EncodingAuto reads UTF-8, with or
// without a byte order mark, and UTF-16 with a byte order mark; anything
// else is refused, never guessed.
const (
	EncodingAuto    Encoding = "auto"
	EncodingUTF8    Encoding = "utf-8"
	EncodingUTF16LE Encoding = "utf-16le"
	EncodingUTF16BE Encoding = "utf-16be"
	// EncodingLatin1 is ISO-8859-1 as everybody writes it: Windows-1252,
	// whose printable characters in 0x80-0x9F (€ ‚ ƒ „ … † ‡ ˆ ‰ Š ‹ Œ Ž ‘ ’
	// “ ” • – — ˜ ™ š › œ ž Ÿ) ISO-8859-1 leaves to control codes; the five
	// bytes Windows-1252 leaves undefined (0x81 0x8D 0x8F 0x90 0x9D) are
	// read as the ISO-8859-1 control codes U+0081 … U+009D. This is the
	// WHATWG Encoding Standard's reading of "latin1" and "iso-8859-1".
	EncodingLatin1 Encoding = "latin1"
)

// ParseEncoding reads an --encoding value: auto, utf-8 (utf8), utf-16le,
// utf-16be, or latin1 (iso-8859-1, windows-1252, cp1252), in any case.
func ParseEncoding(s string) (Encoding, bool) {
	switch strings.ToLower(s) {
	case "auto":
		return EncodingAuto, true
	case "utf-8", "utf8":
		return EncodingUTF8, true
	case "utf-16le", "utf16le":
		return EncodingUTF16LE, true
	case "utf-16be", "utf16be":
		return EncodingUTF16BE, true
	case "latin1", "latin-1", "iso-8859-1", "iso8859-1", "windows-1252", "cp1252":
		return EncodingLatin1, true
	}
	return "", false
}

// Detected describes how an input was decoded: "UTF-8", "UTF-8 (byte
// order mark)", "UTF-16LE (byte order mark)", "Latin-1 (Windows-1252)", ….
type Detected string

// EncodingError is an input that cannot be read in its encoding. Nothing
// of it is replaced: the input is refused.
type EncodingError struct {
	Name   string // the input
	Line   int    // 1-based; 0 when the error is about the input as a whole
	Detail string
}

func (e *EncodingError) Error() string {
	if e.Line == 0 {
		return e.Name + ": " + e.Detail
	}
	return fmt.Sprintf("%s:%d: %s", e.Name, e.Line, e.Detail)
}

// latin1Hint ends the message about bytes that are not UTF-8.
const latin1Hint = "if the file is Latin-1 (ISO-8859-1 or Windows-1252), import it with --encoding latin1; otherwise convert it to UTF-8"

// NewDecoder returns a reader of the text of r as UTF-8, by enc, and what
// was detected. It reads the start of r: a byte order mark (UTF-8, UTF-16
// LE or BE) is honoured with EncodingAuto, checked against any other
// encoding, and dropped. The reader fails with an *EncodingError, naming
// the line, at the first byte that is not valid in the encoding (with
// EncodingAuto and EncodingUTF8: not UTF-8; UTF-16: an unpaired surrogate
// or an odd number of bytes); nothing is ever replaced by U+FFFD.
func NewDecoder(r io.Reader, name string, enc Encoding) (io.Reader, Detected, error) {
	d := &decoder{r: r, name: name, line: 1}
	head, err := d.fill(4)
	if err != nil {
		return nil, "", err
	}
	bom := ""
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE, 0, 0}), bytes.HasPrefix(head, []byte{0, 0, 0xFE, 0xFF}):
		return nil, "", &EncodingError{Name: name, Detail: "starts with a UTF-32 byte order mark; UTF-32 is not supported: convert the file to UTF-8"}
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		bom = "utf-8"
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}):
		bom = "utf-16le"
	case bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		bom = "utf-16be"
	}
	want := enc
	if enc == EncodingAuto {
		want = EncodingUTF8
		if bom != "" {
			want = Encoding(bom)
		}
	}
	if bom != "" && Encoding(bom) != want {
		return nil, "", &EncodingError{Name: name, Detail: fmt.Sprintf("starts with a %s byte order mark, but --encoding %s was given", strings.ToUpper(bom), enc)}
	}
	if bom != "" {
		d.in = d.in[map[string]int{"utf-8": 3, "utf-16le": 2, "utf-16be": 2}[bom]:]
	}
	switch want {
	case EncodingUTF8:
		if bom == "" {
			if le, ok := looksUTF16(head); ok {
				return nil, "", &EncodingError{Name: name, Detail: fmt.Sprintf("looks like UTF-16%s without a byte order mark (NUL bytes between the characters): import it with --encoding utf-16%s", strings.ToUpper(le), le)}
			}
		}
		d.step, d.hint = stepUTF8, ": "+latin1Hint
	case EncodingUTF16LE:
		d.step = func(in []byte, eof bool, out []byte) ([]byte, int, string) { return stepUTF16(in, eof, out, false) }
	case EncodingUTF16BE:
		d.step = func(in []byte, eof bool, out []byte) ([]byte, int, string) { return stepUTF16(in, eof, out, true) }
	case EncodingLatin1:
		d.step = stepLatin1
	default:
		return nil, "", fmt.Errorf("unknown encoding %q", enc)
	}
	var det Detected
	switch want {
	case EncodingUTF8:
		det = "UTF-8"
	case EncodingUTF16LE:
		det = "UTF-16LE"
	case EncodingUTF16BE:
		det = "UTF-16BE"
	case EncodingLatin1:
		det = "Latin-1 (Windows-1252)"
	}
	if bom != "" {
		det += " (byte order mark)"
	}
	return d, det, nil
}

// looksUTF16 reports whether the start of a text without a byte order mark
// is UTF-16: ASCII with a NUL byte after (LE) or before (BE) each character.
func looksUTF16(head []byte) (string, bool) {
	if len(head) < 4 {
		return "", false
	}
	switch {
	case head[0] != 0 && head[1] == 0 && head[2] != 0 && head[3] == 0:
		return "le", true
	case head[0] == 0 && head[1] != 0 && head[2] == 0 && head[3] != 0:
		return "be", true
	}
	return "", false
}

// decoder turns an input into UTF-8 by a step function, counting lines so
// that an error can name its line.
type decoder struct {
	r    io.Reader
	name string
	step func(in []byte, eof bool, out []byte) (outNew []byte, used int, bad string)
	in   []byte // read, not yet decoded
	out  []byte // decoded, not yet returned
	eof  bool   // r is exhausted
	err  error  // sticky
	line int    // the line of the next decoded byte
	tail []byte // the end of the last decoded text, for error context
	hint string // advice for an error
}

// fill reads until at least n bytes are buffered or r ends.
func (d *decoder) fill(n int) ([]byte, error) {
	for len(d.in) < n && !d.eof {
		buf := make([]byte, 32<<10)
		k, err := d.r.Read(buf)
		d.in = append(d.in, buf[:k]...)
		switch {
		case errors.Is(err, io.EOF):
			d.eof = true
		case err != nil:
			return nil, err
		}
	}
	return d.in, nil
}

func (d *decoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		if len(d.in) == 0 && d.eof {
			d.err = io.EOF
			continue
		}
		if _, err := d.fill(len(d.in) + 1); err != nil {
			d.err = err
			continue
		}
		out, used, bad := d.step(d.in, d.eof, d.out[:0])
		good := out
		d.line += bytes.Count(good, []byte{'\n'})
		if i := bytes.LastIndexByte(good, '\n'); i >= 0 {
			d.tail = append(d.tail[:0], good[i+1:]...)
		} else {
			d.tail = append(d.tail, good...)
		}
		if len(d.tail) > 24 {
			d.tail = append(d.tail[:0], d.tail[len(d.tail)-24:]...)
		}
		d.out = out
		d.in = d.in[used:]
		if bad != "" {
			after := d.in[:min(len(d.in), 8)]
			d.err = &EncodingError{Name: d.name, Line: d.line, Detail: fmt.Sprintf("%s, after %s (bytes % X)%s", bad,
				strconv.Quote(string(d.tail)), after, d.hint)}
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// stepUTF8 passes valid UTF-8 through, stopping at the first invalid byte.
func stepUTF8(in []byte, eof bool, out []byte) ([]byte, int, string) {
	i := 0
	for i < len(in) {
		if in[i] < utf8.RuneSelf {
			i++
			continue
		}
		if !eof && !utf8.FullRune(in[i:]) {
			break // the rest of the character is still to come
		}
		r, size := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && size <= 1 {
			return append(out, in[:i]...), i, fmt.Sprintf("byte 0x%02X is not UTF-8", in[i])
		}
		i += size
	}
	return append(out, in[:i]...), i, ""
}

// stepUTF16 decodes UTF-16, stopping at an unpaired surrogate or a final
// odd byte.
func stepUTF16(in []byte, eof bool, out []byte, big bool) ([]byte, int, string) {
	unit := func(b []byte) rune {
		if big {
			return rune(b[0])<<8 | rune(b[1])
		}
		return rune(b[1])<<8 | rune(b[0])
	}
	i := 0
	for i+1 < len(in) {
		r := unit(in[i:])
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if i+3 >= len(in) {
				if !eof {
					return out, i, ""
				}
				return out, i, fmt.Sprintf("UTF-16 high surrogate U+%04X is not followed by a low one", r)
			}
			r2 := unit(in[i+2:])
			if r2 < 0xDC00 || r2 > 0xDFFF {
				return out, i, fmt.Sprintf("UTF-16 high surrogate U+%04X is not followed by a low one", r)
			}
			out = utf8.AppendRune(out, utf16.DecodeRune(r, r2))
			i += 4
		case r >= 0xDC00 && r <= 0xDFFF:
			return out, i, fmt.Sprintf("UTF-16 low surrogate U+%04X without a high one", r)
		default:
			out = utf8.AppendRune(out, r)
			i += 2
		}
	}
	if eof && i < len(in) {
		return out, i, "the input ends with half a UTF-16 character (an odd number of bytes)"
	}
	return out, i, ""
}

// windows1252 are the characters of bytes 0x80-0x9F in Windows-1252; 0 is
// a byte Windows-1252 leaves undefined, read as the ISO-8859-1 control code.
var windows1252 = [32]rune{
	'€', 0, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', 0, 'Ž', 0,
	0, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', 0, 'ž', 'Ÿ',
}

// stepLatin1 decodes Windows-1252 (see EncodingLatin1). Every byte is a
// character, so it never fails.
func stepLatin1(in []byte, eof bool, out []byte) ([]byte, int, string) {
	for _, b := range in {
		switch {
		case b < 0x80:
			out = append(out, b)
		case b < 0xA0 && windows1252[b-0x80] != 0:
			out = utf8.AppendRune(out, windows1252[b-0x80])
		default:
			out = utf8.AppendRune(out, rune(b))
		}
	}
	return out, len(in), ""
}

// CheckEncoding reads all of r in enc and reports what was detected, or
// the first *EncodingError. With EncodingLatin1 it also refuses an input
// that is valid UTF-8 with non-ASCII characters: reading it as Latin-1
// would turn each of them into two or three wrong ones ("é" into "Ã©").
func CheckEncoding(r io.Reader, name string, enc Encoding) (Detected, error) {
	var scan utf8Scan
	if enc == EncodingLatin1 {
		r = io.TeeReader(r, &scan)
	}
	dr, det, err := NewDecoder(r, name, enc)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(io.Discard, dr); err != nil {
		return "", err
	}
	if enc == EncodingLatin1 && !scan.invalid && len(scan.carry) == 0 && scan.firstNonASCII > 0 {
		return "", &EncodingError{Name: name, Line: scan.firstNonASCII, Detail: "the file is valid UTF-8 with non-ASCII characters (the first on this line): reading it as Latin-1 would garble them; leave out --encoding latin1 (import Latin-1 files in a run of their own)"}
	}
	return det, nil
}

// utf8Scan is a writer that checks whether what is written is UTF-8, and
// finds the line of its first non-ASCII character.
type utf8Scan struct {
	carry         []byte // an incomplete character at the end of the last write
	line          int    // newlines so far
	firstNonASCII int    // its line, 0 while there is none
	invalid       bool
}

func (s *utf8Scan) Write(p []byte) (int, error) {
	if s.invalid {
		return len(p), nil
	}
	buf := append(s.carry, p...)
	_, used, bad := stepUTF8(buf, false, nil)
	if bad != "" {
		s.invalid = true
		return len(p), nil
	}
	if s.firstNonASCII == 0 {
		for i, c := range buf[:used] {
			if c >= utf8.RuneSelf {
				s.firstNonASCII = s.line + 1 + bytes.Count(buf[:i], []byte{'\n'})
				break
			}
		}
	}
	s.line += bytes.Count(buf[:used], []byte{'\n'})
	s.carry = append([]byte(nil), buf[used:]...)
	return len(p), nil
}
