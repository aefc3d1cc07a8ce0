package legacy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
)

// ReadJSON reads a stream of legacy documents and calls emit with each
// license record, in order. name is the source name used in Record.Source
// ("-" for standard input) and, when a document does not name its user, the
// name the user's e-mail is taken from (see EmailFromFileName). r must be
// UTF-8 (see NewDecoder).
//
// Documents may be concatenated in any layout (one per line, or
// pretty-printed), and may also come as the elements of top-level arrays;
// each element of an array is read on its own, as a document. A document
// that cannot be read is emitted as one record with Err set: a JSON syntax
// error, a document cut off, text that is not JSON, or JSON that is not a
// legacy license document. So is a top-level array that the end of the
// input leaves open after complete elements (the input is cut off, and
// records may be missing).
//
// Resynchronisation: a document (or array element) that is still open,
// or broken (a string still open at the end of its line, or a bracket that
// does not match), ends where a line starts (after blanks) with "{", "["
// or "]" at no more indentation than the line where the document started
// (or than the last complete document of its level, if that is more); text
// that is not JSON ends likewise:
// it is rejected as cut off there, and reading resumes with that line. So
// one broken line of a JSON Lines file costs that line only, and one broken
// document of a pretty-printed file, or one broken element of an array
// written an element to a line, costs that document only. The nested
// lines of a multi-line document must therefore be indented (as every JSON
// pretty-printer does); a broken element of an array written on one line
// takes the rest of that line with it into its reject.
//
// ReadJSON returns the first error of the reader or of emit.
func ReadJSON(r io.Reader, name string, emit func(*Record) error) error {
	jr := &jsonReader{name: name, fileEmail: EmailFromFileName(name), emit: emit, docIndent: -1}
	return jr.read(r)
}

// The states of a jsonReader.
const (
	jsonNone    = iota // between documents
	jsonValue          // collecting a document
	jsonBroken         // collecting the rest of a broken document, until a resync
	jsonGarbage        // collecting text that is not JSON, until a resync
)

// maxRejectText bounds the text of a broken document or of garbage kept
// for its reject.
const maxRejectText = 64 << 10

// jsonReader splits a stream into documents by tracking brackets and
// strings, so that one broken document does not lose the rest.
type jsonReader struct {
	name      string
	fileEmail string
	emit      func(*Record) error

	// The top-level array open, if any.
	inArray   bool
	arrayLine int
	arrayDocs int  // its elements read
	arrayCut  bool // one of its elements was cut off
	// The indentation of the documents at the top level, and of the
	// elements of the open array (-1: none yet): that of the last one
	// that was complete, else of the first. A document's resync
	// indentation is at least that of its level, so that a document begun
	// at a broken line indented less than its peers (say " [", left by a
	// cut) still ends at the next peer.
	docIndent, arrayIndent int
	ownIndent              int // the indentation of the line where the document started

	state  int
	buf    []byte // the document (or garbage) being collected
	cut    bool   // buf was capped at maxRejectText
	start  int    // the line where it starts
	indent int    // the indentation of that line
	stack  []byte // open brackets
	inStr  bool
	esc    bool
	why    string // why a broken document is broken
	line   int
	inLine bool // the last chunk did not end a line
	curInd int  // the indentation of the current line
}

func (jr *jsonReader) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		chunk, err := br.ReadSlice('\n')
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, io.EOF) {
			return readError(jr.name, err) // nothing of a line that failed to read
		}
		if len(chunk) > 0 {
			if !jr.inLine {
				jr.line++
				if err := jr.lineStart(chunk); err != nil {
					return err
				}
			}
			if err := jr.scan(chunk); err != nil {
				return err
			}
			jr.inLine = chunk[len(chunk)-1] != '\n'
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return jr.finish()
		default:
			return readError(jr.name, err)
		}
	}
}

