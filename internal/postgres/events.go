package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// EventsCommitted returns a channel closed when this DB next commits events.
func (db *DB) EventsCommitted() <-chan struct{} { return db.committed.Wait() }

// queueEvents queues into b the statement that records events with the
// next positions of the feed. It must be the transaction's last statement
// before COMMIT: it takes the row lock of event_head, which orders the
// commits of every writer (see doc.go), and the shorter the lock is held,
// the more writers commit per second. Positions and rows go in one
// statement; a group sends it in the round trip of its COMMIT.
func queueEvents(b *pgx.Batch, events []licensor.Event) {
	n := len(events)
	types, times, actors, requests := make([]string, n), make([]int64, n), make([]string, n), make([]string, n)
	licenses, products, users, data := make([]*int64, n), make([]int64, n), make([]*string, n), make([]string, n)
	for i := range events {
		e := &events[i]
		types[i], times[i], actors[i], requests[i] = string(e.Type), e.Time, e.Actor, e.RequestID
		if e.LicenseID != 0 {
			licenses[i] = &e.LicenseID
		}
		if e.UserID != "" {
			users[i] = &e.UserID
		}
		products[i], data[i] = e.ProductID, string(e.Data)
	}
	b.Queue(`WITH head AS (
	UPDATE event_head SET seq = seq + $1 WHERE id = 1 RETURNING seq
)
INSERT INTO events (seq, type, time, actor, request_id, license_id, product_id, user_id, data)
SELECT head.seq - $1 + u.ord, u.type, u.time, u.actor, u.request_id, u.license_id, u.product_id, u.user_id, u.data
FROM head, unnest($2::text[], $3::bigint[], $4::text[], $5::text[], $6::bigint[], $7::bigint[], $8::text[], $9::text[])
	WITH ORDINALITY AS u(type, time, actor, request_id, license_id, product_id, user_id, data, ord)`,
		n, types, times, actors, requests, licenses, products, users, data)
}

// Events reads one page of the change feed. The head is read first, then
// the events up to it: the second statement's snapshot is younger, and
// every position up to a committed head belongs to a transaction that
// committed before it, so the page has no holes.
func (db *DB) Events(ctx context.Context, q licensor.EventQuery) (*licensor.EventPage, error) {
	var head, pruned int64
	if err := db.pool.QueryRow(ctx, `SELECT seq, pruned_through FROM event_head WHERE id = 1`).Scan(&head, &pruned); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	list, err := sqlfilter.Events(sqlfilter.PostgreSQL, q, head, pruned)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	rows, err := db.pool.Query(ctx, fmt.Sprintf(list.Query, sqlstore.EventColumns), list.Args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	page := &licensor.EventPage{}
	if page.Events, err = collect(rows, sqlstore.ScanEvent); err != nil {
		return nil, fmt.Errorf("postgres: events: %w", err)
	}
	list.EventPage(page, head)
	return page, nil
}

// ExpireLicenses moves due ACTIVE licenses to EXPIRED with their events,
// earliest stop_date first. Instances running it at once take different
// rows (FOR UPDATE SKIP LOCKED), and the UPDATE re-checks the status on
// the row version it locked, so each license expires exactly once; a
// license deleted meanwhile is left alone.
func (db *DB) ExpireLicenses(ctx context.Context, c licensor.Change, limit int) ([]licensor.License, error) {
	var out []licensor.License
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		// MATERIALIZED: the locking subquery runs once (a subquery the
		// planner rescans could lock and return more than limit rows).
		rows, err := tx.Query(ctx, `WITH due AS MATERIALIZED (
	SELECT id FROM licenses
	WHERE status = 'ACTIVE' AND deleted_at IS NULL AND stop_date <= $1
	ORDER BY stop_date, id LIMIT $2 FOR UPDATE SKIP LOCKED)
UPDATE licenses l SET status = 'EXPIRED'
FROM due WHERE l.id = due.id AND l.status = 'ACTIVE' AND l.deleted_at IS NULL
RETURNING `+sqlfilter.Qualify("l.", sqlstore.LicenseColumns), c.Time, limit)
		if err != nil {
			return err
		}
		out, err = collect(rows, sqlstore.ScanLicense)
		if err != nil {
			return err
		}
		sqlstore.SortByStopDate(out)
		tx.appendEvents(licensor.LicenseEvents(licensor.EventLicenseExpired, out, c))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: expire licenses: %w", err)
	}
	if len(out) > 0 {
		db.committed.Fire()
	}
	return out, nil
}

