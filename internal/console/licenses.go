package console

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/licensor/licensor"
)

// The license search takes the API's filters (GET /licenses), named as
// there, plus range rows (range_field, range_op, range_value, repeated):
// a value is unix seconds, a date (2026-12-01) or a UTC time
// (2026-12-01T10:00 or RFC 3339).
const (
	searchRows      = 2 // range rows in the form
	defaultPageSize = 50
)

type rangeRow struct {
	Field, Op, Value string
}

type licenseSearch struct {
	User, Product, Order string
	Statuses             []string
	Recurring            string // "", "true", "false"
	Ranges               []rangeRow
	Sort                 string
	Desc                 bool
	Size                 int
	Count                bool

	AllStatuses   []licensor.Status
	SortFields    []string
	RangeFields   []string
	RangeOps      []string
	Sizes         []int
	Problems      []string
	Results       []held
	Total         *int64
	Next          string // URL of the next page
	First         string // URL of the first page, when this is a later one
	Searched      bool
	ResultsHeader string
}

// HasStatus reports whether the search selects status st.
func (d *licenseSearch) HasStatus(st licensor.Status) bool {
	return slices.Contains(d.Statuses, string(st))
}

// parseTime reads a range value.
func parseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.Unix(), nil
		}
	}
	return 0, fmt.Errorf("%q is not a time: give unix seconds, a date (2026-12-01) or a UTC time (2026-12-01T10:00)", s)
}

// searchScope is a digest of what decides a search's results except the
// page, so that a page link is only followed for the search it was made
// for (as the API's cursors).
func searchScope(v url.Values) string {
	var parts []string
	for k, vs := range v {
		if k == "after" || k == "size" || k == "count" {
			continue
		}
		for _, x := range vs {
			if x != "" {
				parts = append(parts, k+"="+x)
			}
		}
	}
	slices.Sort(parts)
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return base64.RawURLEncoding.EncodeToString(h[:9])
}

type pageCursor struct {
	Int   int64  `json:"k,omitempty"`
	Str   string `json:"s,omitempty"`
	ID    int64  `json:"i"`
	Scope string `json:"q"`
}

