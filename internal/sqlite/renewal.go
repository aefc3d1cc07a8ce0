package sqlite

import (
	"context"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Recurring renewal (licensor.RenewalState): what both engines share is in
// internal/sqlstore (renewal.go); here which rows a pass takes and how it
// inserts the successors (sqlstore.Renewer). Writers are
// serialized, so the renewal state read in a write transaction is the one
// the change is made from.

// InsertSuccessors inserts each successor on its own (the writer's
// prepared statement) and marks its predecessor (sqlstore.Renewer).
func (engineOf) InsertSuccessors(ctx context.Context, tx sqlstore.Tx, renew []licensor.Renewal) error {
	q := tx.(shared).q
	for i := range renew {
		rn := &renew[i]
		if err := q.QueryRowContext(ctx, insertLicense, insertArgs(&rn.Successor)...).Scan(&rn.Successor.ID); err != nil {
			return fmt.Errorf("insert the successor of license %d: %w", rn.Predecessor.ID, err)
		}
		pred, err := sqlstore.MarkRenewed(ctx, tx, rn.Predecessor.ID, rn.Successor.ID)
		if err != nil {
			return err
		}
		rn.Predecessor = pred
	}
	return nil
}

// RenewalCandidates (sqlstore.Renewer): when mode is not the deployment's,
// the few products that choose it are walked one by one (on the
// per-product index), so that the others' licenses are never scanned.
func (engineOf) RenewalCandidates(ctx context.Context, sq sqlstore.Querier, mode, def licensor.RenewalMode, now, until int64, limit int, first bool) ([]licensor.License, error) {
	q := sq.(shared).q
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
