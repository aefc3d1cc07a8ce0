package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

const insertLicense = `INSERT INTO licenses (id, user_id, product_id, status, start_date, stop_date,
	order_id, recurring, expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at,
	renewal, renewed_from)
OVERRIDING SYSTEM VALUE
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (order_id) WHERE deleted_at IS NULL DO NOTHING
RETURNING id`

func insertArgs(l *licensor.License) []any { return append([]any{l.ID}, sqlstore.LicenseValues(l)...) }

// CreateLicenses creates every draft or none in one transaction. Every
// failing item is reported; see licensor.Store.
//
// The products are locked FOR SHARE, so a concurrent DeleteProduct (FOR
// UPDATE) either completes first, and the product is not found, or waits
// for this transaction and then counts its licenses.
//
// The ids are drawn from the identity sequence first, in draft order, and
// the rows are then inserted in order_id order: a transaction waiting for
// another's insert of the same order id holds only smaller ones, so
// concurrent batches cannot deadlock on their order ids. The product read
// and the ids go in one round trip, the inserts in another.
//
// A single license whose product is in the product cache, without an
// idempotency key, is not inserted by its unit: it is resolved from the
// cached product and inserted with the other such creates of its group in
// one statement at the commit, which checks the product's version
// (flushCreates). If the product changed or went meanwhile, the create
// runs again on the general path.
func (db *DB) CreateLicenses(ctx context.Context, drafts []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	if errs := licensor.CheckBatchOrderIDs(drafts); len(errs) > 0 {
		return nil, errs
	}
	if len(drafts) == 1 && c.Idempotency == nil && drafts[0].RenewedFrom == nil {
		if p := db.products.get(drafts[0].ProductID); p != nil {
			if l, err := drafts[0].Resolve(p, c.Time); err == nil {
				l.CreatedAt = c.Time
				d := &deferredCreate{l: l, version: p.Version, c: c}
				err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
					tx.deferCreate(d)
					return nil
				})
				switch {
				case err != nil:
					return nil, fmt.Errorf("postgres: create licenses: %w", err)
				case d.err != nil:
					return nil, fmt.Errorf("postgres: create licenses: %w", d.err)
				case !d.retry:
					db.committed.Fire()
					return []licensor.License{d.l}, nil
				}
				// The product changed or went: the general path tells how.
			}
		}
	}
	var out []licensor.License
	write := db.writeTx
	if len(drafts) > soloThreshold {
		write = db.bigWriteTx
	}
	err := write(ctx, func(ctx context.Context, tx *wtx) error {
		drafts, refused, err := sqlstore.SuccessorDrafts(ctx, stx(tx), drafts)
		if err != nil {
			return err
		}
		if out, err = db.createLicenses(ctx, tx, drafts, c); err != nil || len(refused) > 0 {
			return licensor.MergeItemErrors(refused, err)
		}
		renewed, err := sqlstore.LinkSuccessors(ctx, stx(tx), out, c)
		if err != nil {
			return err
		}
		if err := storeWithWrite(ctx, tx, c, licensor.CreatedLicenses(out)); err != nil {
			return err
		}
		tx.appendEvents(licensor.LicenseEvents(licensor.EventLicenseCreated, out, c))
		tx.appendEvents(renewed)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: create licenses: %w", err)
	}
	sqlstore.AfterCommit(c, true, &db.committed)
	return out, nil
}

