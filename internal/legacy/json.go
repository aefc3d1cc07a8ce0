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
	"strings"
)

// ReadJSON reads a stream of legacy documents and calls emit with each
// license record, in order. name is the source name used in Record.Source
// ("-" for standard input) and, when a document does not name its user, the
// name the user's e-mail is taken from (see EmailFromFileName).
//
// Documents may be concatenated in any layout (one per line, or
// pretty-printed), and may also come as the elements of a top-level array.
// A document that cannot be read is emitted as one record with Err set: a
// JSON syntax error, a document cut off by the end of the input, text that
// is not JSON, or JSON that is not a legacy license document. After a
// syntax error reading resumes at the next line that starts with "{" or
// "[" in its first column, so the documents after a broken one are still
// read.
//
// ReadJSON returns the first error of the reader or of emit.
func ReadJSON(r io.Reader, name string, emit func(*Record) error) error {
	jr := &jsonReader{name: name, fileEmail: EmailFromFileName(name), emit: emit}
	return jr.read(r)
}

// jsonReader splits a stream into top-level JSON values by tracking
// brackets and strings, so that one broken document does not lose the
// rest of the stream.
type jsonReader struct {
	name      string
	fileEmail string
	emit      func(*Record) error

	buf     []byte // the value (or garbage) being collected
	start   int    // the line where it starts
	depth   int    // bracket depth; > 0 while inside a value
	inStr   bool
	esc     bool
	opener  byte // '{' or '[' of the value being collected
	garbage bool // collecting text that is not JSON
}

func (jr *jsonReader) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if b, err := br.Peek(3); err == nil && bytes.Equal(b, []byte("\ufeff")) {
		_, _ = br.Discard(3) // a UTF-8 byte order mark
	}
	line, lineStart := 0, true
	for {
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if lineStart {
				line++
				if err := jr.resync(chunk[0], line); err != nil {
					return err
				}
			}
			if err := jr.scan(chunk, line); err != nil {
				return err
			}
			lineStart = chunk[len(chunk)-1] == '\n'
		}
		switch {
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return jr.finish()
		default:
			return fmt.Errorf("read %s: %w", jr.name, err)
		}
	}
}

// resync ends a broken document or a run of garbage when a line starts with
// what looks like a new document.
func (jr *jsonReader) resync(first byte, line int) error {
	if first != '{' && first != '[' {
		return nil
	}
	switch {
	case jr.garbage:
		return jr.flushGarbage()
	case jr.depth > 0 && jr.opener == '{':
		err := jr.reject(jr.start, jr.buf, fmt.Errorf("malformed JSON: the document starting at line %d does not end before line %d", jr.start, line))
		jr.reset()
		return err
	}
	return nil
}

func (jr *jsonReader) reset() {
	jr.buf, jr.depth, jr.inStr, jr.esc, jr.garbage = nil, 0, false, false, false
}

// scan consumes one chunk of a line.
func (jr *jsonReader) scan(chunk []byte, line int) error {
	from := 0 // where the part of chunk belonging to the current value starts
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		if jr.garbage {
			break
		}
		if jr.depth == 0 {
			switch c {
			case ' ', '\t', '\r', '\n', ',': // commas between documents are tolerated
				continue
			case '{', '[':
				jr.depth, jr.opener, jr.start, jr.inStr, jr.esc = 1, c, line, false, false
				jr.buf = jr.buf[:0]
				from = i
				continue
			}
			jr.garbage, jr.start, jr.buf = true, line, nil
			from = i
			break
		}
		switch {
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
			jr.depth++
		case c == '}' || c == ']':
			jr.depth--
			if jr.depth == 0 {
				value := append(jr.buf, chunk[from:i+1]...)
				jr.buf = nil
				if err := jr.value(value, jr.start); err != nil {
					return err
				}
			}
		}
	}
	if jr.depth > 0 || jr.garbage {
		jr.buf = append(jr.buf, chunk[from:]...)
	}
	return nil
}

// finish handles what is left at the end of the input.
func (jr *jsonReader) finish() error {
	switch {
	case jr.garbage:
		return jr.flushGarbage()
	case jr.depth > 0:
		err := jr.reject(jr.start, jr.buf, fmt.Errorf("malformed JSON: the document starting at line %d is cut off by the end of the input", jr.start))
		jr.reset()
		return err
	}
	return nil
}

func (jr *jsonReader) flushGarbage() error {
	text := bytes.TrimSpace(jr.buf)
	shown := text
	if len(shown) > 40 {
		shown = append(shown[:40:40], "..."...)
	}
	err := jr.reject(jr.start, text, fmt.Errorf("not a JSON document: %q", shown))
	jr.reset()
	return err
}

// reject emits a record that could not be read. raw becomes the record's
// Raw: as it is when it is valid JSON, as a JSON string otherwise.
func (jr *jsonReader) reject(line int, raw []byte, why error) error {
	rec := &Record{Source: fmt.Sprintf("%s:%d", jr.name, line), Err: why}
	raw = bytes.TrimSpace(raw)
	if json.Valid(raw) {
		rec.Raw = bytes.Clone(raw)
	} else {
		rec.Raw = rawText(string(raw))
	}
	return jr.emit(rec)
}

// value handles one complete top-level value starting at line.
func (jr *jsonReader) value(b []byte, line int) error {
	if b[0] != '[' {
		return jr.document(b, line)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(b, &elems); err != nil {
		return jr.reject(line, b, malformed(err, b, line))
	}
	// The line of each element, for its source.
	dec := json.NewDecoder(bytes.NewReader(b))
	_, _ = dec.Token() // '['
	for i := range elems {
		off := int(dec.InputOffset())
		for off < len(b) && strings.IndexByte(" \t\r\n,", b[off]) >= 0 {
			off++
		}
		var skip json.RawMessage
		_ = dec.Decode(&skip) // valid: it was just unmarshalled
		if err := jr.document(elems[i], line+bytes.Count(b[:off], []byte("\n"))); err != nil {
			return err
		}
	}
	return nil
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
			return jr.reject(line, b, fmt.Errorf("not a legacy license document: %v", err))
		}
		return jr.reject(line, b, malformed(err, b, line))
	}
	if doc.License == nil || doc.License.LicenseList == nil || doc.License.LicenseList.Licenses == nil {
		return jr.reject(line, b, errors.New(`not a legacy license document: no "license": {"licenseList": {"licenses": [...]}}`))
	}
	email := jr.fileEmail
	switch {
	case doc.Email != nil && *doc.Email != "":
		email = *doc.Email
	case doc.URL != nil && *doc.URL != "":
		e, err := EmailFromURL(*doc.URL)
		if err != nil {
			return jr.reject(line, b, err)
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
		return Field{Text: s, Kind: KindString, Set: true}
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
