package legacy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
)

// ReadUsers reads the users mapping: CSV with a header row naming the
// columns email and user_id (any order, any case; other columns are
// ignored), then one row per legacy user. E-mails are compared without
// surrounding blanks and case-insensitively; an e-mail may appear twice only
// with the same user id. Several e-mails may map to one user. name is used
// in error messages.
func ReadUsers(r io.Reader, name string) (map[string]string, error) {
	users := map[string]string{}
	err := readMapping(r, name, "email", "user_id", func(line int, email, user string) error {
		key := NormalizeEmail(email)
		if key == "" {
			return errors.New("empty e-mail")
		}
		if !licensor.ValidUserID(user) {
			return fmt.Errorf("user_id %s is not a v4 user id (1 to 64 characters of A-Z a-z 0-9 . _ : -)", strconv.Quote(user))
		}
		if prev, ok := users[key]; ok && prev != user {
			return fmt.Errorf("e-mail %s is mapped to both %s and %s", strconv.Quote(email), prev, user)
		}
		users[key] = user
		return nil
	})
	return users, err
}

// ReadProducts reads the products mapping: CSV with a header row naming
// the columns legacy_product_id and product_id (the v4 product id, a
// positive integer), then one row per legacy product. Legacy product ids
// are compared exactly.
func ReadProducts(r io.Reader, name string) (map[string]int64, error) {
	products := map[string]int64{}
	err := readMapping(r, name, "legacy_product_id", "product_id", func(line int, legacy, v4 string) error {
		if legacy == "" {
			return errors.New("empty legacy_product_id")
		}
		id, err := strconv.ParseInt(v4, 10, 64)
		if err != nil || id <= 0 {
			return fmt.Errorf("product_id %s is not a positive integer", strconv.Quote(v4))
		}
		if prev, ok := products[legacy]; ok && prev != id {
			return fmt.Errorf("legacy product %s is mapped to both %d and %d", strconv.Quote(legacy), prev, id)
		}
		products[legacy] = id
		return nil
	})
	return products, err
}

// readMapping reads a two-column mapping with a header, calling row for
// each record with the values of the columns from and to.
func readMapping(r io.Reader, name, from, to string, row func(line int, from, to string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: empty file; want a header row %s,%s", name, from, to)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fi, ti := -1, -1
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		switch {
		case strings.EqualFold(h, from):
			fi = i
		case strings.EqualFold(h, to):
			ti = i
		}
	}
	if fi < 0 || ti < 0 {
		return fmt.Errorf("%s:1: the header row must name the columns %s and %s, got %q", name, from, to, strings.Join(header, ","))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		if fi >= len(rec) || ti >= len(rec) {
			return fmt.Errorf("%s:%d: %d fields, want at least %d", name, line, len(rec), max(fi, ti)+1)
		}
		if err := row(line, strings.TrimSpace(rec[fi]), strings.TrimSpace(rec[ti])); err != nil {
			return fmt.Errorf("%s:%d: %w", name, line, err)
		}
	}
}
