package sqlstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// The parts of recurring renewal (licensor.RenewalState) that are the same
// on both engines. Each change of a renewal state is made from a row read
// in the write transaction (locked FOR UPDATE on PostgreSQL, ForUpdate) and
// re-checked by the UPDATE, so the renewer, a BSS creating a successor and
// a cancellation serialize on the predecessor: a renewal is made once, or
// cancelled. The unique index on live renewed_from and the deterministic
// order ids stand behind that. The renewer's pass itself (which rows it
// takes, how it inserts the successors) is each engine's own.

// SuccessorDrafts reads, in tx, the predecessors the drafts name (in id
// order, locked) and checks them (licensor.CheckSuccessorDrafts).
func SuccessorDrafts(ctx context.Context, tx Querier, drafts []licensor.LicenseDraft) ([]licensor.LicenseDraft, licensor.ItemErrors, error) {
	ids := licensor.Predecessors(drafts)
	if len(ids) == 0 {
		return drafts, nil, nil
	}
	ph := tx.Dialect().Args()
	ls, err := Collect(ctx, tx, ScanLicense, `SELECT `+LicenseColumns+` FROM licenses
WHERE `+ph.InIDs("id", ids)+` AND deleted_at IS NULL ORDER BY id`+ForUpdate(tx), ph.Values...)
	if err != nil {
		return nil, nil, err
	}
	preds := make(map[int64]*licensor.License, len(ls))
	for i := range ls {
		preds[ls[i].ID] = &ls[i]
	}
	out, errs := licensor.CheckSuccessorDrafts(drafts, preds)
	return out, errs, nil
}

// LinkSuccessors marks the predecessors of the new licenses ls that have
// one RENEWED by them and returns their license.renewed events.
func LinkSuccessors(ctx context.Context, tx Querier, ls []licensor.License, c licensor.Change) ([]licensor.Event, error) {
	var events []licensor.Event
	for i := range ls {
		if ls[i].RenewedFrom == nil {
			continue
		}
		pred, err := MarkRenewed(ctx, tx, *ls[i].RenewedFrom, ls[i].ID)
		if err != nil {
			return nil, err
		}
		events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewed, &pred,
			licensor.RenewalMeta{Successor: strconv.FormatInt(ls[i].ID, 10)}, c))
	}
	return events, nil
}

// MarkRenewed marks license id, pending or due, RENEWED by successor, and
// returns it.
func MarkRenewed(ctx context.Context, tx Querier, id, successor int64) (licensor.License, error) {
	l, err := ScanLicense(tx.QueryRow(ctx, `UPDATE licenses SET renewal = 'RENEWED', renewed_by = ?
WHERE id = ? AND renewal IN ('PENDING', 'DUE') AND deleted_at IS NULL
RETURNING `+LicenseColumns, successor, id))
	if err != nil {
		return l, fmt.Errorf("mark license %d renewed: %w", id, err)
	}
	return l, nil
}

// SetRenewal moves pending license l, read in tx, to l.Renewal.
func SetRenewal(ctx context.Context, tx Querier, l *licensor.License) error {
	n, err := tx.Exec(ctx, `UPDATE licenses SET renewal = ? WHERE id = ? AND renewal = 'PENDING' AND deleted_at IS NULL`,
		string(l.Renewal), l.ID)
	if err != nil {
		return err
	}
	if n != 1 {
		return fmt.Errorf("license %d changed under its write transaction (%d rows)", l.ID, n)
	}
	return nil
}

