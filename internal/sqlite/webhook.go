package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateWebhook stores w; it receives the events committed after it.
func (db *DB) CreateWebhook(ctx context.Context, w *licensor.Webhook, c licensor.Change) error {
	if w.EventTypes == nil {
		w.EventTypes = []licensor.EventType{}
	}
	var pausedAt *int64
	if w.PausedAt != nil {
		pausedAt = &c.Time
	}
	var id int64
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO webhooks (url, event_types, description, secret, cursor, created_at, updated_at, paused_at)
VALUES (?, ?, ?, ?, (SELECT seq FROM event_head WHERE id = 1), ?, ?, ?)
RETURNING id`, w.URL, licensor.FormatEventTypes(w.EventTypes), w.Description, w.Secret, c.Time, c.Time, pausedAt).Scan(&id)
		if err != nil {
			return err
		}
		created := *w
		created.ID, created.CreatedAt, created.UpdatedAt, created.PausedAt = id, c.Time, c.Time, pausedAt
		return storeWithWrite(ctx, db.wq(tx), c, licensor.CreatedWebhook(&created))
	})
	if err != nil {
		return fmt.Errorf("sqlite: create webhook: %w", err)
	}
	w.ID, w.CreatedAt, w.UpdatedAt, w.PausedAt = id, c.Time, c.Time, pausedAt
	sqlstore.AfterCommit(c, false, &db.committed)
	return nil
}

// FindWebhooks lists every webhook by id.
func (db *DB) FindWebhooks(ctx context.Context) ([]licensor.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find webhooks: %w", err)
	}
	out, err := collect(rows, sqlstore.Deref(sqlstore.ScanWebhook))
	if err != nil {
		return nil, fmt.Errorf("sqlite: find webhooks: %w", err)
	}
	return out, nil
}

func findWebhook(ctx context.Context, q querier, id int64) (*licensor.Webhook, error) {
	w, err := sqlstore.ScanWebhook(q.QueryRowContext(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE id = ?`, id))
	if sqlstore.NoRow(err) {
		return nil, licensor.WebhookNotFound(id)
	}
	return w, err
}

// FindWebhookByID returns a webhook.
func (db *DB) FindWebhookByID(ctx context.Context, id int64) (*licensor.Webhook, error) {
	w, err := findWebhook(ctx, db.read, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find webhook: %w", err)
	}
	return w, nil
}

// UpdateWebhook applies patch in one transaction.
func (db *DB) UpdateWebhook(ctx context.Context, id int64, patch licensor.WebhookPatch, c licensor.Change) (*licensor.Webhook, error) {
	var out *licensor.Webhook
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		w, err := findWebhook(ctx, tx, id)
		if err != nil {
			return err
		}
		if *w, err = patch.Update(*w, c.Time); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE webhooks SET url = ?, event_types = ?, description = ?, secret = ?, updated_at = ?, paused_at = ?
WHERE id = ?`, w.URL, licensor.FormatEventTypes(w.EventTypes), w.Description, w.Secret, w.UpdatedAt, w.PausedAt, id)
		out = w
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: update webhook: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook; its deliveries go with it (ON DELETE
// CASCADE).
func (db *DB) DeleteWebhook(ctx context.Context, id int64, c licensor.Change) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		n, err := execCount(ctx, tx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err == nil && n == 0 {
			return licensor.WebhookNotFound(id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete webhook: %w", err)
	}
	return nil
}

// FindDeliveries lists a webhook's deliveries, newest first.
func (db *DB) FindDeliveries(ctx context.Context, q licensor.DeliveryQuery) (*licensor.DeliveryPage, error) {
	list := sqlfilter.Deliveries(sqlfilter.SQLite, q)
	page := &licensor.DeliveryPage{}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		if _, err := findWebhook(ctx, tx, q.WebhookID); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(list.Query, sqlstore.DeliveryColumns), list.Args...)
		if err != nil {
			return err
		}
		page.Deliveries, err = collect(rows, func(s sqlstore.Scanner) (licensor.Delivery, error) { return sqlstore.ScanDelivery(s) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: find deliveries: %w", err)
	}
	list.DeliveryPage(page)
	return page, nil
}

// Redeliver makes a pending delivery due now, or queues a finished one
// again as a new delivery of the same event.
func (db *DB) Redeliver(ctx context.Context, webhookID, deliveryID int64, c licensor.Change) (*licensor.Delivery, error) {
	var out licensor.Delivery
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if _, err := findWebhook(ctx, tx, webhookID); err != nil {
			return err
		}
		d, err := sqlstore.ScanDelivery(tx.QueryRowContext(ctx, `SELECT `+sqlstore.DeliveryColumns+` FROM webhook_deliveries
WHERE id = ? AND webhook_id = ?`, deliveryID, webhookID))
		if sqlstore.NoRow(err) {
			return licensor.DeliveryNotFound(webhookID, deliveryID)
		}
		if err != nil {
			return err
		}
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE seq = ?`, d.EventSeq).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return licensor.Errorf(licensor.CodeDeliveryNotFound,
				"the event of delivery %d is past the retention period and was pruned", deliveryID)
		}
		if d.State == licensor.DeliveryPending {
			_, err = tx.ExecContext(ctx, `UPDATE webhook_deliveries SET next_attempt_at = ? WHERE id = ?`, c.Time, d.ID)
			d.NextAttemptAt = c.Time
			out = d
			return err
		}
		out, err = sqlstore.ScanDelivery(tx.QueryRowContext(ctx, `INSERT INTO webhook_deliveries
	(webhook_id, event_seq, event_type, ordering_key, state, created_at, next_attempt_at)
SELECT webhook_id, event_seq, event_type, ordering_key, 'pending', ?, ? FROM webhook_deliveries WHERE id = ?
RETURNING `+sqlstore.DeliveryColumns, c.Time, c.Time, d.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: redeliver: %w", err)
	}
	return &out, nil
}

