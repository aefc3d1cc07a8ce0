package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateProduct stores p and sets its ID, CreatedAt, UpdatedAt and Version.
func (db *DB) CreateProduct(ctx context.Context, p *licensor.Product, c licensor.Change) error {
	values, err := sqlstore.ProductValues(p)
	if err != nil {
		return fmt.Errorf("postgres: create product: %w", err)
	}
	var id int64
	err = db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRow(ctx, `INSERT INTO products (title, title_lower, description, type,
	is_premium, is_buyable, is_visible, recurring, price_amount, price_currency, license_period,
	channels, created_at, updated_at, version, renewal_mode)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 1, $15)
RETURNING id`,
			append(values, c.Time, c.Time, sqlfilter.NullIfEmpty(string(p.RenewalMode)))...).Scan(&id)
		if err != nil {
			return err
		}
		created := *p
		created.ID, created.CreatedAt, created.UpdatedAt, created.Version = id, c.Time, c.Time, 1
		if err := storeWithWrite(ctx, tx, c, licensor.CreatedProduct(&created)); err != nil {
			return err
		}
		tx.appendEvents([]licensor.Event{licensor.ProductEvent(licensor.EventProductCreated, &created, c)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: create product: %w", interpretError(err))
	}
	p.ID, p.CreatedAt, p.UpdatedAt, p.Version = id, c.Time, c.Time, 1
	sqlstore.AfterCommit(c, true, &db.committed)
	return nil
}

// FindProductByID returns a live product.
func (db *DB) FindProductByID(ctx context.Context, id int64) (*licensor.Product, error) {
	p, err := findProduct(ctx, db.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: find product: %w", unavailable(err))
	}
	return p, nil
}

// findProduct loads a live product; lock is "", "FOR SHARE" or "FOR
// UPDATE". Under READ COMMITTED a locking read that waited for another
// transaction re-checks deleted_at IS NULL on the row version that
// transaction committed, so a product deleted meanwhile is not found.
func findProduct(ctx context.Context, q querier, id int64, lock string) (*licensor.Product, error) {
	p, err := sqlstore.ScanProduct(q.QueryRow(ctx,
		`SELECT `+sqlstore.ProductColumns+` FROM products WHERE id = $1 AND deleted_at IS NULL `+lock, id))
	if sqlstore.NoRow(err) {
		return nil, licensor.ProductNotFound(id)
	}
	return p, err
}

// UpdateProduct applies patch to a live product in one transaction,
// holding the product's row lock from the read to the write.
func (db *DB) UpdateProduct(ctx context.Context, id int64, patch licensor.ProductPatch, ifMatch string, c licensor.Change) (*licensor.Product, error) {
	var out *licensor.Product
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		cur, err := findProduct(ctx, tx, id, "FOR UPDATE")
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
		_, err = tx.Exec(ctx, `UPDATE products SET title = $1, title_lower = $2, description = $3, type = $4,
	is_premium = $5, is_buyable = $6, is_visible = $7, recurring = $8, price_amount = $9, price_currency = $10,
	license_period = $11, channels = $12, updated_at = $13, version = $14, renewal_mode = $15
WHERE id = $16`,
			append(values, p.UpdatedAt, p.Version, sqlfilter.NullIfEmpty(string(p.RenewalMode)), id)...)
		if err != nil {
			return err
		}
		out = &p
		tx.appendEvents([]licensor.Event{licensor.ProductEvent(licensor.EventProductUpdated, &p, c)})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update product: %w", interpretError(err))
	}
	db.committed.Fire()
	return out, nil
}

// DeleteProduct tombstones a live product, and with opts.Cascade its live
// licenses, in one transaction. The product's row lock (FOR UPDATE)
// conflicts with the FOR SHARE of CreateLicenses: a create that locked the
// product first commits before the licenses are counted, and one that
// comes later finds the product gone.
func (db *DB) DeleteProduct(ctx context.Context, id int64, opts licensor.DeleteProductOptions, c licensor.Change) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		p, err := findProduct(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if err := p.CheckIfMatch(opts.IfMatch); err != nil {
			return err
		}
		var live int64
		err = tx.QueryRow(ctx,
			`SELECT count(*) FROM licenses WHERE product_id = $1 AND deleted_at IS NULL`, id).Scan(&live)
		if err != nil {
			return err
		}
		var events []licensor.Event
		if live > 0 {
			if !opts.Cascade {
				return licensor.ProductInUse(id, live)
			}
			gone, err := tombstone(ctx, tx, "product_id = $4", id, c)
			if err != nil {
				return err
			}
			sqlstore.SortByID(gone)
			events = licensor.LicenseEvents(licensor.EventLicenseDeleted, gone, c)
		}
		_, err = tx.Exec(ctx, `UPDATE products SET deleted_at = $1, deleted_by = $2 WHERE id = $3`, c.Time, c.Actor, id)
		if err != nil {
			return err
		}
		tx.appendEvents(append(events, licensor.ProductEvent(licensor.EventProductDeleted, p, c)))
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: delete product: %w", err)
	}
	db.committed.Fire()
	return nil
}

// FindProducts lists live products, one keyset page at a time.
func (db *DB) FindProducts(ctx context.Context, q licensor.ProductQuery) (*licensor.ProductPage, error) {
	list, err := sqlfilter.Products(sqlfilter.PostgreSQL, q)
	if err != nil {
		return nil, err
	}
	scan := func(s sqlstore.Scanner) (licensor.Product, error) {
		p, err := sqlstore.ScanProduct(s)
		if err != nil {
			return licensor.Product{}, err
		}
		return *p, nil
	}
	page := &licensor.ProductPage{}
	if page.Products, page.Total, err = readList(ctx, db, list, sqlstore.ProductColumns, scan); err != nil {
		return nil, fmt.Errorf("postgres: find products: %w", err)
	}
	list.ProductPage(page)
	return page, nil
}

// productCache keeps recently read products for CreateLicenses, which
// checks in its insert that the product still has the cached version
// (insertCached): a stale entry costs one statement, never a wrong
// license. Products change rarely and are few; the cache forgets
// everything when it reaches maxCachedProducts.
type productCache struct {
	mu sync.Mutex
	m  map[int64]*licensor.Product
}

const maxCachedProducts = 4096

// get returns a cached product (not to be modified), or nil.
func (c *productCache) get(id int64) *licensor.Product {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[id]
}

// put caches p unless a later version is cached.
func (c *productCache) put(p *licensor.Product) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedProducts {
		c.m = make(map[int64]*licensor.Product)
	}
	if old := c.m[p.ID]; old == nil || old.Version < p.Version {
		c.m[p.ID] = p
	}
}
