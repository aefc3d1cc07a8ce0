package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

const webhookColumns = `id, url, event_types, description, secret, created_at, updated_at, paused_at`

func scanWebhook(s rowScanner) (*licensor.Webhook, error) {
	var w licensor.Webhook
	var types string
	if err := s.Scan(&w.ID, &w.URL, &types, &w.Description, &w.Secret, &w.CreatedAt, &w.UpdatedAt, &w.PausedAt); err != nil {
		return nil, err
	}
	w.EventTypes = licensor.ParseEventTypes(types)
	return &w, nil
}

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
		return storeWithWrite(ctx, db.wq(tx), c, &created)
	})
	if err != nil {
		return fmt.Errorf("sqlite: create webhook: %w", err)
	}
	w.ID, w.CreatedAt, w.UpdatedAt, w.PausedAt = id, c.Time, c.Time, pausedAt
	markStored(c)
	return nil
}

// FindWebhooks lists every webhook by id.
func (db *DB) FindWebhooks(ctx context.Context) ([]licensor.Webhook, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: find webhooks: %w", err)
	}
	out, err := collect(rows, deref(scanWebhook))
	if err != nil {
		return nil, fmt.Errorf("sqlite: find webhooks: %w", err)
	}
	return out, nil
}

func findWebhook(ctx context.Context, q querier, id int64) (*licensor.Webhook, error) {
	w, err := scanWebhook(q.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
		*w = patch.Apply(*w, c.Time)
		if err := w.Validate(); err != nil {
			return err
		}
		w.UpdatedAt = c.Time
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

const deliveryColumns = `id, webhook_id, event_seq, event_type, state, attempts, created_at, next_attempt_at,
	last_attempt_at, last_status, last_error, delivered_at`

func scanDelivery(s rowScanner, extra ...any) (licensor.Delivery, error) {
	var d licensor.Delivery
	var lastStatus sql.NullInt64
	dest := append([]any{&d.ID, &d.WebhookID, &d.EventSeq, &d.EventType, &d.State, &d.Attempts, &d.CreatedAt,
		&d.NextAttemptAt, &d.LastAttemptAt, &lastStatus, &d.LastError, &d.DeliveredAt}, extra...)
	if err := s.Scan(dest...); err != nil {
		return d, err
	}
	if lastStatus.Valid {
		st := int(lastStatus.Int64)
		d.LastStatus = &st
	}
	return d, nil
}

// FindDeliveries lists a webhook's deliveries, newest first.
func (db *DB) FindDeliveries(ctx context.Context, q licensor.DeliveryQuery) (*licensor.DeliveryPage, error) {
	limit := sqlfilter.PageLimit(q.Limit)
	page := &licensor.DeliveryPage{Deliveries: []licensor.Delivery{}}
	err := db.readTx(ctx, func(tx *sql.Tx) error {
		if _, err := findWebhook(ctx, tx, q.WebhookID); err != nil {
			return err
		}
		ph := sqlfilter.SQLite.Args()
		conds := []string{"webhook_id = " + ph.Arg(q.WebhookID)}
		if q.State != nil {
			conds = append(conds, "state = "+ph.Arg(string(*q.State)))
		}
		if q.EventSeq != nil {
			conds = append(conds, "event_seq = "+ph.Arg(*q.EventSeq))
		}
		if q.Before > 0 {
			conds = append(conds, "id < "+ph.Arg(q.Before))
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+
			strings.Join(conds, " AND ")+` ORDER BY id DESC LIMIT `+ph.Arg(limit+1), ph.Values...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				return err
			}
			page.Deliveries = append(page.Deliveries, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: find deliveries: %w", err)
	}
	if len(page.Deliveries) > limit {
		page.Deliveries = page.Deliveries[:limit]
		page.Next = page.Deliveries[limit-1].ID
	}
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
		d, err := scanDelivery(tx.QueryRowContext(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
WHERE id = ? AND webhook_id = ?`, deliveryID, webhookID))
		if errors.Is(err, sql.ErrNoRows) {
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
		out, err = scanDelivery(tx.QueryRowContext(ctx, `INSERT INTO webhook_deliveries
	(webhook_id, event_seq, event_type, ordering_key, state, created_at, next_attempt_at)
SELECT webhook_id, event_seq, event_type, ordering_key, 'pending', ?, ? FROM webhook_deliveries WHERE id = ?
RETURNING `+deliveryColumns, c.Time, c.Time, d.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: redeliver: %w", err)
	}
	return &out, nil
}

// orderingKey is the SQL expression of an event's ordering key: a
// webhook receives the events of one license (or, for product events, of
// one product) in commit order.
const orderingKey = `CASE WHEN license_id IS NOT NULL THEN 'license:' || license_id ELSE 'product:' || product_id END`

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
		type behindHook struct {
			id, cursor int64
			types      []licensor.EventType
		}
		var hooks []behindHook
		for rows.Next() {
			var h behindHook
			var types string
			if err := rows.Scan(&h.id, &h.cursor, &types); err != nil {
				rows.Close()
				return err
			}
			h.types = licensor.ParseEventTypes(types)
			hooks = append(hooks, h)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, h := range hooks {
			// The placeholders are positional: arguments in text order.
			ph := sqlfilter.SQLite.Args()
			sel := `SELECT ` + ph.Arg(h.id) + `, seq, type, ` + orderingKey + `, 'pending', ` + ph.Arg(now) + `, ` + ph.Arg(now)
			conds := sqlfilter.EventConditions(ph, licensor.EventFilter{Types: h.types})
			conds = append(conds, "seq > "+ph.Arg(h.cursor), "seq <= "+ph.Arg(head))
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
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET cursor = ? WHERE id = ?`, cursor, h.id); err != nil {
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
	return collect(rows, func(r rowScanner) (licensor.DueDelivery, error) {
		var d licensor.DueDelivery
		err := r.Scan(&d.ID, &d.WebhookID, &d.NextAttemptAt)
		return d, err
	})
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
		hooks, err := collect(rows, func(r rowScanner) (h hook, err error) { return h, r.Scan(&h.id, &h.paused) })
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
		rows, err = tx.QueryContext(ctx, `SELECT `+sqlfilter.Qualify("d.", deliveryColumns)+`, w.url, w.secret, `+sqlfilter.Qualify("e.", eventColumns)+`
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.seq = d.event_seq
WHERE d.id IN (`+in+`)
ORDER BY d.next_attempt_at, d.id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var j licensor.DeliveryJob
			var e eventRow
			j.Delivery, err = scanDelivery(rows, append([]any{&j.URL, &j.Secret}, e.dest()...)...)
			if err != nil {
				return err
			}
			j.Event = e.event()
			jobs = append(jobs, j)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return jobs, nil
}

// eventRow receives the columns of an event scanned with other columns.
type eventRow struct {
	e         licensor.Event
	licenseID sql.NullInt64
	userID    sql.NullString
	data      string
}

func (r *eventRow) dest() []any {
	return []any{&r.e.Seq, &r.e.Type, &r.e.Time, &r.e.Actor, &r.e.RequestID, &r.licenseID, &r.e.ProductID, &r.userID, &r.data}
}

func (r *eventRow) event() licensor.Event {
	e := r.e
	e.LicenseID, e.UserID, e.Data = r.licenseID.Int64, r.userID.String, []byte(r.data)
	return e
}

// CompleteDelivery records an attempt's outcome, if the attempt's claim
// still stands.
func (db *DB) CompleteDelivery(ctx context.Context, o licensor.DeliveryOutcome) error {
	state, next := licensor.DeliveryFailed, o.At
	var deliveredAt, status any
	switch {
	case o.Delivered:
		state, deliveredAt = licensor.DeliveryDelivered, o.At
	case o.RetryAt > 0:
		state, next = licensor.DeliveryPending, o.RetryAt
	}
	if o.Status > 0 {
		status = o.Status
	}
	err := db.writeTx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, locked_until = 0,
	last_attempt_at = ?, last_status = ?, last_error = ?, delivered_at = ?
WHERE id = ? AND attempts = ? AND state = 'pending'`,
			string(state), next, o.At, status, o.Error, deliveredAt, o.ID, o.Attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: complete delivery: %w", err)
	}
	return nil
}