// DispatchEvents queues the deliveries of new events. It looks first, on
// a reader, whether any webhook is behind the feed, so that an idle
// dispatcher costs no write transaction.
func (db *DB) DispatchEvents(ctx context.Context, now int64, limit int) (int, error) {
	var behind int
	err := db.rq().QueryRowContext(ctx, `SELECT count(*) FROM webhooks
WHERE cursor < (SELECT seq FROM event_head WHERE id = 1)`).Scan(&behind)
	if err != nil || behind == 0 {
		if err != nil {
			err = fmt.Errorf("sqlite: dispatch events: %w", err)
		}
		return 0, err
	}
	queued := 0
	err = db.writeTxSized(ctx, limit, func(ctx context.Context, tx *sql.Tx) error {
		queued = 0
		var head int64
		if err := tx.QueryRowContext(ctx, `SELECT seq FROM event_head WHERE id = 1`).Scan(&head); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, cursor, event_types FROM webhooks WHERE cursor < ? ORDER BY id`, head)
		if err != nil {
			return err
		}
		hooks, err := collect(rows, sqlstore.ScanHook)
		if err != nil {
			return err
		}
		for _, h := range hooks {
			// The placeholders are positional: arguments in text order.
			ph := sqlfilter.SQLite.Args()
			sel := `SELECT ` + ph.Arg(h.ID) + `, seq, type, ` + sqlstore.OrderingKey + `, 'pending', ` + ph.Arg(now) + `, ` + ph.Arg(now)
			conds := sqlfilter.EventConditions(ph, licensor.EventFilter{Types: h.Types})
			conds = append(conds, "seq > "+ph.Arg(h.Cursor), "seq <= "+ph.Arg(head))
			rows, err := tx.QueryContext(ctx, `INSERT INTO webhook_deliveries
	(webhook_id, event_seq, event_type, ordering_key, state, created_at, next_attempt_at)
`+sel+` FROM events WHERE `+strings.Join(conds, " AND ")+` ORDER BY seq LIMIT `+ph.Arg(limit)+`
RETURNING event_seq`, ph.Values...)
			if err != nil {
				return err
			}
			n, top := 0, int64(0)
			for rows.Next() {
				var seq int64
				if err := rows.Scan(&seq); err != nil {
					rows.Close()
					return err
				}
				n, top = n+1, max(top, seq)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			cursor := head
			if n == limit {
				cursor = top
			}
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET cursor = ? WHERE id = ?`, cursor, h.ID); err != nil {
				return err
			}
			queued += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: dispatch events: %w", err)
	}
	return queued, nil
}

// dueCondition holds for a delivery d that may be attempted at the time of
// its two placeholders: pending, due, not leased, and first in line for
// its ordering key.
const dueCondition = `d.state = 'pending' AND d.next_attempt_at <= ? AND d.locked_until <= ?
	AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
		WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key AND e.state = 'pending'
			AND (e.event_seq, e.id) < (d.event_seq, d.id))`

// anyDue counts 1 when an active (not paused) webhook may have a due
// delivery (now, now), looking in each active webhook's pending
// deliveries, so that the backlog of a paused webhook is never read.
const anyDue = `SELECT EXISTS (SELECT 1 FROM webhooks w WHERE w.paused_at IS NULL AND EXISTS (
	SELECT 1 FROM webhook_deliveries d INDEXED BY webhook_deliveries_order
	WHERE d.webhook_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= ? AND d.locked_until <= ?))`

