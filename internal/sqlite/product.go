package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

const productColumns = `id, title, description, type, is_premium, is_buyable, is_visible, recurring,
	price_amount, price_currency, license_period, channels, created_at, updated_at, version`

func scanProduct(s rowScanner) (*licensor.Product, error) {
	var p licensor.Product
	var period sql.NullString
	var channels string
	err := s.Scan(&p.ID, &p.Title, &p.Description, &p.Type, &p.IsPremium, &p.IsBuyable, &p.IsVisible, &p.Recurring,
		&p.PriceAmount, &p.PriceCurrency, &period, &channels, &p.CreatedAt, &p.UpdatedAt, &p.Version)
	if err != nil {
		return nil, err
	}
	p.LicensePeriod = period.String
	if p.Channels, err = licensor.ParseChannels(channels); err != nil {
		return nil, fmt.Errorf("product %d: %w", p.ID, err)
	}
	return &p, nil
}

// CreateProduct stores p and sets its ID, CreatedAt, UpdatedAt and Version.
func (db *DB) CreateProduct(ctx context.Context, p *licensor.Product, c licensor.Change) error {
	if p.Channels == nil {
		p.Channels = licensor.Channels{}
	}
	channels, err := licensor.FormatChannels(p.Channels)
	if err != nil {
		return fmt.Errorf("sqlite: create product: %w", err)
	}
	var id int64
	err = db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO products (title, title_lower, description, type,
	is_premium, is_buyable, is_visible, recurring, price_amount, price_currency, license_period,
	channels, created_at, updated_at, version)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
RETURNING id`,
			p.Title, strings.ToLower(p.Title), p.Description, p.Type,
			p.IsPremium, p.IsBuyable, p.IsVisible, p.Recurring, p.PriceAmount, p.PriceCurrency, nullIfEmpty(p.LicensePeriod),
			channels, c.Time, c.Time).Scan(&id)
		if err != nil {
			return err
		}
		created := *p
		created.ID, created.CreatedAt, created.UpdatedAt, created.Version = id, c.Time, c.Time, 1
		if err := storeWithWrite(ctx, db.wq(tx), c, &created); err != nil {
			return err
		}
		return appendEvents(ctx, db.wq(tx), []licensor.Event{licensor.ProductEvent(licensor.EventProductCreated, &created, c)})
	})
	if err != nil {
		return fmt.Errorf("sqlite: create product: %w", interpretError(err))
	}
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id, c.Time, c.Time, 1
	markStored(c)
	db.committed.fire()
	return nil
}

// FindProductByID returns a live product.
func (db *DB) FindProductByID(ctx context.Context, id int64) (*licensor.Product, error) {
	p, err := findProduct(pointQuery(ctx), db.rq(), id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find product: %w", unavailable(err))
	}
	return p, nil
}

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func findProduct(ctx context.Context, q querier, id int64) (*licensor.Product, error) {
	p, err := scanProduct(q.QueryRowContext(ctx,
		`SELECT `+productColumns+` FROM products WHERE id = ? AND deleted_at IS NULL`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, licensor.ProductNotFound(id)
	}
	return p, err
}

// UpdateProduct applies patch to a live product in one transaction.
func (db *DB) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, c licensor.Change) (*licensor.Product, error) {
	var out *licensor.Product
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		cur, err := findProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := cur.CheckIfMatch(ifMatch); err != nil {
			return err
		}
		p := patch.Apply(*cur)
		if err := p.Validate(); err != nil {
			return err
		}
		if p.Channels == nil {
			p.Channels = licensor.Channels{}
		}
		channels, err := licensor.FormatChannels(p.Channels)
		if err != nil {
			return err
		}
		p.Version, p.UpdatedAt = cur.Version+1, c.Time
		_, err = tx.ExecContext(ctx, `UPDATE products SET title = ?, title_lower = ?, description = ?, type = ?,
	is_premium = ?, is_buyable = ?, is_visible = ?, recurring = ?, price_amount = ?, price_currency = ?,
	license_period = ?, channels = ?, updated_at = ?, version = ?
WHERE id = ?`,
			p.Title, strings.ToLower(p.Title), p.Description, p.Type,
			p.IsPremium, p.IsBuyable, p.IsVisible, p.Recurring, p.PriceAmount, p.PriceCurrency,
			nullIfEmpty(p.LicensePeriod), channels, p.UpdatedAt, p.Version, id)
		if err != nil {
			return err
		}
		out = &p
		return appendEvents(ctx, db.wq(tx), []licensor.Event{licensor.ProductEvent(licensor.EventProductUpdated, &p, c)})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: update product: %w", interpretError(err))
	}
	db.committed.fire()
	return out, nil
}

// DeleteProduct tombstones a live product, and with opts.Cascade its live
// licenses, in one transaction.
func (db *DB) DeleteProduct(ctx context.Context, id int64, opts licensor.DeleteProductOptions, c licensor.Change) error {
	rows := 1
	if opts.Cascade {
		rows = aloneAbove + 1 // every license of the product, perhaps
	}
	err := db.writeTxSized(ctx, rows, func(ctx context.Context, tx *sql.Tx) error {
		p, err := findProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := p.CheckIfMatch(opts.IfMatch); err != nil {
			return err
		}
		var live int64
		err = tx.QueryRowContext(ctx,
			`SELECT count(*) FROM licenses WHERE product_id = ? AND deleted_at IS NULL`, id).Scan(&live)
		if err != nil {
			return err
		}
		var events []licensor.Event
		if live > 0 {
			if !opts.Cascade {
				return licensor.Errorf(licensor.CodeProductInUse,
					"product %d still has %d live licenses; delete them first or use cascade", id, live)
			}
			gone, err := deleteProductLicenses(ctx, tx, id, c)
			if err != nil {
				return err
			}
			events = licenseEvents(licensor.EventLicenseDeleted, gone, c)
		}
		_, err = tx.ExecContext(ctx, `UPDATE products SET deleted_at = ?, deleted_by = ? WHERE id = ?`, c.Time, c.Actor, id)
		if err != nil {
			return err
		}
		return appendEvents(ctx, db.wq(tx), append(events, licensor.ProductEvent(licensor.EventProductDeleted, p, c)))
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete product: %w", err)
	}
	db.committed.fire()
	return nil
}

// deleteProductLicenses tombstones the live licenses of a product and
// returns them as they were, by id.
func deleteProductLicenses(ctx context.Context, tx *sql.Tx, productID int64, c licensor.Change) ([]licensor.License, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE product_id = ? AND deleted_at IS NULL
RETURNING `+licenseColumns, c.Time, c.Actor, c.RequestID, productID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var gone []licensor.License
	for rows.Next() {
		l, err := scanLicense(rows)
		if err != nil {
			return nil, err
		}
		gone = append(gone, l)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(gone, func(a, b licensor.License) int { return compareInt(a.ID, b.ID) })
	return gone, nil
}

// productSortKey returns the SQL expression a product sort field orders by.
func productSortKey(field string) (string, bool) {
	switch field {
	case "id", "title", "created_at":
		return field, true
	}
	return "", false
}

// FindProducts lists live products, one keyset page at a time.
func (db *DB) FindProducts(ctx context.Context, q licensor.ProductQuery) (*licensor.ProductPage, error) {
	field := q.Sort.Field
	if field == "" {
		field = "id"
	}
	key, ok := productSortKey(field)
	if !ok {
		return nil, &licensor.Error{Code: licensor.CodeInvalidParameter, Parameter: "sort",
			Detail: fmt.Sprintf("cannot sort products by %q", field)}
	}
	limit := sqlfilter.PageLimit(q.Limit)

	var ph placeholders
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
		conds = append(conds, "instr(title_lower, "+ph.Arg(strings.ToLower(*f.Title))+") > 0")
	}
	countWhere, countArgs := strings.Join(conds, " AND "), append([]any(nil), ph.args...)

	op, dir := ">", "ASC"
	if q.Sort.Desc {
		op, dir = "<", "DESC"
	}
	if a := q.After; a != nil {
		switch field {
		case "id":
			conds = append(conds, "id "+op+" "+ph.Arg(a.ID))
		case "title":
			// The leading bound, implied by the row comparison, makes
			// SQLite search the index rather than scan it.
			conds = append(conds, fmt.Sprintf("title %s= %s AND (title, id) %s (%s, %s)",
				op, ph.Arg(a.Str), op, ph.Arg(a.Str), ph.Arg(a.ID)))
		default:
			conds = append(conds, fmt.Sprintf("%s %s= %s AND (%s, id) %s (%s, %s)",
				key, op, ph.Arg(a.Int), key, op, ph.Arg(a.Int), ph.Arg(a.ID)))
		}
	}
	order := "id " + dir
	if field != "id" {
		order = key + " " + dir + ", id " + dir
	}
	query := `SELECT ` + productColumns + ` FROM products WHERE ` + strings.Join(conds, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + ph.Arg(limit+1)

	page := &licensor.ProductPage{Products: []licensor.Product{}}
	run := func(qr querier) error {
		rows, err := qr.QueryContext(ctx, query, ph.args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			p, err := scanProduct(rows)
			if err != nil {
				return err
			}
			page.Products = append(page.Products, *p)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if q.Count {
			var total int64
			if err := qr.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE `+countWhere, countArgs...).Scan(&total); err != nil {
				return err
			}
			page.Total = &total
		}
		return nil
	}
	var err error
	if q.Count {
		err = db.readTx(ctx, func(tx *sql.Tx) error { return run(db.rtx(tx)) })
	} else {
		err = run(db.rq())
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find products: %w", unavailable(err))
	}
	if len(page.Products) > limit {
		page.Products = page.Products[:limit]
		last := page.Products[limit-1]
		switch field {
		case "id":
			page.Next = &licensor.Cursor{Int: last.ID, ID: last.ID}
		case "title":
			page.Next = &licensor.Cursor{Str: last.Title, ID: last.ID}
		case "created_at":
			page.Next = &licensor.Cursor{Int: last.CreatedAt, ID: last.ID}
		}
	}
	return page, nil
}
