package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Recurring renewal (licensor.RenewalState). Writers are serialized, so
// the renewal state read in a write transaction is the one the change is
// made from; the unique index on live renewed_from and the deterministic
// order ids stand behind that.

// successorDrafts reads the predecessors the drafts name and checks them
// (licensor.CheckSuccessorDrafts).
func successorDrafts(ctx context.Context, q querier, drafts []licensor.LicenseDraft) ([]licensor.LicenseDraft, licensor.ItemErrors, error) {
	ids := licensor.Predecessors(drafts)
	if len(ids) == 0 {
		return drafts, nil, nil
	}
	preds := map[int64]*licensor.License{}
	for _, id := range ids {
		l, err := sqlstore.ScanLicense(q.QueryRowContext(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		preds[id] = &l
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
	l, err := sqlstore.ScanLicense(q.QueryRowContext(ctx, `UPDATE licenses SET renewal = 'RENEWED', renewed_by = ?
WHERE id = ? AND renewal IN ('PENDING', 'DUE') AND deleted_at IS NULL
RETURNING `+sqlstore.LicenseColumns, successor, id))
	if err != nil {
		return l, fmt.Errorf("mark license %d renewed: %w", id, err)
	}
	return l, nil
}

// RenewLicenses runs one pass of the renewer in one write transaction:
// automatic renewals due, then notices and lapses, earliest expiry_date
// first, up to r.Limit licenses in all.
func (db *DB) RenewLicenses(ctx context.Context, c licensor.Change, r licensor.RenewalPass) (licensor.RenewalResult, error) {
	var res licensor.RenewalResult
	err := db.writeTxSized(ctx, r.Limit, func(ctx context.Context, tx *sql.Tx) error {
		res = licensor.RenewalResult{}
		q := db.wq(tx)
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
			ls, err := renewalCandidates(ctx, q, mode, r.Mode, c.Time, until, left, false)
			if err != nil {
				return err
			}
			for i := range ls {
				l := &ls[i]
				p, ok := products[l.ProductID]
				if !ok {
					if p, err = findProduct(ctx, q, l.ProductID); err != nil && licensor.ErrorCode(err) != licensor.CodeProductNotFound {
						return err
					}
					products[l.ProductID] = p
				}
				switch r.Decide(l, p, c.Time) {
				case licensor.RenewNow:
					s, err := licensor.Successor(l, p, c.Time)
					if err != nil {
						return err
					}
					if err := q.QueryRowContext(ctx, insertLicense, insertArgs(&s)...).Scan(&s.ID); err != nil {
						return fmt.Errorf("insert the successor of license %d: %w", l.ID, err)
					}
					pred, err := markRenewed(ctx, q, l.ID, s.ID)
					if err != nil {
						return err
					}
					rn := licensor.Renewal{Predecessor: pred, Successor: s}
					res.Renewed = append(res.Renewed, rn)
					events = append(events, licensor.RenewedEvents(&rn, c)...)
				case licensor.RenewNotify:
					l.Renewal = licensor.RenewalDue
					if err := setRenewal(ctx, q, l); err != nil {
						return err
					}
					res.Due = append(res.Due, *l)
					events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewalDue, l, licensor.RenewalMeta{}, c))
				case licensor.RenewLapse:
					l.Renewal = licensor.RenewalLapsed
					if err := setRenewal(ctx, q, l); err != nil {
						return err
					}
					res.Lapsed = append(res.Lapsed, *l)
				}
			}
		}
		return appendEvents(ctx, q, events)
	})
	if err != nil {
		return licensor.RenewalResult{}, fmt.Errorf("sqlite: renew licenses: %w", err)
	}
	if res.Len() > 0 {
		db.committed.Fire()
	}
	return res, nil
}

// setRenewal moves pending license l to l.Renewal.
func setRenewal(ctx context.Context, q querier, l *licensor.License) error {
	res, err := q.ExecContext(ctx, `UPDATE licenses SET renewal = ? WHERE id = ? AND renewal = 'PENDING' AND deleted_at IS NULL`,
		string(l.Renewal), l.ID)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("license %d changed under a write transaction (%d rows, %v)", l.ID, n, err)
	}
	return nil
}