// dueDeliveries selects the oldest due deliveries (now, now, limit).
const dueDeliveries = `SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d
WHERE ` + dueCondition + `
ORDER BY d.next_attempt_at, d.id LIMIT ?`

// dueOfWebhook selects the oldest due deliveries of one webhook after a
// place in the queue (webhook, now, now, next_attempt_at, id, limit). It
// reads the webhook's pending deliveries (the order index) rather than
// the queue, where the backlog of other webhooks may come first.
const dueOfWebhook = `SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d INDEXED BY webhook_deliveries_order
WHERE d.webhook_id = ? AND ` + dueCondition + `
	AND (d.next_attempt_at, d.id) > (?, ?)
ORDER BY d.next_attempt_at, d.id LIMIT ?`

func queryDue(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]licensor.DueDelivery, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, sqlstore.ScanDue)
}

// ClaimDeliveries leases due deliveries for one attempt each: the oldest
// first, within each webhook's room. When the oldest are of webhooks that
// have no room (a receiver that hangs, with a backlog), it looks for each
// other webhook's oldest on its own. It looks first, on a reader, whether
// any is due, so that an idle worker costs no write transaction.
func (db *DB) ClaimDeliveries(ctx context.Context, c licensor.DeliveryClaim) ([]licensor.DeliveryJob, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	var due int
	err := db.rq().QueryRowContext(ctx, anyDue, c.Now, c.Now).Scan(&due)
	if err != nil || due == 0 {
		if err != nil {
			err = fmt.Errorf("sqlite: claim deliveries: %w", err)
		}
		return nil, err
	}
	var jobs []licensor.DeliveryJob
	err = db.writeTxSized(ctx, c.Limit, func(ctx context.Context, tx *sql.Tx) error {
		jobs = nil
		rows, err := tx.QueryContext(ctx, `SELECT id, paused_at IS NOT NULL FROM webhooks ORDER BY id`)
		if err != nil {
			return err
		}
		type hook struct {
			id     int64
			paused bool
		}
		hooks, err := collect(rows, func(r sqlstore.Scanner) (h hook, err error) { return h, r.Scan(&h.id, &h.paused) })
		if err != nil {
			return err
		}
		c.Paused = map[int64]bool{}
		for _, h := range hooks {
			if h.paused {
				c.Paused[h.id] = true
			}
		}
		oldest, err := queryDue(ctx, tx, dueDeliveries, c.Now, c.Now, c.Limit)
		if err != nil {
			return err
		}
		taken := map[int64]int{}
		picks := c.Take(oldest, taken)
		if len(oldest) == c.Limit && len(picks) < c.Limit {
			// The oldest are of webhooks without room (or paused): look
			// further for the others, after the last one seen.
			last, want := oldest[len(oldest)-1], c.Limit-len(picks)
			for _, h := range hooks {
				room := c.Room(h.id, taken[h.id])
				if room == 0 {
					continue
				}
				if room < 0 || room > want {
					room = want
				}
				more, err := queryDue(ctx, tx, dueOfWebhook, h.id, c.Now, c.Now, last.NextAttemptAt, last.ID, room)
				if err != nil {
					return err
				}
				picks = append(picks, more...)
			}
			picks = c.Oldest(picks)
		}
		if len(picks) == 0 {
			return nil
		}
		// The ids are integers this transaction just read: safe to inline.
		ids := make([]string, len(picks))
		for i, p := range picks {
			ids[i] = strconv.FormatInt(p.ID, 10)
		}
		in := strings.Join(ids, ", ")
		if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET locked_until = ?, attempts = attempts + 1
WHERE id IN (`+in+`)`, c.LeaseUntil); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, `SELECT `+sqlfilter.Qualify("d.", sqlstore.DeliveryColumns)+`, w.url, w.secret, `+sqlfilter.Qualify("e.", sqlstore.EventColumns)+`
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.seq = d.event_seq
WHERE d.id IN (`+in+`)
ORDER BY d.next_attempt_at, d.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j licensor.DeliveryJob
			var e sqlstore.EventRow
			j.Delivery, err = sqlstore.ScanDelivery(rows, append([]any{&j.URL, &j.Secret}, e.Dest()...)...)
			if err != nil {
				return err
			}
			j.Event = e.Event()
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return jobs, nil
}

// CompleteDelivery records an attempt's outcome, if the attempt's claim
// still stands.
func (db *DB) CompleteDelivery(ctx context.Context, o licensor.DeliveryOutcome) error {
	state, next, status, deliveredAt := sqlstore.OutcomeValues(o)
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, locked_until = 0,
	last_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
WHERE id = ? AND attempts = ? AND state = 'pending'`,
			state, next, o.At, status, o.Error, deliveredAt, o.ID, o.Attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: complete delivery: %w", err)
	}
	return nil
}
