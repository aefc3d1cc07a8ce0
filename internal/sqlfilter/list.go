package sqlfilter

import (
	"fmt"
	"strings"

	"github.com/licensor/licensor"
)

// List is the SQL of one page of a list: Query (with %s for the columns)
// and its Args read the page and one row more, to know whether another
// follows; Count and its CountArgs count every match (count=true).
type List struct {
	Field     string // the sort field ("id" when none was asked for)
	Limit     int    // the page size
	Query     string
	Args      []any
	Count     string
	CountArgs []any
}

// order is the ORDER BY of a walk by key, id as the tie-breaker.
func order(field, key string, desc bool) string {
	dir := "ASC"
	if desc {
		dir = "DESC"
	}
	if field == "id" {
		return "id " + dir
	}
	return key + " " + dir + ", id " + dir
}

// Licenses writes the SQL of a page of live licenses.
func Licenses(d Dialect, q licensor.LicenseQuery) (*List, error) {
	field := q.Sort.Field
	if field == "" {
		field = "id"
	}
	key, ok := LicenseSortKey(field)
	if !ok {
		return nil, &licensor.Error{Code: licensor.CodeInvalidParameter, Parameter: "sort",
			Detail: fmt.Sprintf("cannot sort licenses by %q", field)}
	}
	list := &List{Field: field, Limit: PageLimit(q.Limit)}

	// The keyset bound comes first: SQLite starts an index range at the
	// first usable bound of the WHERE clause, and past the first page the
	// cursor's bound is tighter than a range filter on the sort key.
	ph := d.Args()
	var conds []string
	if q.After != nil {
		conds = append(conds, LicenseKeyset(ph, field, q.After, q.Sort.Desc))
	}
	filter, err := LicenseConditions(ph, q.Filter, q.Now)
	if err != nil {
		return nil, err
	}
	conds = append(conds, filter...)
	list.Query = "SELECT %s FROM licenses WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY " + order(field, key, q.Sort.Desc) + " LIMIT " + ph.Arg(list.Limit+1)
	list.Args = ph.Values
	if q.Count {
		cph := d.Args()
		filter, _ := LicenseConditions(cph, q.Filter, q.Now) // as above: no error
		list.Count, list.CountArgs = "SELECT count(*) FROM licenses WHERE "+strings.Join(filter, " AND "), cph.Values
	}
	return list, nil
}

// LicensePage cuts the rows read to the page, sets the cursor of the next
// one and each license's effective status at now.
func (list *List) LicensePage(page *licensor.LicensePage, now int64) {
	if len(page.Licenses) > list.Limit {
		page.Licenses = page.Licenses[:list.Limit]
		page.Next = LicenseCursor(&page.Licenses[list.Limit-1], list.Field)
	}
	for i := range page.Licenses {
		page.Licenses[i].Status = page.Licenses[i].EffectiveStatus(now)
	}
}

// Products writes the SQL of a page of live products.
func Products(d Dialect, q licensor.ProductQuery) (*List, error) {
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
	list := &List{Field: field, Limit: PageLimit(q.Limit)}
	ph := d.Args()
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
		conds = append(conds, d.contains("title_lower", ph.Arg(strings.ToLower(*f.Title))))
	}
	if q.Count {
		list.Count = "SELECT count(*) FROM products WHERE " + strings.Join(conds, " AND ")
		list.CountArgs = append([]any(nil), ph.Values...)
	}
	if a := q.After; a != nil {
		op := ">"
		if q.Sort.Desc {
			op = "<"
		}
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
	list.Query = "SELECT %s FROM products WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY " + order(field, field, q.Sort.Desc) + " LIMIT " + ph.Arg(list.Limit+1)
	list.Args = ph.Values
	return list, nil
}

// ProductPage cuts the rows read to the page and sets the cursor of the
// next one.
func (list *List) ProductPage(page *licensor.ProductPage) {
	if len(page.Products) <= list.Limit {
		return
	}
	page.Products = page.Products[:list.Limit]
	page.Next = licensor.ProductCursor(&page.Products[list.Limit-1], list.Field)
}

