package sqlfilter

import (
	"fmt"
	"strings"

	"github.com/licensor/licensor"
)

// ProductList is the SQL of a product list page, the same on both engines
// but for the placeholders and the substring test.
type ProductList struct {
	Field string // the sort field ("id" when none was asked for)
	Limit int    // the page size; Query reads one row more
	// Query selects the page, with columns for %s; Count counts every
	// match (count=true) with the first CountArgs arguments.
	Query, Count string
	CountArgs    int
}

// counting is Args that counts the arguments it is given.
type counting struct {
	Args
	n int
}

func (c *counting) Arg(v any) string { c.n++; return c.Args.Arg(v) }

// Products writes the SQL of a product list page. contains is the
// engine's substring test, a format with two %s for the haystack and the
// needle (`instr(%s, %s) > 0` on SQLite, `strpos(%s, %s) > 0` on
// PostgreSQL); ph must hold no arguments yet.
func Products(args Args, q licensor.ProductQuery, contains string) (*ProductList, error) {
	ph := &counting{Args: args}
	field := q.Sort.Field
	if field == "" {
		field = "id"
	}
	switch field {
	case "id", "title", "created_at":
	default:
		return nil, &licensor.Error{Code: licensor.CodeInvalidParameter, Parameter: "sort",
			Detail: fmt.Sprintf("cannot sort products by %q", field)}
	}
	conds := []string{"deleted_at IS NULL"}
	f := q.Filter
	if f.Type != nil {
		conds = append(conds, "type = "+ph.Arg(*f.Type))
	}
	if f.IsPremium != nil {
		conds = append(conds, "is_premium = "+ph.Arg(*f.IsPremium))
	}
	if f.IsBuyable != nil {
		conds = append(conds, "is_buyable = "+ph.Arg(*f.IsBuyable))
	}
	if f.IsVisible != nil {
		conds = append(conds, "is_visible = "+ph.Arg(*f.IsVisible))
	}
	if f.Title != nil {
		conds = append(conds, fmt.Sprintf(contains, "title_lower", ph.Arg(strings.ToLower(*f.Title))))
	}
	out := &ProductList{Field: field, Limit: PageLimit(q.Limit), CountArgs: ph.n,
		Count: "SELECT count(*) FROM products WHERE " + strings.Join(conds, " AND ")}

	op, dir := ">", "ASC"
	if q.Sort.Desc {
		op, dir = "<", "DESC"
	}
	if a := q.After; a != nil {
		if field == "id" {
			conds = append(conds, "id "+op+" "+ph.Arg(a.ID))
		} else {
			// The leading bound, implied by the row comparison, makes
			// SQLite search the index rather than scan it.
			var v any = a.Int
			if field == "title" {
				v = a.Str
			}
			conds = append(conds, fmt.Sprintf("%s %s= %s AND (%s, id) %s (%s, %s)",
				field, op, ph.Arg(v), field, op, ph.Arg(v), ph.Arg(a.ID)))
		}
	}
	order := "id " + dir
	if field != "id" {
		order = field + " " + dir + ", id " + dir
	}
	out.Query = "SELECT %s FROM products WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY " + order + " LIMIT " + ph.Arg(out.Limit+1)
	return out, nil
}

// Page cuts the rows read (one more than the page when another follows)
// to the page and sets the cursor of the next one.
func (q *ProductList) Page(page *licensor.ProductPage) {
	if len(page.Products) <= q.Limit {
		return
	}
	page.Products = page.Products[:q.Limit]
	last := page.Products[q.Limit-1]
	switch q.Field {
	case "id":
		page.Next = &licensor.Cursor{Int: last.ID, ID: last.ID}
	case "title":
		page.Next = &licensor.Cursor{Str: last.Title, ID: last.ID}
	case "created_at":
		page.Next = &licensor.Cursor{Int: last.CreatedAt, ID: last.ID}
	}
}
