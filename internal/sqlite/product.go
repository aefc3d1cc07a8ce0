package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateProduct stores p and sets its ID, CreatedAt, UpdatedAt and Version.
func (db *DB) CreateProduct(ctx context.Context, p *licensor.Product, c licensor.Change) error {
	values, err := sqlstore.ProductValues(p)
	if err != nil {
		return fmt.Errorf("sqlite: create product: %w", err)
	}
	var id int64
	err = db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO products (title, title_lower, description, type,
	is_premium, is_buyable, is_visible, recurring, price_amount, price_currency, license_period,
	channels, created_at, updated_at, version, renewal_mode)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)
RETURNING id`,
			append(values, c.Time, c.Time, sqlfilter.NullIfEmpty(string(p.RenewalMode)))...).Scan(&id)
		if err != nil {
			return err
		}
		created := *p
		created.ID, created.CreatedAt, created.UpdatedAt, created.Version = id, c.Time, c.Time, 1
		if err := storeWithWrite(ctx, db.wq(tx), c, licensor.CreatedProduct(&created)); err != nil {
			return err
		}
		return appendEvents(ctx, db.wq(tx), []licensor.Event{licensor.ProductEvent(licensor.EventProductCreated, &created, c)})
	})
	if err != nil {
		return fmt.Errorf("sqlite: create product: %w", interpretError(err))
	}
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id, c.Time, c.Time, 1
	sqlstore.AfterCommit(c, true, &db.committed)
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
	p, err := sqlstore.ScanProduct(q.QueryRowContext(ctx,
		`SELECT `+sqlstore.ProductColumns+` FROM products WHERE id = ? AND deleted_at IS NULL`, id))
	if sqlstore.NoRow(err) {
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
		p, err := patch.Update(cur, ifMatch, c.Time)
		if err != nil {
			return err
		}
		values, err := sqlstore.ProductValues(&p)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE products SET title = ?, title_lower = ?, description = ?, type = ?,
	is_premium = ?, is_buyable = ?, is_visible = ?, recurring = ?, price_amount = ?, price_currency = ?,
	license_period = ?, channels = ?, updated_at = ?, version = ?, renewal_mode = ?
WHERE id = ?`,
			append(values, p.UpdatedAt, p.Version, sqlfilter.NullIfEmpty(string(p.RenewalMode)), id)...)
		if err != nil {
			return err
		}
		out = &p
		return appendEvents(ctx, db.wq(tx), []licensor.Event{licensor.ProductEvent(licensor.EventProductUpdated, &p, c)})
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: update product: %w", interpretError(err))
	}
	db.committed.Fire()
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
				return licensor.ProductInUse(id, live)
			}
			gone, err := deleteProductLicenses(ctx, tx, id, c)
			if err != nil {
				return err
			}
			events = licensor.LicenseEvents(licensor.EventLicenseDeleted, gone, c)
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
	db.committed.Fire()
	return nil
}

// deleteProductLicenses tombstones the live licenses of a product and
// returns them as they were, by id.
func deleteProductLicenses(ctx context.Context, tx *sql.Tx, productID int64, c licensor.Change) ([]licensor.License, error) {
	rows, err := tx.QueryContext(ctx, `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE product_id = ? AND deleted_at IS NULL
RETURNING `+sqlstore.LicenseColumns, c.Time, c.Actor, c.RequestID, productID)
	if err != nil {
		return nil, err
	}
	gone, err := collect(rows, sqlstore.ScanLicense)
	if err != nil {
		return nil, err
	}
	sqlstore.SortByID(gone)
	return gone, nil
}

// FindProducts lists live products, one keyset page at a time.
func (db *DB) FindProducts(ctx context.Context, q licensor.ProductQuery) (*licensor.ProductPage, error) {
	list, err := sqlfilter.Products(sqlfilter.SQLite, q)
	if err != nil {
		return nil, err
	}
	page := &licensor.ProductPage{}
	if page.Products, page.Total, err = readList(ctx, db, list, sqlstore.ProductColumns, sqlstore.Deref(sqlstore.ScanProduct)); err != nil {
		return nil, fmt.Errorf("sqlite: find products: %w", err)
	}
	list.ProductPage(page)
	return page, nil
}
