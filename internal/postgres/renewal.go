package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Recurring renewal (licensor.RenewalState): what both engines share is in
// internal/sqlstore (renewal.go); here the renewer's pass, which takes its
// rows FOR UPDATE SKIP LOCKED (instances running the renewer at once take
// different rows) and inserts a pass's successors in one statement.

// InsertSuccessors takes the successors' ids from the sequence, then
// inserts them and updates their predecessors, in two round trips
// (sqlstore.Renewer).
func (engineOf) InsertSuccessors(ctx context.Context, stx sqlstore.Tx, renew []licensor.Renewal) error {
	tx := stx.(shared).tx
	rows, err := tx.Query(ctx, `SELECT nextval(pg_get_serial_sequence('licenses', 'id')) FROM generate_series(1, $1)`, len(renew))
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return err
	}
	preds, err := insertSuccessors(ctx, tx, renew, ids)
	if err != nil {
		return err
	}
	for i := range renew {
		p, ok := preds[renew[i].Predecessor.ID]
		if !ok {
			return fmt.Errorf("renew license %d: it changed while locked", renew[i].Predecessor.ID)
		}
		renew[i].Predecessor = p
	}
	return nil
}

// insertSuccessors inserts the successors of renew with the given ids
// (in one statement, from arrays) and marks their predecessors RENEWED (in
// another), and returns the predecessors as they are then, by id.
func insertSuccessors(ctx context.Context, tx *wtx, renew []licensor.Renewal, ids []int64) (map[int64]licensor.License, error) {
	n := len(renew)
	users, statuses, orders, currencies, methods, renewals := make([]string, n), make([]string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	products, starts, purchases, createdAt, from := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	stops, expiries, prices := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	recurring := make([]bool, n)
	for i := range renew {
		s := &renew[i].Successor
		s.ID = ids[i]
		users[i], statuses[i], orders[i], currencies[i], methods[i] = s.UserID, string(s.Status), s.OrderID, s.PriceCurrency, s.PaymentMethod
		products[i], starts[i], purchases[i], createdAt[i], from[i] = s.ProductID, s.StartDate, s.PurchaseTimestamp, s.CreatedAt, *s.RenewedFrom
		stops[i], expiries[i], prices[i], recurring[i] = s.StopDate, s.ExpiryDate, s.PriceAmount, s.Recurring
		if s.Renewal != licensor.RenewalNone {
			r := string(s.Renewal)
			renewals[i] = &r
		}
	}
	var b pgx.Batch
	b.Queue(`INSERT INTO licenses (id, user_id, product_id, status, start_date, stop_date, order_id, recurring,
	expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at, renewal, renewed_from)
OVERRIDING SYSTEM VALUE
SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::boolean[],
	$9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::text[], $16::bigint[])
ON CONFLICT (order_id) WHERE deleted_at IS NULL DO NOTHING`,
		ids, users, products, statuses, starts, stops, orders, recurring, expiries, prices, currencies, purchases, methods, createdAt, renewals, from)
	b.Queue(`UPDATE licenses l SET renewal = 'RENEWED', renewed_by = u.successor
FROM unnest($1::bigint[], $2::bigint[]) AS u(id, successor)
WHERE l.id = u.id AND l.renewal IN ('PENDING', 'DUE') AND l.deleted_at IS NULL
RETURNING `+sqlfilter.Qualify("l.", sqlstore.LicenseColumns), from, ids)
	br := tx.SendBatch(ctx, &b)
	defer br.Close()
	tag, err := br.Exec()
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() != int64(n) {
		// Only a live license holding a successor's order id (which
		// clients cannot use) makes this happen.
		return nil, fmt.Errorf("inserted %d of %d successors: an order id %s... is taken", tag.RowsAffected(), n, licensor.RenewalOrderIDPrefix)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (licensor.License, error) { return sqlstore.ScanLicense(r) })
	if err != nil {
		return nil, err
	}
	out := make(map[int64]licensor.License, len(ls))
	for _, l := range ls {
		out[l.ID] = l
	}
	return out, br.Close()
}

// RenewalCandidates (sqlstore.Renewer) locks the rows FOR UPDATE SKIP
// LOCKED in a write transaction (not when first): instances running the
// renewer at once take different rows. When mode is not the deployment's,
// the few products that choose it are walked one by one (on the
// per-product index), so that the others' licenses are never scanned.
func (engineOf) RenewalCandidates(ctx context.Context, sq sqlstore.Querier, mode, def licensor.RenewalMode, now, until int64, limit int, first bool) ([]licensor.License, error) {
	q := sq.(shared).q
	cols := sqlfilter.Qualify("l.", sqlstore.LicenseColumns)
	lock := ` FOR UPDATE OF l SKIP LOCKED`
	scan := sqlstore.ScanLicense
	if first {
		cols, lock = "l.id, l.expiry_date", ""
		scan = func(s sqlstore.Scanner) (licensor.License, error) {
			var l licensor.License
			err := s.Scan(&l.ID, &l.ExpiryDate)
			return l, err
		}
	}
	collect := func(rows pgx.Rows, err error) ([]licensor.License, error) {
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(r pgx.CollectableRow) (licensor.License, error) { return scan(r) })
	}
	cond := `l.renewal = 'PENDING' AND l.deleted_at IS NULL AND l.expiry_date <= $1 AND ($2::bigint IS NULL OR l.status IN ('ACTIVE', 'EXPIRED') OR l.expiry_date <= $2)`
	var notifyNow *int64
	if mode == licensor.RenewalNotify {
		notifyNow = &now
	}
	if mode == def {
		return collect(q.Query(ctx, `SELECT `+cols+` FROM licenses l
JOIN products p ON p.id = l.product_id
WHERE `+cond+` AND COALESCE(p.renewal_mode, $3) = $4
ORDER BY l.expiry_date, l.id LIMIT $5`+lock, until, notifyNow, string(def), string(mode), limit))
	}
	rows, err := q.Query(ctx, `SELECT id FROM products WHERE renewal_mode = $1 AND deleted_at IS NULL ORDER BY id`, string(mode))
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	var out []licensor.License
	for _, id := range ids {
		ls, err := collect(q.Query(ctx, `SELECT `+cols+` FROM licenses l
WHERE l.product_id = $3 AND `+cond+`
ORDER BY l.expiry_date, l.id LIMIT $4`+lock, until, notifyNow, id, limit))
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
		if len(out) >= limit && !first && lock != "" {
			break // enough rows locked for this pass
		}
	}
	licensor.SortByExpiry(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