// NextExpiry returns the earliest stop_date of live ACTIVE licenses.
func (db *DB) NextExpiry(ctx context.Context) (int64, bool, error) {
	var next *int64
	err := db.pool.QueryRow(ctx, `SELECT min(stop_date) FROM licenses
WHERE status = 'ACTIVE' AND deleted_at IS NULL AND stop_date IS NOT NULL`).Scan(&next)
	if err != nil {
		return 0, false, fmt.Errorf("postgres: next expiry: %w", err)
	}
	if next == nil {
		return 0, false, nil
	}
	return *next, true, nil
}

// PruneHistory deletes a batch of each kind of old history, each kind in a
// transaction of its own. Updating pruned_through takes the event_head row
// lock last and only for a moment, like any writer.
func (db *DB) PruneHistory(ctx context.Context, before int64, limit int) (int64, error) {
	var total int64
	steps := []func(ctx context.Context, tx *wtx) (int64, error){
		func(ctx context.Context, tx *wtx) (int64, error) {
			var n int64
			var top *int64
			err := tx.QueryRow(ctx, `WITH gone AS (
	DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE time < $1 ORDER BY seq LIMIT $2)
	RETURNING seq)
SELECT count(*), max(seq) FROM gone`, before, limit).Scan(&n, &top)
			if err != nil || n == 0 {
				return 0, err
			}
			_, err = tx.Exec(ctx, `UPDATE event_head SET pruned_through = GREATEST(pruned_through, $1) WHERE id = 1`, *top)
			return n, err
		},
		func(ctx context.Context, tx *wtx) (int64, error) {
			// Deliveries of pruned events can never be sent again.
			tag, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
WHERE event_seq <= (SELECT pruned_through FROM event_head WHERE id = 1) LIMIT $1)`, limit)
			return tag.RowsAffected(), err
		},
		func(ctx context.Context, tx *wtx) (int64, error) {
			tag, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries
WHERE state <> 'pending' AND created_at < $1 LIMIT $2)`, before, limit)
			return tag.RowsAffected(), err
		},
		func(ctx context.Context, tx *wtx) (int64, error) {
			tag, err := tx.Exec(ctx, `DELETE FROM licenses WHERE id IN (SELECT id FROM licenses
WHERE deleted_at IS NOT NULL AND deleted_at < $1 LIMIT $2)`, before, limit)
			return tag.RowsAffected(), err
		},
		func(ctx context.Context, tx *wtx) (int64, error) {
			// FOR UPDATE SKIP LOCKED: a product being read FOR SHARE by a
			// create (which will then find it deleted) is left for later.
			tag, err := tx.Exec(ctx, `DELETE FROM products WHERE id IN (SELECT id FROM products p
WHERE deleted_at IS NOT NULL AND deleted_at < $1
	AND NOT EXISTS (SELECT 1 FROM licenses l WHERE l.product_id = p.id) LIMIT $2 FOR UPDATE SKIP LOCKED)`, before, limit)
			return tag.RowsAffected(), err
		},
		func(ctx context.Context, tx *wtx) (int64, error) {
			tag, err := tx.Exec(ctx, `DELETE FROM bulk_jobs WHERE id IN (SELECT id FROM bulk_jobs
WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2)`, before, limit)
			return tag.RowsAffected(), err
		},
	}
	for _, step := range steps {
		var n int64
		err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
			var err error
			n, err = step(ctx, tx)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("postgres: prune history: %w", err)
		}
		total += n
	}
	return total, nil
}
