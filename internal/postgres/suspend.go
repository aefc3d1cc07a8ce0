package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlstore"
)

// SuspendLicenses applies a suspend or reinstate action in one
// transaction. The licenses are locked FOR UPDATE in id order (so two
// actions on overlapping licenses cannot deadlock), which also waits for
// an expirer that holds one of them and then reads its new status: each
// change is decided on the status it is made from. The expirer skips the
// rows locked here (SKIP LOCKED) and finds them suspended afterwards.
func (db *DB) SuspendLicenses(ctx context.Context, target licensor.SuspensionTarget, a licensor.Suspension, c licensor.Change) ([]licensor.SuspensionOutcome, error) {
	if errs := licensor.CheckBatchIDs(target.IDs); len(errs) > 0 {
		return nil, errs
	}
	write := db.writeTx
	if target.IDs == nil || len(target.IDs) > soloThreshold {
		write = db.bigWriteTx // every license of a user: perhaps many
	}
	var out []licensor.SuspensionOutcome
	changed := 0
	err := write(ctx, func(ctx context.Context, tx *wtx) error {
		var rows pgx.Rows
		var err error
		if target.IDs == nil {
			rows, err = tx.Query(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses
WHERE user_id = $1 AND deleted_at IS NULL ORDER BY id FOR UPDATE`, target.UserID)
		} else {
			rows, err = tx.Query(ctx, `SELECT `+sqlstore.LicenseColumns+` FROM licenses
WHERE id = ANY($1) AND deleted_at IS NULL ORDER BY id FOR UPDATE`, target.IDs)
		}
		if err != nil {
			return err
		}
		ls, err := collect(rows, sqlstore.ScanLicense)
		if err != nil {
			return err
		}
		var found []*licensor.License
		if target.IDs != nil {
			byID := make(map[int64]*licensor.License, len(ls))
			for i := range ls {
				byID[ls[i].ID] = &ls[i]
			}
			found = make([]*licensor.License, len(target.IDs))
			for i, id := range target.IDs {
				found[i] = byID[id]
			}
		} else {
			found = make([]*licensor.License, len(ls))
			for i := range ls {
				found[i] = &ls[i]
			}
		}
		if out, err = licensor.ApplySuspension(a, target, found, c.Time); err != nil {
			return err
		}
		var ids []int64
		var statuses []string
		var events []licensor.Event
		for i := range out {
			if o := &out[i]; o.Changed {
				ids = append(ids, o.License.ID)
				statuses = append(statuses, string(o.License.Status))
				events = append(events, licensor.SuspensionEvent(a, o, c))
			}
		}
		changed = len(events)
		if len(ids) > 0 {
			tag, err := tx.Exec(ctx, `UPDATE licenses l SET status = u.status
FROM unnest($1::bigint[], $2::text[]) AS u(id, status) WHERE l.id = u.id`, ids, statuses)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(ids)) {
				return fmt.Errorf("updated %d licenses of %d locked", tag.RowsAffected(), len(ids))
			}
		}
		if err := storeWithWrite(ctx, tx, c, licensor.SuspendedLicenses(out)); err != nil {
			return err
		}
		tx.appendEvents(events)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: %s licenses: %w", a.Op, err)
	}
	sqlstore.AfterCommit(c, changed > 0, &db.committed)
	return out, nil
}