func encodePageCursor(c *licensor.Cursor, scope string) string {
	b, _ := json.Marshal(pageCursor{Int: c.Int, Str: c.Str, ID: c.ID, Scope: scope})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePageCursor(s, scope string) (*licensor.Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	var pc pageCursor
	if err != nil || len(b) > 4096 || json.Unmarshal(b, &pc) != nil || pc.ID <= 0 {
		return nil, licensor.Errorf(licensor.CodeInvalidCursor, "the page link is damaged; start the search again")
	}
	if pc.Scope != scope {
		return nil, licensor.Errorf(licensor.CodeInvalidCursor, "the page link was made for another search; start the search again")
	}
	return &licensor.Cursor{Int: pc.Int, Str: pc.Str, ID: pc.ID}, nil
}

// licenses is the license search: the API's filters, sorts and keyset
// paging over Store.FindLicenses.
func (c *Console) licenses(w http.ResponseWriter, r *http.Request, s *session) error {
	q, now := r.URL.Query(), c.now()
	d := &licenseSearch{
		User: strings.TrimSpace(q.Get("filter[user_id]")), Product: strings.TrimSpace(q.Get("filter[product_id]")),
		Order: strings.TrimSpace(q.Get("filter[order_id]")), Recurring: q.Get("filter[recurring]"),
		Sort: q.Get("sort"), Desc: q.Get("desc") == "1", Count: q.Get("count") == "1",
		AllStatuses: licensor.Statuses(), SortFields: licensor.LicenseSortFields(),
		RangeFields: licensor.LicenseRangeFields(), RangeOps: licensor.RangeOps(), Sizes: []int{10, 50, 100, 500},
		Size: defaultPageSize,
	}
	lq := licensor.LicenseQuery{Now: now, Count: d.Count}
	problem := func(format string, args ...any) { d.Problems = append(d.Problems, fmt.Sprintf(format, args...)) }
	if d.User != "" {
		if !licensor.ValidUserID(d.User) {
			problem("A user id is 1 to 64 characters of A-Z a-z 0-9 . _ : -")
		}
		lq.Filter.UserID = &d.User
	}
	if d.Product != "" {
		id, err := strconv.ParseInt(d.Product, 10, 64)
		if err != nil || id <= 0 {
			problem("A product id is a positive number.")
		}
		lq.Filter.ProductID = &id
	}
	if d.Order != "" {
		lq.Filter.OrderID = &d.Order
	}
	for _, v := range q["filter[status]"] {
		for _, part := range strings.Split(v, ",") {
			st := licensor.Status(strings.TrimSpace(part))
			if !st.Valid() {
				problem("Unknown status %q.", part)
				continue
			}
			d.Statuses = append(d.Statuses, string(st))
			lq.Filter.Statuses = append(lq.Filter.Statuses, st)
		}
	}
	switch d.Recurring {
	case "":
	case "true", "false":
		b := d.Recurring == "true"
		lq.Filter.Recurring = &b
	default:
		problem("Recurring is yes, no or either.")
	}
	fields, ops, values := q["range_field"], q["range_op"], q["range_value"]
	for i := range values {
		row := rangeRow{Value: strings.TrimSpace(values[i])}
		if i < len(fields) {
			row.Field = fields[i]
		}
		if i < len(ops) {
			row.Op = ops[i]
		}
		if row.Value == "" {
			continue
		}
		d.Ranges = append(d.Ranges, row)
		if !slices.Contains(d.RangeFields, row.Field) || !slices.Contains(d.RangeOps, row.Op) {
			problem("A range needs a field and an operator.")
			continue
		}
		t, err := parseTime(row.Value)
		if err != nil {
			problem("%v", err)
			continue
		}
		lq.Filter.Ranges = append(lq.Filter.Ranges, licensor.Range{Field: row.Field, Op: row.Op, Value: t})
	}
	for len(d.Ranges) < searchRows {
		d.Ranges = append(d.Ranges, rangeRow{Field: "stop_date", Op: "lt"})
	}
	if d.Sort == "" {
		d.Sort = "id"
	}
	if !slices.Contains(d.SortFields, d.Sort) {
		problem("Cannot sort by %q.", d.Sort)
	}
	lq.Sort = licensor.SortOrder{Field: d.Sort, Desc: d.Desc}
	if n, err := strconv.Atoi(q.Get("size")); err == nil {
		if n < 1 || n > licensor.MaxPageSize {
			problem("A page has 1 to %d licenses.", licensor.MaxPageSize)
		}
		d.Size = n
	}
	lq.Limit = d.Size
	scope := searchScope(q)
	if a := q.Get("after"); a != "" {
		cur, err := decodePageCursor(a, scope)
		if err != nil {
			problem("%s", err.(*licensor.Error).Detail)
		}
		lq.After = cur
		first := cloneValues(q)
		first.Del("after")
		d.First = Prefix + "/licenses?" + first.Encode()
	}
	d.Searched = len(q) > 0
	status := http.StatusOK
	if len(d.Problems) > 0 {
		status = http.StatusBadRequest
	} else if d.Searched {
		p, err := c.store.FindLicenses(r.Context(), lq)
		if err != nil {
			return err
		}
		d.Results = make([]held, len(p.Licenses))
		products := map[int64]*licensor.Product{}
		for i, l := range p.Licenses {
			pr, ok := products[l.ProductID]
			if !ok {
				if pr, err = c.store.FindProductByID(r.Context(), l.ProductID); err != nil && licensor.ErrorCode(err) != licensor.CodeProductNotFound {
					return err
				}
				products[l.ProductID] = pr
			}
			d.Results[i] = held{l, pr}
		}
		d.Total = p.Total
		if p.Next != nil {
			next := cloneValues(q)
			next.Set("after", encodePageCursor(p.Next, scope))
			d.Next = Prefix + "/licenses?" + next.Encode()
		}
	}
	c.render(w, r, status, "licenses", s, page{Title: "Licenses", Nav: "licenses", Data: d})
	return nil
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

type licenseData struct {
	License *licensor.License // nil once deleted
	Status  licensor.Status   // effective
	Product *licensor.Product
	Events  []licensor.Event
	More    bool
	// Deleted is the license.deleted event of a deleted license: its
	// tombstone as the change feed keeps it.
	Deleted *licensor.Event
	Former  string // the license as it was, JSON
	ID      int64
	Confirm bool // the delete confirmation
}

func pathInt(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, licensor.Errorf(licensor.CodeNotFound, "%q is not an id", r.PathValue(name))
	}
	return id, nil
}

// loadLicense reads a license with its product and history; a deleted
// license is found by its license.deleted event while the history keeps
// it.
func (c *Console) loadLicense(r *http.Request, id int64) (*licenseData, error) {
	ctx := r.Context()
	d := &licenseData{ID: id}
	l, err := c.store.FindLicenseByID(ctx, id)
	switch {
	case err == nil:
		d.License, d.Status = l, l.EffectiveStatus(c.now())
		if d.Product, err = c.store.FindProductByID(ctx, l.ProductID); err != nil && licensor.ErrorCode(err) != licensor.CodeProductNotFound {
			return nil, err
		}
	case licensor.ErrorCode(err) != licensor.CodeLicenseNotFound:
		return nil, err
	}
	const limit = 100
	ep, err := c.store.Events(ctx, licensor.EventQuery{Filter: licensor.EventFilter{LicenseID: &id}, Limit: limit})
	if err != nil && licensor.ErrorCode(err) != licensor.CodeInvalidCursor {
		return nil, err
	}
	if err == nil {
		d.Events, d.More = ep.Events, len(ep.Events) == limit
	}
	for i := range d.Events {
		if e := &d.Events[i]; e.Type == licensor.EventLicenseDeleted {
			d.Deleted = e
			var buf bytes.Buffer
			if json.Indent(&buf, e.Data, "", "  ") == nil {
				d.Former = buf.String()
			}
		}
	}
	if d.License == nil && d.Deleted == nil {
		return nil, licensor.Errorf(licensor.CodeLicenseNotFound, "license %d does not exist (or was deleted longer ago than the history keeps)", id)
	}
	return d, nil
}

// license is a license's page: its attributes, its history, and its
// tombstone once deleted.
func (c *Console) license(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	d, err := c.loadLicense(r, id)
	if err != nil {
		return err
	}
	c.render(w, r, http.StatusOK, "license", s, page{Title: fmt.Sprintf("License %d", id), Nav: "licenses", Data: d})
	return nil
}

// confirmDeleteLicense asks before a deletion.
func (c *Console) confirmDeleteLicense(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	d, err := c.loadLicense(r, id)
	if err != nil {
		return err
	}
	if d.License == nil {
		return licensor.Errorf(licensor.CodeLicenseNotFound, "license %d is already deleted", id)
	}
	d.Confirm = true
	c.render(w, r, http.StatusOK, "license", s, page{Title: fmt.Sprintf("Delete license %d?", id), Nav: "licenses", Data: d})
	return nil
}

// deleteLicense deletes a license as DELETE /licenses/{id} does.
func (c *Console) deleteLicense(w http.ResponseWriter, r *http.Request, s *session) error {
	id, err := pathInt(r, "id")
	if err != nil {
		return err
	}
	if _, _, err := c.store.DeleteLicenses(r.Context(), []int64{id}, false, c.change(s)); err != nil {
		return err
	}
	c.log.Info("console: license deleted", "license", id, "key", s.key.Name)
	redirect(w, r, fmt.Sprintf("/licenses/%d?done=deleted", id))
	return nil
}