// Events writes the SQL of a page of the change feed up to head, the last
// position committed, when the events through pruned are gone: a position
// before pruned or beyond head is CodeInvalidCursor.
func Events(d Dialect, q licensor.EventQuery, head, pruned int64) (*List, error) {
	if q.After > 0 && q.After < pruned {
		return nil, licensor.FeedCursorPruned(q.After, pruned)
	}
	if q.After > head {
		return nil, licensor.FeedCursorAhead(q.After, head)
	}
	list := &List{Field: "seq", Limit: PageLimit(q.Limit)}
	ph := d.Args()
	conds := EventConditions(ph, q.Filter)
	conds = append(conds, "seq > "+ph.Arg(q.After), "seq <= "+ph.Arg(head))
	list.Query = "SELECT %s FROM events WHERE " + strings.Join(conds, " AND ") + " ORDER BY seq LIMIT " + ph.Arg(list.Limit)
	list.Args = ph.Values
	return list, nil
}

// EventPage sets the position the reader of the events read up to head
// continues from: the last event's on a full page, else head.
func (list *List) EventPage(page *licensor.EventPage, head int64) {
	page.Next = head
	if len(page.Events) == list.Limit {
		page.Next = page.Events[list.Limit-1].Seq
	}
}

// Deliveries writes the SQL of a page of a webhook's delivery log, newest
// first.
func Deliveries(d Dialect, q licensor.DeliveryQuery) *List {
	list := &List{Field: "id", Limit: PageLimit(q.Limit)}
	ph := d.Args()
	conds := []string{"webhook_id = " + ph.Arg(q.WebhookID)}
	if q.State != nil {
		conds = append(conds, "state = "+ph.Arg(string(*q.State)))
	}
	if q.EventSeq != nil {
		conds = append(conds, "event_seq = "+ph.Arg(*q.EventSeq))
	}
	if q.Before > 0 {
		conds = append(conds, "id < "+ph.Arg(q.Before))
	}
	list.Query = "SELECT %s FROM webhook_deliveries WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY id DESC LIMIT " + ph.Arg(list.Limit+1)
	list.Args = ph.Values
	return list
}

// DeliveryPage cuts the rows read to the page and sets the id to continue
// before.
func (list *List) DeliveryPage(page *licensor.DeliveryPage) {
	if len(page.Deliveries) > list.Limit {
		page.Deliveries = page.Deliveries[:list.Limit]
		page.Next = page.Deliveries[list.Limit-1].ID
	}
}

// BulkNext writes the query of the next chunk of a bulk job: the ids, in
// order, of up to limit live licenses after after and up to until that
// match f at now. It runs on a reader, before the chunk's write
// transaction, so that a filter that matches sparsely (a scan) holds no
// write lock.
func BulkNext(d Dialect, f licensor.LicenseFilter, now, after, until int64, limit int) (string, []any, error) {
	ph := d.Args()
	conds := []string{"id > " + ph.Arg(after), "id <= " + ph.Arg(until)}
	filter, err := LicenseConditions(ph, f, now)
	if err != nil {
		return "", nil, err
	}
	conds = append(conds, filter...)
	return "SELECT id FROM licenses WHERE " + strings.Join(conds, " AND ") +
		" ORDER BY id LIMIT " + ph.Arg(PageLimit(limit)), ph.Values, nil
}

// BulkRecheck writes the query (with %s for the columns) that reads,
// inside a chunk's write transaction, those of ids (found by BulkNext)
// that still are live and match f at now, in id order.
func BulkRecheck(d Dialect, f licensor.LicenseFilter, now int64, ids []int64) (string, []any, error) {
	ph := d.Args()
	in := ph.InIDs("id", ids)
	filter, err := LicenseConditions(ph, f, now)
	if err != nil {
		return "", nil, err
	}
	return "SELECT %s FROM licenses WHERE " + in + " AND " + strings.Join(filter, " AND ") + " ORDER BY id", ph.Values, nil
}
