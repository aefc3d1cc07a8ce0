package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// EventsCommitted returns a channel closed when this DB next commits events.
func (db *DB) EventsCommitted() <-chan struct{} { return db.committed.Wait() }

// appendEvents records events in tx, with the next positions of the feed.
// SQLite has one writer at a time, so positions follow commit order; the
// head row is still updated last, as on PostgreSQL.
func appendEvents(ctx context.Context, q querier, events []licensor.Event) error {
	if len(events) == 0 {
		return nil
	}
	var last int64
	err := q.QueryRowContext(ctx, `UPDATE event_head SET seq = seq + ? WHERE id = 1 RETURNING seq`, len(events)).Scan(&last)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	first := last - int64(len(events)) + 1
	for i := range events {
		e := &events[i]
		e.Seq = first + int64(i)
		var licenseID any
		if e.LicenseID != 0 {
			licenseID = e.LicenseID
		}
		if _, err := q.ExecContext(ctx, insertEvent, e.Seq, string(e.Type), e.Time, e.Actor, e.RequestID,
			licenseID, e.ProductID, sqlfilter.NullIfEmpty(e.UserID), string(e.Data)); err != nil {
			return fmt.Errorf("append events: %w", err)
		}
	}
	return nil
}

const insertEvent = `INSERT INTO events (seq, type, time, actor, request_id, license_id, product_id, user_id, data)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

// Events reads one page of the change feed in one read transaction, so
// that the head and the events agree.
func (db *DB) Events(ctx context.Context, q licensor.EventQuery) (*licensor.EventPage, error) {
	page := &licensor.EventPage{}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		var head, pruned int64
		if err := tx.QueryRowContext(ctx, `SELECT seq, pruned_through FROM event_head WHERE id = 1`).Scan(&head, &pruned); err != nil {
			return err
		}
		list, err := sqlfilter.Events(sqlfilter.SQLite, q, head, pruned)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(list.Query, sqlstore.EventColumns), list.Args...)
		if err != nil {
			return err
		}
		if page.Events, err = collect(rows, sqlstore.ScanEvent); err != nil {
			return err
		}
		list.EventPage(page, head)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: events: %w", err)
	}
	return page, nil
}

// ExpireLicenses moves due ACTIVE licenses to EXPIRED with their events,
// earliest stop_date first. Writers are serialized, so the status guard in
// the UPDATE is all it takes for each license to expire once.
func (db *DB) ExpireLicenses(ctx context.Context, c licensor.Change, limit int) ([]licensor.License, error) {
	var out []licensor.License
	err := db.writeTxSized(ctx, limit, func(ctx context.Context, tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `UPDATE licenses SET status = 'EXPIRED'
WHERE id IN (SELECT id FROM licenses
	WHERE status = 'ACTIVE' AND deleted_at IS NULL AND stop_date IS NOT NULL AND stop_date <= ?
	ORDER BY stop_date, id LIMIT ?)
RETURNING `+sqlstore.LicenseColumns, c.Time, limit)
		if err != nil {
			return err
		}
		out, err = collect(rows, sqlstore.ScanLicense)
		if err != nil {
			return err
		}
		rows.Close()
		sqlstore.SortByStopDate(out)
		return appendEvents(ctx, db.wq(tx), licensor.LicenseEvents(licensor.EventLicenseExpired, out, c))
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: expire licenses: %w", err)
	}
	if len(out) > 0 {
		db.committed.Fire()
	}
	return out, nil
}

// NextExpiry returns the earliest stop_date of live ACTIVE licenses.
func (db *DB) NextExpiry(ctx context.Context) (int64, bool, error) {
	var next sql.NullInt64
	err := db.rq().QueryRowContext(ctx, `SELECT min(stop_date) FROM licenses
WHERE status = 'ACTIVE' AND deleted_at IS NULL AND stop_date IS NOT NULL`).Scan(&next)
	if err != nil {
		return 0, false, fmt.Errorf("sqlite: next expiry: %w", err)
	}
	return next.Int64, next.Valid, nil
}

// PruneHistory deletes a batch of each kind of old history, each kind in a
// write transaction of its own, so that writers never wait long.
func (db *DB) PruneHistory(ctx context.Context, before int64, limit int) (int64, error) {
	var total int64
	steps := []func(ctx context.Context, tx *sql.Tx) (int64, error){
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			rows, err := tx.QueryContext(ctx, `DELETE FROM events
WHERE seq IN (SELECT seq FROM events WHERE time < ? ORDER BY seq LIMIT ?)
RETURNING seq`, before, limit)
			if err != nil {
				return 0, err
			}
			var n, top int64
			for rows.Next() {
				var seq int64
				if err := rows.Scan(&seq); err != nil {
					rows.Close()
					return 0, err
				}
				n, top = n+1, max(top, seq)
			}
			rows.Close()
			if err := rows.Err(); err != nil || n == 0 {
				return 0, err
			}
			_, err = tx.ExecContext(ctx, `UPDATE event_head SET pruned_through = max(pruned_through, ?) WHERE id = 1`, top)
			return n, err
		},
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			// Deliveries of pruned events can never be sent again.
			return execCount(ctx, tx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
WHERE event_seq <= (SELECT pruned_through FROM event_head WHERE id = 1) LIMIT ?)`, limit)
		},
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			return execCount(ctx, tx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
WHERE state <> 'pending' AND created_at < ? LIMIT ?)`, before, limit)
		},
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			return execCount(ctx, tx, `DELETE FROM licenses WHERE id IN (SELECT id FROM licenses
WHERE deleted_at IS NOT NULL AND deleted_at < ? LIMIT ?)`, before, limit)
		},
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			return execCount(ctx, tx, `DELETE FROM products WHERE id IN (SELECT id FROM products p
WHERE deleted_at IS NOT NULL AND deleted_at < ?
	AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.product_id = p.id) LIMIT ?)`, before, limit)
		},
		func(ctx context.Context, tx *sql.Tx) (int64, error) {
			return execCount(ctx, tx, `DELETE FROM bulk_jobs WHERE id IN (SELECT id FROM bulk_jobs
WHERE finished_at IS NOT NULL AND finished_at < ? LIMIT ?)`, before, limit)
		},
	}
	for _, step := range steps {
		n, err := db.countTx(ctx, limit, step)
		if err != nil {
			return total, fmt.Errorf("sqlite: prune history: %w", err)
		}
		total += n
	}
	return total, nil
}
