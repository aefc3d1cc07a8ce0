package legacy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadCSV reads legacy licenses in CSV form and calls emit with each
// record, in order. name is the source name used in Record.Source. r must
// be UTF-8 (see NewDecoder).
//
// The first row is a header naming the columns, in any order and any case:
// email, id, status, startDate, stopDate, purchaseDate, price, currency,
// recurring, and productUrl or productId (or both; productUrl wins), plus
// the optional paymentMethod. Every field holds what the legacy JSON
// member of the same name holds; an empty field is an absent value. A
// header with an unknown, repeated or missing column is an error, returned
// before any record is emitted. Blank lines are skipped.
//
// The CSV is RFC 4180 read strictly: a field may be quoted, and a quoted
// field may hold commas, doubled quotes and line breaks. A record that is
// not valid CSV, or whose number of fields differs from the header's, is
// emitted with Err set, and reading resumes at the next line: when a
// quoted field opened on line L does not close into a good record (its
// quote is never closed, or not within MaxCSVRecordLines lines, or the
// lines it takes together are malformed, or one of them is a record with
// the header's number of fields by itself), line L alone is rejected and the
// following lines are read again as records of their own, so that one
// stray quote costs one line, never the rows after it.
//
// ReadCSV returns the first error of the reader, of the header, or of emit.
func ReadCSV(r io.Reader, name string, emit func(*Record) error) error {
	lr := &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
	var header []string
	for header == nil {
		first, err := lr.next()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%s: empty CSV file: want a header row", name)
		}
		if err != nil {
			return readError(name, err)
		}
		if blank(first.text) {
			continue
		}
		fields, span, problem, err := lr.record(first)
		if err != nil {
			return readError(name, err)
		}
		if problem != "" {
			return fmt.Errorf("%s:%d: header: malformed CSV: %s", name, first.n, problem)
		}
		if len(span) > 1 {
			return fmt.Errorf("%s:%d: header: a quoted column name takes %d lines", name, first.n, len(span))
		}
		header = fields
	}
	cols, err := csvColumns(header)
	if err != nil {
		return fmt.Errorf("%s:1: %w", name, err)
	}
	emailCol := -1
	for i, c := range cols {
		if c == "email" {
			emailCol = i
		}
	}
	for {
		first, err := lr.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return readError(name, err)
		}
		if blank(first.text) {
			continue
		}
		row, span, problem, err := lr.record(first)
		if err != nil {
			return readError(name, err)
		}
		rec := &Record{Source: fmt.Sprintf("%s:%d", name, first.n)}
		if problem == "" && len(row) == len(cols) && len(span) > 1 {
			// A record over several lines, none of which may be a record
			// on its own: then it is a stray quote that happened to close
			// at a later one, not a line break in a value.
			for _, l := range span[1:] {
				var p csvParser
				if !p.line(l) && p.problem == "" && len(p.fields) == len(cols) {
					problem = fmt.Sprintf("line %d, inside the quoted field, is a record of its own", l.n)
					break
				}
			}
		}
		switch {
		case problem == "" && len(row) == len(cols):
			rec.Raw = csvRaw(cols, row)
			for i, c := range cols {
				if c == "email" {
					continue
				}
				if row[i] != "" {
					*rec.Fields.byName(c) = Field{Text: row[i], Kind: KindString, Set: true}
				}
			}
			rec.Email = row[emailCol]
		case len(span) > 1:
			// The record took several lines and is no good: blame the line
			// that opened the quoted field, and read the others again.
			why := problem
			if why == "" {
				why = fmt.Sprintf("together they make %d fields, but the header has %d", len(row), len(cols))
			}
			rec.Raw = rawText(first.text)
			rec.Err = fmt.Errorf("malformed CSV: a quoted field opened on line %d is not closed on that line, and lines %d-%d are no record either (%s); reading resumes at line %d",
				first.n, first.n, span[len(span)-1].n, why, span[1].n)
			lr.unread(span[1:])
		case problem != "":
			rec.Raw = rawText(first.text)
			rec.Err = fmt.Errorf("malformed CSV: %s", problem)
		default:
			rec.Raw = csvRaw(nil, row)
			rec.Err = fmt.Errorf("%d fields, but the header has %d", len(row), len(cols))
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
}

