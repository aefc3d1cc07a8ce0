package legacy

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ReadCSV reads legacy licenses in CSV form and calls emit with each
// record, in order. name is the source name used in Record.Source.
//
// The first row is a header naming the columns, in any order and any case:
// email, id, status, startDate, stopDate, purchaseDate, price, currency,
// recurring, and productUrl or productId (or both; productUrl wins), plus
// the optional paymentMethod. Every field holds what the legacy JSON
// member of the same name holds; an empty field is an absent value. A
// header with an unknown, repeated or missing column is an error, returned
// before any record is emitted. A record whose number of fields differs
// from the header's, or that is not valid CSV, is emitted with Err set.
//
// ReadCSV returns the first error of the reader, of the header, or of emit.
func ReadCSV(r io.Reader, name string, emit func(*Record) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty CSV file: want a header row", name)
	}
	if err != nil {
		return fmt.Errorf("%s: header: %w", name, err)
	}
	cols, err := csvColumns(header)
	if err != nil {
		return fmt.Errorf("%s:1: %w", name, err)
	}
	cr.FieldsPerRecord = len(cols)
	emailCol := -1
	for i, c := range cols {
		if c == "email" {
			emailCol = i
		}
	}
	for {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		line, _ := cr.FieldPos(0)
		rec := &Record{}
		var perr *csv.ParseError
		switch {
		case err == nil:
			rec.Raw = csvRaw(cols, row)
		case errors.As(err, &perr) && errors.Is(err, csv.ErrFieldCount):
			line = perr.StartLine
			rec.Raw = csvRaw(nil, row)
			rec.Err = fmt.Errorf("%d fields, but the header has %d", len(row), len(cols))
		case errors.As(err, &perr):
			line = perr.StartLine
			rec.Raw = json.RawMessage("null")
			rec.Err = fmt.Errorf("malformed CSV: %v", perr.Err)
		default:
			return fmt.Errorf("read %s: %w", name, err)
		}
		rec.Source = fmt.Sprintf("%s:%d", name, line)
		if rec.Err == nil {
			for i, c := range cols {
				if c == "email" {
					continue
				}
				if row[i] != "" {
					*rec.Fields.byName(c) = Field{Text: row[i], Kind: KindString, Set: true}
				}
			}
			rec.Email = row[emailCol]
		}
		if err := emit(rec); err != nil {
			return err
		}
	}
}

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

// Read reads one input of format f (FormatAuto: sniffed from the first
// byte that is not a blank: "{" or "[" is JSON, anything else CSV) with
// ReadJSON or ReadCSV.
func Read(r io.Reader, name string, f Format, emit func(*Record) error) error {
	if f == FormatAuto {
		br := bufio.NewReader(r)
		f = FormatCSV
		for i := 1; ; i++ {
			b, err := br.Peek(i)
			if len(b) < i || err != nil {
				break
			}
			if c := b[i-1]; c == '{' || c == '[' {
				f = FormatJSON
				break
			} else if !strings.ContainsRune(" \t\r\n", rune(c)) && c != 0xef && c != 0xbb && c != 0xbf { // blanks, a byte order mark
				break
			}
		}
		r = br
	}
	if f == FormatJSON {
		return ReadJSON(r, name, emit)
	}
	return ReadCSV(r, name, emit)
}