// lineStart applies the resynchronisation rule at the start of a line.
func (jr *jsonReader) lineStart(chunk []byte) error {
	ind := 0
	for ind < len(chunk) && (chunk[ind] == ' ' || chunk[ind] == '\t') {
		ind++
	}
	jr.curInd = ind
	if ind == len(chunk) {
		return nil
	}
	if c := chunk[ind]; c != '{' && c != '[' && c != ']' {
		return nil
	}
	switch {
	case jr.state == jsonGarbage && ind <= jr.indent:
		return jr.flushGarbage()
	case jr.state == jsonBroken && ind <= jr.indent:
		return jr.rejectBroken(fmt.Sprintf("malformed JSON: %s; the document starting at line %d is cut off at line %d", jr.why, jr.start, jr.line))
	case jr.state == jsonValue && ind <= jr.indent:
		return jr.rejectBroken(fmt.Sprintf("malformed JSON: the document starting at line %d does not end before line %d", jr.start, jr.line))
	}
	return nil
}

// base is the indentation of the documents of the current level.
func (jr *jsonReader) base() *int {
	if jr.inArray {
		return &jr.arrayIndent
	}
	return &jr.docIndent
}

func (jr *jsonReader) reset() {
	jr.state, jr.buf, jr.cut, jr.stack, jr.inStr, jr.esc, jr.why = jsonNone, nil, false, jr.stack[:0], false, false, ""
}

// keep adds text to a broken document or garbage, up to maxRejectText.
func (jr *jsonReader) keep(b []byte) {
	if room := maxRejectText - len(jr.buf); len(b) > room {
		b, jr.cut = b[:max(room, 0)], true
	}
	jr.buf = append(jr.buf, b...)
}

// broken turns the document being collected into a broken one.
func (jr *jsonReader) broken(why string) {
	jr.state, jr.why = jsonBroken, why
	if len(jr.buf) > maxRejectText {
		jr.buf, jr.cut = jr.buf[:maxRejectText], true
	}
}

// scan consumes one chunk of a line.
func (jr *jsonReader) scan(chunk []byte) error {
	from := 0 // where the part of chunk belonging to the current value starts
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		switch jr.state {
		case jsonBroken, jsonGarbage:
			jr.keep(chunk[i:])
			return nil
		case jsonNone:
			switch c {
			case ' ', '\t', '\r', '\n', ',': // commas between documents are tolerated
				continue
			case '[':
				if !jr.inArray {
					jr.inArray, jr.arrayLine, jr.arrayDocs, jr.arrayCut, jr.arrayIndent = true, jr.line, 0, false, -1
					continue
				}
			case ']':
				if jr.inArray {
					jr.inArray = false
					continue
				}
			}
			if c == '{' || c == '[' {
				base := jr.base()
				if *base < 0 {
					*base = jr.curInd
				}
				jr.state, jr.start, jr.indent, jr.ownIndent = jsonValue, jr.line, max(jr.curInd, *base), jr.curInd
				jr.stack = append(jr.stack[:0], c)
				jr.buf = jr.buf[:0]
				from = i
				continue
			}
			jr.state, jr.start, jr.indent, jr.buf = jsonGarbage, jr.line, max(jr.curInd, *jr.base()), nil
			jr.keep(chunk[i:])
			return nil
		case jsonValue:
			switch {
			case jr.inStr && c == '\n':
				jr.buf = append(jr.buf, chunk[from:i]...)
				jr.broken(fmt.Sprintf("a string is still open at the end of line %d", jr.line))
				jr.keep(chunk[i:])
				return nil
			case jr.inStr && jr.esc:
				jr.esc = false
			case jr.inStr && c == '\\':
				jr.esc = true
			case jr.inStr && c == '"':
				jr.inStr = false
			case jr.inStr:
			case c == '"':
				jr.inStr = true
			case c == '{' || c == '[':
				jr.stack = append(jr.stack, c)
			case c == '}' || c == ']':
				open := jr.stack[len(jr.stack)-1]
				if (open == '{') != (c == '}') {
					jr.buf = append(jr.buf, chunk[from:i]...)
					jr.broken(fmt.Sprintf("%q at line %d does not close the %q before it", c, jr.line, open))
					jr.keep(chunk[i:])
					return nil
				}
				jr.stack = jr.stack[:len(jr.stack)-1]
				if len(jr.stack) == 0 {
					value := append(jr.buf, chunk[from:i+1]...)
					start := jr.start
					*jr.base() = jr.ownIndent // its peers are indented like it
					jr.buf = nil
					jr.reset()
					if jr.inArray {
						jr.arrayDocs++
					}
					if err := jr.value(value, start); err != nil {
						return err
					}
				}
			}
		}
	}
	if jr.state == jsonValue {
		jr.buf = append(jr.buf, chunk[from:]...)
	}
	return nil
}