// MaxCSVRecordLines is the most lines one CSV record may take (a quoted
// field with line breaks); a quoted field still open after that many
// lines is taken for a stray quote. MaxCSVLine bounds one line, in bytes.
const (
	MaxCSVRecordLines = 64
	MaxCSVLine        = 1 << 20
)

// csvLine is one line of a CSV input, without its line break.
type csvLine struct {
	text string
	n    int  // 1-based line number
	long bool // longer than MaxCSVLine; text holds the start
}

// lineReader reads lines, and takes lines back to be read again.
type lineReader struct {
	br      *bufio.Reader
	n       int
	pending []csvLine
	err     error
}

func (lr *lineReader) unread(lines []csvLine) {
	lr.pending = append(append([]csvLine(nil), lines...), lr.pending...)
}

func (lr *lineReader) next() (csvLine, error) {
	if len(lr.pending) > 0 {
		l := lr.pending[0]
		lr.pending = lr.pending[1:]
		return l, nil
	}
	if lr.err != nil {
		return csvLine{}, lr.err
	}
	var b []byte
	long := false
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if !long {
			if len(b)+len(chunk) > MaxCSVLine {
				b = append(b, chunk[:MaxCSVLine-len(b)]...)
				long = true
			} else {
				b = append(b, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			lr.err = err
			if len(b) == 0 || !errors.Is(err, io.EOF) {
				return csvLine{}, err // a failed read: not even part of the line
			}
		}
		break
	}
	lr.n++
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return csvLine{text: string(b), n: lr.n, long: long}, nil
}

// record parses the record starting with line first, taking more lines
// while a quoted field is open. It returns the fields, the lines used,
// and what is wrong ("" when the fields are good CSV).
func (lr *lineReader) record(first csvLine) (fields []string, span []csvLine, problem string, err error) {
	span = []csvLine{first}
	var p csvParser
	for {
		last := span[len(span)-1]
		if last.long {
			return nil, span, fmt.Sprintf("line %d is longer than %d bytes", last.n, MaxCSVLine), nil
		}
		if !p.line(last) {
			return p.fields, span, p.problem, nil
		}
		if len(span) == MaxCSVRecordLines {
			return p.fields, span, fmt.Sprintf("the quoted field is still open after %d lines", MaxCSVRecordLines), nil
		}
		l, err := lr.next()
		if errors.Is(err, io.EOF) {
			return p.fields, span, "the quoted field is still open at the end of the input", nil
		}
		if err != nil {
			return nil, span, "", err
		}
		span = append(span, l)
	}
}

// csvParser parses one CSV record (RFC 4180, strictly), a line at a time;
// the line breaks inside a quoted field belong to it.
type csvParser struct {
	fields  []string
	f       strings.Builder
	quoted  bool // inside a quoted field
	problem string
}

// line parses the next line of the record. It reports whether a quoted
// field is still open at its end (the record goes on); otherwise fields
// and problem are final.
func (p *csvParser) line(l csvLine) (open bool) {
	if p.quoted {
		p.f.WriteByte('\n')
	}
	s := l.text
	afterQuote, fieldStart := false, !p.quoted
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case p.quoted && c == '"':
			if i+1 < len(s) && s[i+1] == '"' {
				p.f.WriteByte('"')
				i++
			} else {
				p.quoted, afterQuote = false, true
			}
		case p.quoted:
			p.f.WriteByte(c)
		case c == ',':
			p.fields = append(p.fields, p.f.String())
			p.f.Reset()
			fieldStart, afterQuote = true, false
		case afterQuote:
			p.problem = fmt.Sprintf("line %d: %q after the closing quote of a field", l.n, c)
			return false
		case c == '"' && fieldStart:
			p.quoted, fieldStart = true, false
		case c == '"':
			p.problem = fmt.Sprintf("line %d: a quote inside a field that is not quoted (quote the field and double the quote)", l.n)
			return false
		default:
			p.f.WriteByte(c)
			fieldStart = false
		}
	}
	if p.quoted {
		return true
	}
	p.fields = append(p.fields, p.f.String())
	return false
}