// renewalCandidates returns up to limit pending licenses of the products
// whose mode is mode (def being the deployment's) with an expiry_date at or
// before until, earliest first; for the notify mode only those that are
// Renewable or past their expiry_date at now (a suspended license waits
// for its expiry_date, to lapse). When mode is not the deployment's, the
// few products that choose it are walked one by one (on the per-product
// index), so that the others' licenses are never scanned. first asks
// only for the earliest (NextRenewal).
func renewalCandidates(ctx context.Context, q querier, mode, def licensor.RenewalMode, now, until int64, limit int, first bool) ([]licensor.License, error) {
	cols := sqlfilter.Qualify("l.", sqlstore.LicenseColumns)
	if first {
		cols = "l.id, l.expiry_date"
	}
	cond := `l.renewal = 'PENDING' AND l.deleted_at IS NULL AND l.expiry_date <= ?`
	args := []any{until}
	if mode == licensor.RenewalNotify {
		cond += ` AND (l.status IN ('ACTIVE', 'EXPIRED') OR l.expiry_date <= ?)`
		args = append(args, now)
	}
	scan := sqlstore.ScanLicense
	if first {
		scan = func(s sqlstore.Scanner) (licensor.License, error) {
			var l licensor.License
			err := s.Scan(&l.ID, &l.ExpiryDate)
			return l, err
		}
	}
	if mode == def {
		rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM licenses l INDEXED BY licenses_renewal_pending
JOIN products p ON p.id = l.product_id
WHERE `+cond+` AND COALESCE(p.renewal_mode, ?) = ?
ORDER BY l.expiry_date, l.id LIMIT ?`, append(args, string(def), string(mode), limit)...)
		if err != nil {
			return nil, err
		}
		return collect(rows, scan)
	}
	rows, err := q.QueryContext(ctx, `SELECT id FROM products WHERE renewal_mode = ? AND deleted_at IS NULL ORDER BY id`, string(mode))
	if err != nil {
		return nil, err
	}
	ids, err := collect(rows, func(s sqlstore.Scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	})
	if err != nil {
		return nil, err
	}
	var out []licensor.License
	for _, id := range ids {
		rows, err := q.QueryContext(ctx, `SELECT `+cols+` FROM licenses l INDEXED BY licenses_renewal_pending_product
WHERE l.product_id = ? AND `+cond+`
ORDER BY l.expiry_date, l.id LIMIT ?`, append([]any{id}, append(args, limit)...)...)
		if err != nil {
			return nil, err
		}
		ls, err := collect(rows, scan)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	// The earliest of all the products' first ones.
	licensor.SortByExpiry(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// NextRenewal returns the earliest expiry_date of the pending renewals
// that the server makes (automatic mode).
func (db *DB) NextRenewal(ctx context.Context, def licensor.RenewalMode) (int64, bool, error) {
	ls, err := renewalCandidates(ctx, db.rq(), licensor.RenewalAutomatic, def, 0, math.MaxInt64, 1, true)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: next renewal: %w", unavailable(err))
	}
	if len(ls) == 0 {
		return 0, false, nil
	}
	return *ls[0].ExpiryDate, true, nil
}

// CancelRenewal cancels the open renewal of a live license.
func (db *DB) CancelRenewal(ctx context.Context, id int64, reason string, c licensor.Change) (licensor.RenewalCancellation, error) {
	var out licensor.RenewalCancellation
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		l, err := sqlstore.ScanLicense(q.QueryRowContext(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return licensor.LicenseNotFound(id)
		}
		if err != nil {
			return err
		}
		to, ch, e := licensor.CancelRenewal(&l)
		if e != nil {
			return e
		}
		out = licensor.RenewalCancellation{License: l, Previous: l.Renewal, Changed: ch}
		var events []licensor.Event
		if ch {
			res, err := q.ExecContext(ctx, `UPDATE licenses SET renewal = ? WHERE id = ? AND renewal = ? AND deleted_at IS NULL`,
				string(to), id, string(l.Renewal))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("license %d changed under a write transaction (%d rows, %v)", id, n, err)
			}
			out.License.Renewal = to
			events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewalCancelled, &out.License, licensor.RenewalMeta{Reason: reason}, c))
		}
		if err := storeWithWrite(ctx, q, c, licensor.CancelledRenewal(&out)); err != nil {
			return err
		}
		return appendEvents(ctx, q, events)
	})
	if err != nil {
		return licensor.RenewalCancellation{}, fmt.Errorf("sqlite: cancel renewal: %w", err)
	}
	sqlstore.AfterCommit(c, out.Changed, &db.committed)
	return out, nil
}
