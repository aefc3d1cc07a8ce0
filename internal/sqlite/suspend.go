package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// SuspendLicenses applies a suspend or reinstate action in one write
// transaction. Writers are serialized, so the statuses read at its start
// are those the changes are made from (the expirer cannot move a license
// in between).
func (db *DB) SuspendLicenses(ctx context.Context, target licensor.SuspensionTarget, a licensor.Suspension, c licensor.Change) ([]licensor.SuspensionOutcome, error) {
	if errs := licensor.CheckBatchIDs(target.IDs); len(errs) > 0 {
		return nil, errs
	}
	size := len(target.IDs)
	if target.IDs == nil {
		size = aloneAbove + 1 // every license of the user, perhaps many
	}
	var out []licensor.SuspensionOutcome
	changed := 0
	err := db.writeTxSized(ctx, size, func(ctx context.Context, tx *sql.Tx) error {
		q := db.wq(tx)
		found, err := suspensionTargets(ctx, q, target)
		if err != nil {
			return err
		}
		if out, err = licensor.ApplySuspension(a, target, found, c.Time); err != nil {
			return err
		}
		var events []licensor.Event
		for i := range out {
			o := &out[i]
			if !o.Changed {
				continue
			}
			res, err := q.ExecContext(ctx, `UPDATE licenses SET status = ? WHERE id = ? AND status = ? AND deleted_at IS NULL`,
				o.License.Status, o.License.ID, o.Previous)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				return fmt.Errorf("license %d changed under a write transaction (%d rows, %v)", o.License.ID, n, err)
			}
			events = append(events, licensor.SuspensionEvent(a, o, c))
		}
		changed = len(events)
		if err := storeWithWrite(ctx, q, c, licensor.SuspendedLicenses(out)); err != nil {
			return err
		}
		return appendEvents(ctx, q, events)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: %s licenses: %w", a.Op, err)
	}
	sqlstore.AfterCommit(c, changed > 0, &db.committed)
	return out, nil
}

// suspensionTargets reads the live licenses of target: for IDs in their
// order (nil for an id that is not live), for a user in id order.
func suspensionTargets(ctx context.Context, q querier, target licensor.SuspensionTarget) ([]*licensor.License, error) {
	if target.IDs == nil {
		rows, err := q.QueryContext(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses
WHERE user_id = ? AND deleted_at IS NULL ORDER BY id`, target.UserID)
		if err != nil {
			return nil, err
		}
		ls, err := collect(rows, sqlstore.ScanLicense)
		if err != nil {
			return nil, err
		}
		out := make([]*licensor.License, len(ls))
		for i := range ls {
			out[i] = &ls[i]
		}
		return out, nil
	}
	out := make([]*licensor.License, len(target.IDs))
	for i, id := range target.IDs {
		l, err := sqlstore.ScanLicense(q.QueryRowContext(ctx,
			`SELECT `+sqlstore.LicenseColumns+` FROM licenses WHERE id = ? AND deleted_at IS NULL`, id))
		if sqlstore.NoRow(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = &l
	}
	return out, nil
}