// blank reports whether a line holds nothing but blanks.
func blank(s string) bool { return strings.TrimLeft(s, " \t") == "" }

// csvColumns checks a header row and returns the canonical name of each
// column.
func csvColumns(header []string) ([]string, error) {
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		c := canonicalName(strings.TrimSpace(h))
		if c == "" {
			return nil, fmt.Errorf("unknown column %q; the columns are %s", h, strings.Join(fieldNames, ", "))
		}
		if seen[c] {
			return nil, fmt.Errorf("column %s appears twice", c)
		}
		seen[c] = true
		cols[i] = c
	}
	var missing []string
	for _, c := range []string{"email", "id", "status", "startDate", "stopDate", "purchaseDate", "price", "currency", "recurring"} {
		if !seen[c] {
			missing = append(missing, c)
		}
	}
	if !seen["productUrl"] && !seen["productId"] {
		missing = append(missing, "productUrl (or productId)")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("the header lacks the columns %s", strings.Join(missing, ", "))
	}
	return cols, nil
}

// csvRaw is a CSV record as a JSON object of column → value, in column
// order, or as an array of values when cols is nil.
func csvRaw(cols, row []string) json.RawMessage {
	var b bytes.Buffer
	if cols == nil {
		out, _ := json.Marshal(row) // strings always marshal
		return out
	}
	b.WriteByte('{')
	for i, c := range cols {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(c)
		v, _ := json.Marshal(row[i])
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// Format is the form of an input: FormatJSON, FormatCSV, or FormatAuto to
// decide from the file's name or its first byte.
type Format string

// Input formats.
const (
	FormatAuto Format = "auto"
	FormatJSON Format = "json"
	FormatCSV  Format = "csv"
)

// Read reads one input of format f with ReadEncoded in EncodingAuto.
func Read(r io.Reader, name string, f Format, emit func(*Record) error) error {
	_, err := ReadEncoded(r, name, f, EncodingAuto, emit)
	return err
}

// ReadEncoded decodes one input by enc (see NewDecoder) and reads it in
// format f (FormatAuto: sniffed from the first character that is not a
// blank: "{" or "[" is JSON, anything else CSV) with ReadJSON or ReadCSV.
// It reports the encoding detected; an input that is not valid in its
// encoding fails with an *EncodingError once the records before the bad
// line have been emitted.
func ReadEncoded(r io.Reader, name string, f Format, enc Encoding, emit func(*Record) error) (Detected, error) {
	dr, det, err := NewDecoder(r, name, enc)
	if err != nil {
		return "", err
	}
	br := bufio.NewReaderSize(dr, 64<<10)
	if f == FormatAuto {
		f = FormatCSV
		for i := 1; ; i++ {
			b, err := br.Peek(i)
			if len(b) < i || err != nil {
				break
			}
			if c := b[i-1]; c == '{' || c == '[' {
				f = FormatJSON
				break
			} else if !strings.ContainsRune(" \t\r\n", rune(c)) {
				break
			}
		}
	}
	if f == FormatJSON {
		return det, ReadJSON(br, name, emit)
	}
	return det, ReadCSV(br, name, emit)
}

// readError names the input in an error of its reader, unless the error
// (an *EncodingError) already does.
func readError(name string, err error) error {
	var ee *EncodingError
	if errors.As(err, &ee) {
		return err
	}
	return fmt.Errorf("read %s: %w", name, err)
}
