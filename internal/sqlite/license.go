package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateLicenses creates every draft or none in one write transaction.
// Every failing item is reported; see licensor.Store.
func (db *DB) CreateLicenses(ctx context.Context, drafts []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	if errs := licensor.CheckBatchOrderIDs(drafts); len(errs) > 0 {
		return nil, errs
	}
	var out []licensor.License
	err := db.writeTxSized(ctx, len(drafts), func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		drafts, refused, err := sqlstore.SuccessorDrafts(ctx, shared{q: q}, drafts)
		if err != nil {
			return err
		}
		if out, err = createLicenses(ctx, q, drafts, c); err != nil || len(refused) > 0 {
			return licensor.MergeItemErrors(refused, err)
		}
		renewed, err := sqlstore.LinkSuccessors(ctx, shared{q: q}, out, c)
		if err != nil {
			return err
		}
		if err := storeWithWrite(ctx, q, c, licensor.CreatedLicenses(out)); err != nil {
			return err
		}
		return appendEvents(ctx, q, append(licensor.LicenseEvents(licensor.EventLicenseCreated, out, c), renewed...))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: create licenses: %w", err)
	}
	sqlstore.AfterCommit(c, true, &db.committed)
	return out, nil
}

func createLicenses(ctx context.Context, q querier, drafts []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	// The products, each loaded once. The write lock held since BEGIN
	// IMMEDIATE keeps them live until the commit.
	products := map[int64]*licensor.Product{}
	for _, d := range drafts {
		if _, ok := products[d.ProductID]; ok {
			continue
		}
		p, err := sqlstore.FindProduct(ctx, shared{q: q}, d.ProductID, "")
		if err != nil && licensor.ErrorCode(err) != licensor.CodeProductNotFound {
			return nil, err
		}
		products[d.ProductID] = p // nil when missing
	}

	var errs licensor.ItemErrors
	out := make([]licensor.License, 0, len(drafts))
	for i, d := range drafts {
		p := products[d.ProductID]
		if p == nil {
			errs = append(errs, licensor.ItemError{Index: i, Err: &licensor.Error{
				Code: licensor.CodeProductNotFound, Pointer: "/relationships/product",
				Detail: fmt.Sprintf("product %d does not exist", d.ProductID),
			}})
			continue
		}
		l, err := d.Resolve(p, c.Time)
		if err != nil {
			var e *licensor.Error
			if !errors.As(err, &e) {
				return nil, err
			}
			errs = append(errs, licensor.ItemError{Index: i, Err: e})
			continue
		}
		l.CreatedAt = c.Time
		err = q.QueryRowContext(ctx, insertLicense, insertArgs(&l)...).Scan(&l.ID)
		if sqlstore.NoRow(err) {
			// The order id is taken by a live license. Writers are
			// serialized, so that license is committed and visible (or
			// written earlier in this write's group, which commits it
			// first or fails this write too).
			var existing int64
			err = q.QueryRowContext(ctx,
				`SELECT id FROM licenses WHERE order_id = ? AND deleted_at IS NULL`, *l.OrderID).Scan(&existing)
			if err != nil {
				return nil, fmt.Errorf("find the holder of an order id: %w", err)
			}
			errs = append(errs, licensor.ItemError{Index: i, Err: licensor.OrderIDConflict(*l.OrderID, existing)})
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return out, nil
}

const insertLicense = `INSERT INTO licenses (user_id, product_id, status, start_date, stop_date,
	order_id, recurring, expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at,
	renewal, renewed_from)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (order_id) WHERE deleted_at IS NULL DO NOTHING
RETURNING id`

func insertArgs(l *licensor.License) []any { return sqlstore.LicenseValues(l) }

// FindLicenseByID returns a live license with its stored status.
func (db *DB) FindLicenseByID(ctx context.Context, id int64) (*licensor.License, error) {
	l, err := sqlstore.ScanLicense(db.rq().QueryRowContext(pointQuery(ctx),
		`SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`, id))
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("sqlite: find license: %w", licensor.LicenseNotFound(id))
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: find license: %w", unavailable(err))
	}
	return &l, nil
}

// DeleteLicenses tombstones live licenses in request order, in one
// transaction.
func (db *DB) DeleteLicenses(ctx context.Context, ids []int64, allowMissing bool, c licensor.Change) (deleted, missing []int64, err error) {
	if errs := licensor.CheckBatchIDs(ids); len(errs) > 0 {
		return nil, nil, errs
	}
	err = db.writeTxSized(ctx, len(ids), func(ctx context.Context, tx *sql.Tx) error {
		deleted, missing = make([]int64, 0, len(ids)), nil
		q := db.wq(tx)
		var errs licensor.ItemErrors
		var gone []licensor.License // as they were, for their events
		for i, id := range ids {
			l, err := sqlstore.ScanLicense(q.QueryRowContext(ctx, deleteLicense, c.Time, c.Actor, c.RequestID, id))
			if err == nil {
				deleted = append(deleted, id)
				gone = append(gone, l)
				continue
			}
			if !sqlstore.NoRow(err) {
				return err
			}
			missing = append(missing, id)
			e := licensor.LicenseNotFound(id)
			e.Pointer = "/id"
			errs = append(errs, licensor.ItemError{Index: i, Err: e})
		}
		if len(errs) > 0 && !allowMissing {
			return errs
		}
		if err := storeWithWrite(ctx, q, c, licensor.DeletedLicenses(licensor.DeleteResult{Deleted: deleted, Missing: missing})); err != nil {
			return err
		}
		return appendEvents(ctx, q, licensor.LicenseEvents(licensor.EventLicenseDeleted, gone, c))
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: delete licenses: %w", err)
	}
	sqlstore.AfterCommit(c, len(deleted) > 0, &db.committed)
	return deleted, missing, nil
}

const deleteLicense = `UPDATE licenses SET deleted_at = ?, deleted_by = ?, deleted_request_id = ?
WHERE id = ? AND deleted_at IS NULL
RETURNING ` + sqlstore.LicenseColumns