// finish handles what is left at the end of the input.
func (jr *jsonReader) finish() error {
	in := ""
	if jr.inArray {
		in = fmt.Sprintf(" (inside the array opened at line %d)", jr.arrayLine)
	}
	var err error
	switch jr.state {
	case jsonGarbage:
		err = jr.flushGarbage()
	case jsonBroken:
		err = jr.rejectBroken(fmt.Sprintf("malformed JSON: %s; the document starting at line %d is cut off by the end of the input%s", jr.why, jr.start, in))
	case jsonValue:
		err = jr.rejectBroken(fmt.Sprintf("malformed JSON: the document starting at line %d is cut off by the end of the input%s", jr.start, in))
	}
	if err != nil {
		return err
	}
	if jr.inArray && !jr.arrayCut {
		rec := &Record{Source: fmt.Sprintf("%s:%d", jr.name, jr.arrayLine), Raw: rawText("["),
			Err: fmt.Errorf("malformed JSON: the array opened at line %d is not closed: the input is cut off after %d documents of it, and records may be missing", jr.arrayLine, jr.arrayDocs)}
		jr.inArray = false
		return jr.emit(rec)
	}
	return nil
}

// rejectBroken rejects the document being collected (open or broken).
func (jr *jsonReader) rejectBroken(why string) error {
	if jr.inArray {
		jr.arrayCut = true
	}
	text := jr.buf
	if len(text) > maxRejectText {
		text, jr.cut = text[:maxRejectText], true
	}
	err := jr.reject(jr.start, text, jr.cut, errors.New(why))
	jr.reset()
	return err
}

func (jr *jsonReader) flushGarbage() error {
	text := bytes.TrimSpace(jr.buf)
	shown := text
	if len(shown) > 40 {
		shown = append(shown[:40:40], "..."...)
	}
	err := jr.reject(jr.start, text, jr.cut, fmt.Errorf("not a JSON document: %q", shown))
	jr.reset()
	return err
}

// reject emits a record that could not be read. raw becomes the record's
// Raw: as it is when it is valid JSON, as a JSON string otherwise (with
// "…" when it was cut at maxRejectText).
func (jr *jsonReader) reject(line int, raw []byte, cut bool, why error) error {
	rec := &Record{Source: fmt.Sprintf("%s:%d", jr.name, line), Err: why}
	raw = bytes.TrimSpace(raw)
	switch {
	case !cut && json.Valid(raw):
		rec.Raw = bytes.Clone(raw)
	case cut:
		rec.Raw = rawText(strings.ToValidUTF8(string(raw), "") + "…")
	default:
		rec.Raw = rawText(string(raw))
	}
	return jr.emit(rec)
}

// value handles one complete top-level value (or array element) starting
// at line.
func (jr *jsonReader) value(b []byte, line int) error {
	if b[0] != '{' {
		return jr.reject(line, b, false, errors.New("not a legacy license document: an array, not an object"))
	}
	return jr.document(b, line)
}

// malformed describes a JSON error in a value starting at line.
func malformed(err error, b []byte, line int) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) && syn.Offset > 0 && int(syn.Offset) <= len(b) {
		return fmt.Errorf("malformed JSON at line %d: %v", line+bytes.Count(b[:syn.Offset-1], []byte("\n")), err)
	}
	return fmt.Errorf("malformed JSON: %v", err)
}

// wireDocument is a legacy document, optionally wrapped with the user it
// belongs to.
type wireDocument struct {
	Email   *string `json:"email"`
	URL     *string `json:"url"`
	License *struct {
		LicenseList *struct {
			Licenses []json.RawMessage `json:"licenses"`
		} `json:"licenseList"`
	} `json:"license"`
}