// cancelRenewal cancels, in tx, the open renewal of live license id, read
// locked.
func cancelRenewal(ctx context.Context, tx Tx, id int64, reason string, c licensor.Change) (licensor.RenewalCancellation, error) {
	l, err := ScanLicense(tx.QueryRow(ctx, `SELECT `+LicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`+ForUpdate(tx), id))
	if NoRow(err) {
		return licensor.RenewalCancellation{}, licensor.LicenseNotFound(id)
	}
	if err != nil {
		return licensor.RenewalCancellation{}, err
	}
	to, changed, e := licensor.CancelRenewal(&l)
	if e != nil {
		return licensor.RenewalCancellation{}, e
	}
	out := licensor.RenewalCancellation{License: l, Previous: l.Renewal, Changed: changed}
	if changed {
		n, err := tx.Exec(ctx, `UPDATE licenses SET renewal = ? WHERE id = ? AND renewal = ? AND deleted_at IS NULL`,
			string(to), id, string(l.Renewal))
		if err != nil {
			return out, err
		}
		if n != 1 {
			return out, fmt.Errorf("license %d changed under its write transaction (%d rows)", id, n)
		}
		out.License.Renewal = to
		err = tx.AppendEvents(ctx, []licensor.Event{licensor.RenewalEvent(licensor.EventLicenseRenewalCancelled, &out.License, licensor.RenewalMeta{Reason: reason}, c)})
		if err != nil {
			return out, err
		}
	}
	return out, tx.StoreWithWrite(ctx, c, licensor.CancelledRenewal(&out))
}

// Renewer is what each engine does its own way in a renewer's pass
// (RenewalPass): which rows it takes, and how it inserts the successors.
type Renewer interface {
	// RenewalCandidates returns, in q, up to limit pending licenses of the
	// products renewed in mode (def being the deployment's), with an
	// expiry_date at or before until, earliest first; for the notify mode
	// only those that are Renewable or past their expiry_date at now (a
	// suspended license waits for its expiry_date, to lapse). In a write
	// transaction they are read to be changed (on PostgreSQL locked,
	// skipping what another instance holds); first asks, on a reader, only
	// for the id and expiry_date of the earliest (NextRenewal).
	RenewalCandidates(ctx context.Context, q Querier, mode, def licensor.RenewalMode, now, until int64, limit int, first bool) ([]licensor.License, error)
	// InsertSuccessors inserts the successors of renew in tx, setting
	// their ids, and marks their predecessors RENEWED by them
	// (MarkRenewed), setting them as they are then.
	InsertSuccessors(ctx context.Context, tx Tx, renew []licensor.Renewal) error
}

// renewalProducts returns the live products of ids (a missing one is
// deleted), in tx: on PostgreSQL locked FOR SHARE in id order, so that a
// cascading delete waits, and then deletes the successors too.
func renewalProducts(ctx context.Context, tx Querier, ids []int64) (map[int64]*licensor.Product, error) {
	ph := tx.Dialect().Args()
	query := `SELECT ` + ProductColumns + ` FROM products WHERE ` + ph.InIDs("id", ids) + ` AND deleted_at IS NULL ORDER BY id`
	if tx.Dialect() == sqlfilter.PostgreSQL {
		query += " FOR SHARE"
	}
	ps, err := Collect(ctx, tx, ScanProduct, query, ph.Values...)
	out := make(map[int64]*licensor.Product, len(ps))
	for _, p := range ps {
		out[p.ID] = p
	}
	return out, err
}

// RenewalPass runs one pass of the renewer in tx at c: automatic renewals
// due, then notices and lapses, earliest expiry_date first, up to r.Limit
// licenses in all, with their events.
func RenewalPass(ctx context.Context, tx Tx, c licensor.Change, r licensor.RenewalPass, e Renewer) (licensor.RenewalResult, error) {
	var res licensor.RenewalResult
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
		ls, err := e.RenewalCandidates(ctx, tx, mode, r.Mode, c.Time, until, left, false)
		if err != nil {
			return res, err
		}
		var want []int64
		for i := range ls {
			if _, ok := products[ls[i].ProductID]; !ok {
				products[ls[i].ProductID] = nil
				want = append(want, ls[i].ProductID)
			}
		}
		if len(want) > 0 {
			found, err := renewalProducts(ctx, tx, want)
			if err != nil {
				return res, err
			}
			for _, id := range want {
				products[id] = found[id]
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
					return res, err
				}
				renew = append(renew, licensor.Renewal{Predecessor: *l, Successor: s})
			case licensor.RenewNotify:
				l.Renewal = licensor.RenewalDue
				if err := SetRenewal(ctx, tx, l); err != nil {
					return res, err
				}
				res.Due = append(res.Due, *l)
				events = append(events, licensor.RenewalEvent(licensor.EventLicenseRenewalDue, l, licensor.RenewalMeta{}, c))
			case licensor.RenewLapse:
				l.Renewal = licensor.RenewalLapsed
				if err := SetRenewal(ctx, tx, l); err != nil {
					return res, err
				}
				res.Lapsed = append(res.Lapsed, *l)
			}
		}
		if len(renew) == 0 {
			continue
		}
		if err := e.InsertSuccessors(ctx, tx, renew); err != nil {
			return res, err
		}
		for i := range renew {
			res.Renewed = append(res.Renewed, renew[i])
			events = append(events, licensor.RenewedEvents(&renew[i], c)...)
		}
	}
	return res, tx.AppendEvents(ctx, events)
}