func (db *DB) createLicenses(ctx context.Context, tx *wtx, drafts []licensor.LicenseDraft, c licensor.Change) ([]licensor.License, error) {
	var ids []int64
	for _, d := range drafts {
		if !slices.Contains(ids, d.ProductID) {
			ids = append(ids, d.ProductID)
		}
	}
	// Lock in id order, the same order in every transaction. The ids of
	// the new licenses come in the same round trip, one per draft (a
	// failing batch leaves a gap in the sequence either way).
	var b pgx.Batch
	b.Queue(`SELECT `+sqlstore.ProductColumns+` FROM products
WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR SHARE`, ids)
	b.Queue(`SELECT nextval(pg_get_serial_sequence('licenses', 'id')) FROM generate_series(1, $1)`, len(drafts))
	br := tx.SendBatch(ctx, &b)
	products := map[int64]*licensor.Product{}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var p *licensor.Product
			if p, err = sqlstore.ScanProduct(rows); err != nil {
				break
			}
			products[p.ID] = p
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		br.Close()
		return nil, err
	}
	rows, err = br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	newIDs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if len(newIDs) != len(drafts) {
		return nil, fmt.Errorf("drew %d license ids for %d drafts", len(newIDs), len(drafts))
	}
	slices.Sort(newIDs)
	for _, p := range products {
		db.products.put(p)
	}

	var errs licensor.ItemErrors
	licenses := make([]licensor.License, len(drafts))
	var valid []int // indexes of the drafts to insert
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
		l.ID = newIDs[i]
		licenses[i] = l
		valid = append(valid, i)
	}
	// Insert without order id first, then by order id.
	slices.SortStableFunc(valid, func(i, j int) int {
		a, b := licenses[i].OrderID, licenses[j].OrderID
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		case b == nil:
			return 1
		}
		return strings.Compare(*a, *b)
	})
	var batch pgx.Batch
	for _, i := range valid {
		batch.Queue(insertLicense, insertArgs(&licenses[i])...)
	}
	var taken []int // indexes whose order id a live license holds
	results := tx.SendBatch(ctx, &batch)
	for _, i := range valid {
		err := results.QueryRow().Scan(&licenses[i].ID)
		if sqlstore.NoRow(err) {
			taken = append(taken, i)
			continue
		}
		if err != nil {
			results.Close()
			return nil, err
		}
	}
	if err := results.Close(); err != nil {
		return nil, err
	}

	// ON CONFLICT DO NOTHING waited for any transaction inserting the same
	// order id and skipped the row only if that one committed, so each
	// statement from here sees the holder. If the holder was deleted in
	// between, the order id is free again: insert once more.
	for attempt := 0; len(taken) > 0; attempt++ {
		if attempt == 3 {
			return nil, errors.New("order ids keep changing hands; giving up")
		}
		orderIDs := make([]string, len(taken))
		for k, i := range taken {
			orderIDs[k] = *licenses[i].OrderID
		}
		rows, err := tx.Query(ctx, `SELECT order_id, id FROM licenses WHERE order_id = ANY($1) AND deleted_at IS NULL`, orderIDs)
		if err != nil {
			return nil, err
		}
		holders := map[string]int64{}
		for rows.Next() {
			var o string
			var id int64
			if err := rows.Scan(&o, &id); err != nil {
				rows.Close()
				return nil, err
			}
			holders[o] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		var again []int
		for _, i := range taken {
			o := *licenses[i].OrderID
			if id, ok := holders[o]; ok {
				errs = append(errs, licensor.ItemError{Index: i, Err: licensor.OrderIDConflict(o, id)})
				continue
			}
			err := tx.QueryRow(ctx, insertLicense, insertArgs(&licenses[i])...).Scan(&licenses[i].ID)
			if sqlstore.NoRow(err) {
				again = append(again, i)
				continue
			}
			if err != nil {
				return nil, err
			}
		}
		taken = again
	}

	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return licenses, nil
}

// FindLicenseByID returns a live license with its stored status.
func (db *DB) FindLicenseByID(ctx context.Context, id int64) (*licensor.License, error) {
	l, err := sqlstore.ScanLicense(db.pool.QueryRow(ctx,
		`SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = $1 AND deleted_at IS NULL`, id))
	if sqlstore.NoRow(err) {
		return nil, fmt.Errorf("postgres: find license: %w", licensor.LicenseNotFound(id))
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: find license: %w", unavailable(err))
	}
	return &l, nil
}

// DeleteLicenses tombstones live licenses in one statement and reports
// them in request order.
func (db *DB) DeleteLicenses(ctx context.Context, ids []int64, allowMissing bool, c licensor.Change) (deleted, missing []int64, err error) {
	if errs := licensor.CheckBatchIDs(ids); len(errs) > 0 {
		return nil, nil, errs
	}
	write := db.writeTx
	if len(ids) > soloThreshold {
		write = db.bigWriteTx
	}
	err = write(ctx, func(ctx context.Context, tx *wtx) error {
		deleted, missing = make([]int64, 0, len(ids)), nil
		gone, err := tombstone(ctx, tx, "id = ANY($4)", ids, c)
		if err != nil {
			return err
		}
		isGone := make(map[int64]*licensor.License, len(gone))
		for i := range gone {
			isGone[gone[i].ID] = &gone[i]
		}
		var errs licensor.ItemErrors
		var events []licensor.Event // in request order
		for i, id := range ids {
			if l := isGone[id]; l != nil {
				deleted = append(deleted, id)
				events = append(events, licensor.LicenseEvent(licensor.EventLicenseDeleted, l, c))
				continue
			}
			missing = append(missing, id)
			e := licensor.LicenseNotFound(id)
			e.Pointer = "/id"
			errs = append(errs, licensor.ItemError{Index: i, Err: e})
		}
		if len(errs) > 0 && !allowMissing {
			return errs
		}
		if err := storeWithWrite(ctx, tx, c, licensor.DeletedLicenses(licensor.DeleteResult{Deleted: deleted, Missing: missing})); err != nil {
			return err
		}
		tx.appendEvents(events)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: delete licenses: %w", err)
	}
	sqlstore.AfterCommit(c, len(deleted) > 0, &db.committed)
	return deleted, missing, nil
}

// tombstone deletes the live licenses that cond (on $4, arg) selects,
// keeping tombstones, and returns them as they were.
func tombstone(ctx context.Context, tx *wtx, cond string, arg any, c licensor.Change) ([]licensor.License, error) {
	rows, err := tx.Query(ctx, `UPDATE licenses SET deleted_at = $1, deleted_by = $2, deleted_request_id = $3
WHERE `+cond+` AND deleted_at IS NULL
RETURNING `+sqlstore.LicenseColumns, c.Time, c.Actor, c.RequestID, arg)
	if err != nil {
		return nil, err
	}
	return collect(rows, sqlstore.ScanLicense)
}