func (jr *jsonReader) document(b []byte, line int) error {
	var doc wireDocument
	if err := json.Unmarshal(b, &doc); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			return jr.reject(line, b, false, fmt.Errorf("not a legacy license document: %v", err))
		}
		return jr.reject(line, b, false, malformed(err, b, line))
	}
	if doc.License == nil || doc.License.LicenseList == nil || doc.License.LicenseList.Licenses == nil {
		return jr.reject(line, b, false, errors.New(`not a legacy license document: no "license": {"licenseList": {"licenses": [...]}}`))
	}
	email := jr.fileEmail
	switch {
	case doc.Email != nil && *doc.Email != "":
		email = *doc.Email
	case doc.URL != nil && *doc.URL != "":
		e, err := EmailFromURL(*doc.URL)
		if err != nil {
			return jr.reject(line, b, false, err)
		}
		email = e
	}
	for i, raw := range doc.License.LicenseList.Licenses {
		rec := &Record{Source: fmt.Sprintf("%s:%d#%d", jr.name, line, i), Raw: raw, Email: email}
		var members map[string]json.RawMessage
		if err := json.Unmarshal(raw, &members); err != nil || members == nil {
			rec.Err = errors.New("a license must be a JSON object")
		}
		for k, v := range members {
			if f := rec.Fields.byName(k); f != nil {
				*f = jsonField(v)
			}
		}
		if err := jr.emit(rec); err != nil {
			return err
		}
	}
	return nil
}

// jsonField reads one member of a license object.
func jsonField(v json.RawMessage) Field {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return Field{}
	}
	switch v[0] {
	case 'n':
		return Field{} // null
	case '"':
		var s string
		_ = json.Unmarshal(v, &s) // valid: the document was unmarshalled
		return Field{Text: s, Kind: KindString, Set: true, Problem: loneSurrogate(v)}
	case 't', 'f':
		return Field{Text: string(v), Kind: KindBool, Set: true}
	case '{', '[':
		return Field{Text: string(v), Kind: KindOther, Set: true}
	}
	return Field{Text: string(v), Kind: KindNumber, Set: true}
}

// EmailFromURL returns the e-mail in a legacy request URL
// (https://boox.fi/api/user/<email>/license?Service=s): the path segment
// after "user".
func EmailFromURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err == nil {
		segs := strings.Split(u.EscapedPath(), "/")
		for i := 0; i+1 < len(segs); i++ {
			if segs[i] == "user" {
				if e, err := url.PathUnescape(segs[i+1]); err == nil && strings.Contains(e, "@") {
					return e, nil
				}
			}
		}
	}
	return "", fmt.Errorf("url %q is not a legacy request URL .../api/user/<email>/license", s)
}

// EmailFromFileName returns the e-mail a file's name gives its documents:
// the base name without its extension (.json, .jsonl, .ndjson), URL
// path-unescaped, when it contains "@": "alice@example.com.json" names
// alice@example.com. Otherwise "".
func EmailFromFileName(name string) string {
	if name == "-" || name == "" {
		return ""
	}
	base := filepath.Base(name)
	for _, ext := range []string{".json", ".jsonl", ".ndjson"} {
		if strings.HasSuffix(strings.ToLower(base), ext) {
			base = base[:len(base)-len(ext)]
			break
		}
	}
	if e, err := url.PathUnescape(base); err == nil {
		base = e
	}
	if !strings.Contains(base, "@") {
		return ""
	}
	return base
}

// loneSurrogate returns a problem when a JSON string (its text, quotes
// included) escapes a UTF-16 surrogate without its partner: "\ud800",
// "\udc00", "\ud800x". encoding/json reads such an escape as U+FFFD.
func loneSurrogate(v []byte) string {
	hex := func(i int) (rune, bool) {
		if i+6 > len(v) || v[i] != '\\' || v[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(v[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 1; i < len(v)-1; i++ {
		if v[i] != '\\' {
			continue
		}
		r, ok := hex(i)
		if !ok {
			i++ // a two-character escape
			continue
		}
		switch {
		case r >= 0xD800 && r < 0xDC00:
			if r2, ok := hex(i + 6); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
				i += 11
				continue
			}
			return fmt.Sprintf("escapes the UTF-16 high surrogate \\u%04x without a low one after it", r)
		case r >= 0xDC00 && r <= 0xDFFF:
			return fmt.Sprintf("escapes the UTF-16 low surrogate \\u%04x without a high one before it", r)
		}
		i += 5
	}
	return ""
}
