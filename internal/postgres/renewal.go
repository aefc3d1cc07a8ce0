package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Recurring renewal (licensor.RenewalState). Every change of a renewal
// state is made on a row locked FOR UPDATE and re-checked by the UPDATE,
// so the renewer, a BSS creating a successor and a cancellation serialize
// on the predecessor: a renewal is made once, or cancelled. Instances
// running the renewer at once take different rows (SKIP LOCKED); the
// unique index on live renewed_from and the deterministic order ids stand
// behind that.

// successorDrafts locks the predecessors the drafts name (in id order) and
// checks them (licensor.CheckSuccessorDrafts).
func successorDrafts(ctx context.Context, tx *wtx, drafts []licensor.LicenseDraft) ([]licensor.LicenseDraft, licensor.ItemErrors, error) {
	ids := licensor.Predecessors(drafts)
	if len(ids) == 0 {
		return drafts, nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses
WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR UPDATE`, ids)
	if err != nil {
		return nil, nil, err
	}
	ls, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (licensor.License, error) { return sqlstore.ScanLicense(r) })
	if err != nil {
		return nil, nil, err
	}
	preds := map[int64]*licensor.License{}
	for i := range ls {
		preds[ls[i].ID] = &ls[i]
	}
	out, errs := licensor.CheckSuccessorDrafts(drafts, preds)
	return out, errs, nil
}

// linkSuccessors marks the predecessors of the new licenses that have one
// RENEWED by them and returns their license.renewed events.
func linkSuccessors(ctx context.Context, q querier, ls []licensor.License, c licensor.Change) ([]licensor.Event, error) {
	var events []licensor.Event
	for i := range ls {
		if ls[i].RenewedFrom == nil {
			continue
		}
		pred, err := markRenewed(ctx, q, *ls[i].RenewedFrom, ls[i].ID)
		if err != nil {
			return nil, err
		}
		events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewed, &pred,
			licensor.RenewalMeta{Successor: strconv.FormatInt(ls[i].ID, 10)}, c))
	}
	return events, nil
}

func markRenewed(ctx context.Context, q querier, id, successor int64) (licensor.License, error) {
	l, err := sqlstore.ScanLicense(q.QueryRow(ctx, `UPDATE licenses SET renewal = 'RENEWED', renewed_by = $1
WHERE id = $2 AND renewal IN ('PENDING', 'DUE') AND deleted_at IS NULL
RETURNING `+sqlstore.LicenseColumns, successor, id))
	if err != nil {
		return l, fmt.Errorf("mark license %d renewed: %w", id, err)
	}
	return l, nil
}

// RenewLicenses runs one pass of the renewer in one transaction:
// automatic renewals due, then notices and lapses, earliest expiry_date
// first, up to r.Limit licenses in all.
func (db *DB) RenewLicenses(ctx context.Context, c licensor.Change, r licensor.RenewalPass) (licensor.RenewalResult, error) {
	var res licensor.RenewalResult
	err := db.bigWriteTx(ctx, func(ctx context.Context, tx *wtx) error {
		res = licensor.RenewalResult{}
		products := map[int64]*licensor.Product{}
		var events []licensor.Event
		for _, mode := range []licensor.RenewalMode{licensor.RenewalAutomatic, licensor.RenewalNotify} {
			left := r.Limit - res.Len()
			if left <= 0 {
				break
			}
			until := c.Time
			if mode == licensor.RenewalNotify {
				until += r.Notice
			}
			ls, err := renewalCandidates(ctx, tx, mode, r.Mode, c.Time, until, left, false)
			if err != nil {
				return err
			}
			// The products, locked FOR SHARE in id order: a cascading
			// delete of one waits, and then deletes the successors too.
			var want []int64
			for i := range ls {
				if _, ok := products[ls[i].ProductID]; !ok {
					products[ls[i].ProductID] = nil
					want = append(want, ls[i].ProductID)
				}
			}
			if len(want) > 0 {
				rows, err := tx.Query(ctx, `SELECT `+sqlstore.ProductColumns+` FROM products
WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR SHARE`, want)
				if err != nil {
					return err
				}
				ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*licensor.Product, error) { return sqlstore.ScanProduct(r) })
				if err != nil {
					return err
				}
				for _, p := range ps {
					products[p.ID] = p
				}
			}
			var renew []licensor.Renewal
			for i := range ls {
				l := &ls[i]
				p := products[l.ProductID]
				switch r.Decide(l, p, c.Time) {
				case licensor.RenewNow:
					s, err := licensor.Successor(l, p, c.Time)
					if err != nil {
						return err
					}
					renew = append(renew, licensor.Renewal{Predecessor: *l, Successor: s})
				case licensor.RenewNotify:
					l.Renewal = licensor.RenewalDue
					if err := setRenewal(ctx, tx, l); err != nil {
						return err
					}
					res.Due = append(res.Due, *l)
					events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewalDue, l, licensor.RenewalMeta{}, c))
				case licensor.RenewLapse:
					l.Renewal = licensor.RenewalLapsed
					if err := setRenewal(ctx, tx, l); err != nil {
						return err
					}
					res.Lapsed = append(res.Lapsed, *l)
				}
			}
			if len(renew) == 0 {
				continue
			}
			// The successors' ids, then their insert and the
			// predecessors' update, one statement each, in two round trips.
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
				rn := &renew[i]
				p, ok := preds[rn.Predecessor.ID]
				if !ok {
					return fmt.Errorf("renew license %d: it changed while locked", rn.Predecessor.ID)
				}
				rn.Predecessor = p
				res.Renewed = append(res.Renewed, *rn)
				events = append(events, licensor.RenewedEvents(rn, c)...)
			}
		}
		tx.appendEvents(events)
		return nil
	})
	if err != nil {
		return licensor.RenewalResult{}, fmt.Errorf("postgres: renew licenses: %w", err)
	}
	if res.Len() > 0 {
		db.committed.Fire()
	}
	return res, nil
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

// setRenewal moves pending license l, locked, to l.Renewal.
func setRenewal(ctx context.Context, q querier, l *licensor.License) error {
	tag, err := q.Exec(ctx, `UPDATE licenses SET renewal = $1 WHERE id = $2 AND renewal = 'PENDING' AND deleted_at IS NULL`,
		string(l.Renewal), l.ID)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != 1 {
		return fmt.Errorf("license %d changed while locked", l.ID)
	}
	return nil
}

// renewalCandidates returns up to limit pending licenses of the products
// whose mode is mode (def being the deployment's) with an expiry_date at or
// before until, earliest first, locked FOR UPDATE SKIP LOCKED when q is a
// transaction (lock); for the notify mode only those that are Renewable
// or past their expiry_date at now (a suspended license waits for its
// expiry_date, to lapse). When mode is not the deployment's, the few
// products that choose it are walked one by one (on the per-product
// index), so that the others' licenses are never scanned. first asks only
// for the earliest (NextRenewal), without a lock.
func renewalCandidates(ctx context.Context, q querier, mode, def licensor.RenewalMode, now, until int64, limit int, first bool) ([]licensor.License, error) {
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

// NextRenewal returns the earliest expiry_date of the pending renewals
// that the server makes (automatic mode).
func (db *DB) NextRenewal(ctx context.Context, def licensor.RenewalMode) (int64, bool, error) {
	ls, err := renewalCandidates(ctx, db.pool, licensor.RenewalAutomatic, def, 0, math.MaxInt64, 1, true)
	if err != nil {
		return 0, false, fmt.Errorf("postgres: next renewal: %w", unavailable(err))
	}
	if len(ls) == 0 {
		return 0, false, nil
	}
	return *ls[0].ExpiryDate, true, nil
}

// CancelRenewal cancels the open renewal of a live license, on its row
// locked FOR UPDATE.
func (db *DB) CancelRenewal(ctx context.Context, id int64, reason string, c licensor.Change) (licensor.RenewalCancellation, error) {
	var out licensor.RenewalCancellation
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		l, err := sqlstore.ScanLicense(tx.QueryRow(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return licensor.LicenseNotFound(id)
		}
		if err != nil {
			return err
		}
		to, changed, e := licensor.CancelRenewal(&l)
		if e != nil {
			return e
		}
		out = licensor.RenewalCancellation{License: l, Previous: l.Renewal, Changed: changed}
		if changed {
			tag, err := tx.Exec(ctx, `UPDATE licenses SET renewal = $1 WHERE id = $2 AND renewal = $3 AND deleted_at IS NULL`,
				string(to), id, string(l.Renewal))
			if err != nil {
				return err
			}
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("license %d changed while locked", id)
			}
			out.License.Renewal = to
			tx.appendEvents([]licensor.Event{licensor.RenewalEvent(licensor.EventLicenseRenewalCancelled, &out.License, licensor.RenewalMeta{Reason: reason}, c)})
		}
		return storeWithWrite(ctx, tx, c, licensor.CancelledRenewal(&out))
	})
	if err != nil {
		return licensor.RenewalCancellation{}, fmt.Errorf("postgres: cancel renewal: %w", err)
	}
	sqlstore.AfterCommit(c, out.Changed, &db.committed)
	return out, nil
}
