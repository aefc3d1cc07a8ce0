package sqlstore

import (
	"context"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// FindProduct reads live product id in q; lock is "" or a locking clause
// of q's dialect (" FOR SHARE", " FOR UPDATE" on PostgreSQL). Under READ
// COMMITTED a locking read that waited for another transaction re-checks
// deleted_at IS NULL on the row version that transaction committed, so a
// product deleted meanwhile is not found.
func FindProduct(ctx context.Context, q Querier, id int64, lock string) (*licensor.Product, error) {
	p, err := ScanProduct(q.QueryRow(ctx, `SELECT `+ProductColumns+` FROM products WHERE id = ? AND deleted_at IS NULL`+lock, id))
	if NoRow(err) {
		return nil, licensor.ProductNotFound(id)
	}
	return p, err
}

// CreateProduct stores p and sets its ID, CreatedAt, UpdatedAt and Version.
func (s Shared) CreateProduct(ctx context.Context, p *licensor.Product, c licensor.Change) error {
	values, err := ProductValues(p)
	if err != nil {
		return s.fail("create product", err)
	}
	var id int64
	err = s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO products (title, title_lower, description, type,
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
		if err := tx.StoreWithWrite(ctx, c, licensor.CreatedProduct(&created)); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, []licensor.Event{licensor.ProductEvent(licensor.EventProductCreated, &created, c)})
	})
	if err != nil {
		return s.fail("create product", s.Engine.Conflict(err))
	}
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id, c.Time, c.Time, 1
	AfterCommit(c, true, s.Engine.Committed())
	return nil
}

// FindProductByID returns a live product.
func (s Shared) FindProductByID(ctx context.Context, id int64) (*licensor.Product, error) {
	p, err := FindProduct(ctx, s.Engine.Reader(), id, "")
	if err != nil {
		return nil, s.fail("find product", s.Engine.Unavailable(err))
	}
	return p, nil
}

// UpdateProduct applies patch to a live product in one transaction, from
// the product read locked (ForUpdate) to the write.
func (s Shared) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, c licensor.Change) (*licensor.Product, error) {
	var out *licensor.Product
	err := s.Engine.Write(ctx, 1, func(ctx context.Context, tx Tx) error {
		cur, err := FindProduct(ctx, tx, id, ForUpdate(tx))
		if err != nil {
			return err
		}
		p, err := patch.Update(cur, ifMatch, c.Time)
		if err != nil {
			return err
		}
		values, err := ProductValues(&p)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE products SET title = ?, title_lower = ?, description = ?, type = ?,
	is_premium = ?, is_buyable = ?, is_visible = ?, recurring = ?, price_amount = ?, price_currency = ?,
	license_period = ?, channels = ?, updated_at = ?, version = ?, renewal_mode = ?
WHERE id = ?`,
			append(values, p.UpdatedAt, p.Version, sqlfilter.NullIfEmpty(string(p.RenewalMode)), id)...)
		if err != nil {
			return err
		}
		out = &p
		return tx.AppendEvents(ctx, []licensor.Event{licensor.ProductEvent(licensor.EventProductUpdated, &p, c)})
	})
	if err != nil {
		return nil, s.fail("update product", s.Engine.Conflict(err))
	}
	s.Engine.Committed().Fire()
	return out, nil
}

// DeleteProduct tombstones a live product, and with opts.Cascade its live
// licenses, in one transaction (with Cascade, perhaps a large one: Many).
// On PostgreSQL the product's row lock (FOR UPDATE) conflicts with the FOR
// SHARE of CreateLicenses: a create that locked the product first commits
// before the licenses are counted, and one that comes later finds the
// product gone.
func (s Shared) DeleteProduct(ctx context.Context, id int64, opts licensor.DeleteProductOptions, c licensor.Change) error {
	rows := 1
	if opts.Cascade {
		rows = Many // every license of the product, perhaps
	}
	err := s.Engine.Write(ctx, rows, func(ctx context.Context, tx Tx) error {
		p, err := FindProduct(ctx, tx, id, ForUpdate(tx))
		if err != nil {
			return err
		}
		if err := p.CheckIfMatch(opts.IfMatch); err != nil {
			return err
		}
		var live int64
		err = tx.QueryRow(ctx, `SELECT count(*) FROM licenses WHERE product_id = ? AND deleted_at IS NULL`, id).Scan(&live)
		if err != nil {
			return err
		}
		var events []licensor.Event
		if live > 0 {
			if !opts.Cascade {
				return licensor.ProductInUse(id, live)
			}
			gone, err := Collect(ctx, tx, ScanLicense, `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE product_id = ? AND deleted_at IS NULL
RETURNING `+LicenseColumns, c.Time, c.Actor, c.RequestID, id)
			if err != nil {
				return err
			}
			SortByID(gone)
			events = licensor.LicenseEvents(licensor.EventLicenseDeleted, gone, c)
		}
		if _, err := tx.Exec(ctx, `UPDATE products SET deleted_at = ?, deleted_by = ? WHERE id = ?`, c.Time, c.Actor, id); err != nil {
			return err
		}
		return tx.AppendEvents(ctx, append(events, licensor.ProductEvent(licensor.EventProductDeleted, p, c)))
	})
	if err != nil {
		return s.fail("delete product", err)
	}
	s.Engine.Committed().Fire()
	return nil
}
