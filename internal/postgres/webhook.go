package postgres

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// CreateWebhook stores w; it receives the events committed after it (its
// cursor starts at the head of the feed as the INSERT sees it).
func (db *DB) CreateWebhook(ctx context.Context, w *licensor.Webhook, c licensor.Change) error {
	if w.EventTypes == nil {
		w.EventTypes = []licensor.EventType{}
	}
	var pausedAt *int64
	if w.PausedAt != nil {
		pausedAt = &c.Time
	}
	var id int64
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		err := tx.QueryRow(ctx, `INSERT INTO webhooks (url, event_types, description, secret, cursor, created_at, updated_at, paused_at)
VALUES ($1, $2, $3, $4, (SELECT seq FROM event_head WHERE id = 1), $5, $6, $7)
RETURNING id`, w.URL, licensor.FormatEventTypes(w.EventTypes), w.Description, w.Secret, c.Time, c.Time, pausedAt).Scan(&id)
		if err != nil {
			return err
		}
		created := *w
		created.ID, created.CreatedAt, created.UpdatedAt, created.PausedAt = id, c.Time, c.Time, pausedAt
		return storeWithWrite(ctx, tx, c, licensor.CreatedWebhook(&created))
	})
	if err != nil {
		return fmt.Errorf("postgres: create webhook: %w", err)
	}
	w.ID, w.CreatedAt, w.UpdatedAt, w.PausedAt = id, c.Time, c.Time, pausedAt
	sqlstore.AfterCommit(c, false, &db.committed)
	return nil
}

// FindWebhooks lists every webhook by id.
func (db *DB) FindWebhooks(ctx context.Context) ([]licensor.Webhook, error) {
	rows, err := db.pool.Query(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: find webhooks: %w", err)
	}
	out, err := collect(rows, sqlstore.Deref(sqlstore.ScanWebhook))
	if err != nil {
		return nil, fmt.Errorf("postgres: find webhooks: %w", err)
	}
	return out, nil
}

func findWebhook(ctx context.Context, q querier, id int64, lock string) (*licensor.Webhook, error) {
	w, err := sqlstore.ScanWebhook(q.QueryRow(ctx, `SELECT `+sqlstore.WebhookColumns+` FROM webhooks WHERE id = $1 `+lock, id))
	if sqlstore.NoRow(err) {
		return nil, licensor.WebhookNotFound(id)
	}
	return w, err
}

// FindWebhookByID returns a webhook.
func (db *DB) FindWebhookByID(ctx context.Context, id int64) (*licensor.Webhook, error) {
	w, err := findWebhook(ctx, db.pool, id, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: find webhook: %w", err)
	}
	return w, nil
}

// UpdateWebhook applies patch, holding the webhook's row lock from the
// read to the write.
func (db *DB) UpdateWebhook(ctx context.Context, id int64, patch licensor.WebhookPatch, c licensor.Change) (*licensor.Webhook, error) {
	var out *licensor.Webhook
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		w, err := findWebhook(ctx, tx, id, "FOR UPDATE")
		if err != nil {
			return err
		}
		if *w, err = patch.Update(*w, c.Time); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE webhooks SET url = $1, event_types = $2, description = $3, secret = $4, updated_at = $5, paused_at = $6
WHERE id = $7`, w.URL, licensor.FormatEventTypes(w.EventTypes), w.Description, w.Secret, w.UpdatedAt, w.PausedAt, id)
		out = w
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: update webhook: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook; its deliveries go with it (ON DELETE
// CASCADE).
func (db *DB) DeleteWebhook(ctx context.Context, id int64, c licensor.Change) error {
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			return licensor.WebhookNotFound(id)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete webhook: %w", err)
	}
	return nil
}

// FindDeliveries lists a webhook's deliveries, newest first.
func (db *DB) FindDeliveries(ctx context.Context, q licensor.DeliveryQuery) (*licensor.DeliveryPage, error) {
	if _, err := findWebhook(ctx, db.pool, q.WebhookID, ""); err != nil {
		return nil, fmt.Errorf("postgres: find deliveries: %w", err)
	}
	list := sqlfilter.Deliveries(sqlfilter.PostgreSQL, q)
	rows, err := db.pool.Query(ctx, fmt.Sprintf(list.Query, sqlstore.DeliveryColumns), list.Args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: find deliveries: %w", err)
	}
	page := &licensor.DeliveryPage{}
	if page.Deliveries, err = collect(rows, func(s sqlstore.Scanner) (licensor.Delivery, error) { return sqlstore.ScanDelivery(s) }); err != nil {
		return nil, fmt.Errorf("postgres: find deliveries: %w", err)
	}
	list.DeliveryPage(page)
	return page, nil
}

// Redeliver makes a pending delivery due now, or queues a finished one
// again as a new delivery of the same event.
func (db *DB) Redeliver(ctx context.Context, webhookID, deliveryID int64, c licensor.Change) (*licensor.Delivery, error) {
	var out licensor.Delivery
	err := db.writeTx(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := findWebhook(ctx, tx, webhookID, "FOR SHARE"); err != nil {
			return err
		}
		d, err := sqlstore.ScanDelivery(tx.QueryRow(ctx, `SELECT `+sqlstore.DeliveryColumns+` FROM webhook_deliveries
WHERE id = $1 AND webhook_id = $2 FOR UPDATE`, deliveryID, webhookID))
		if sqlstore.NoRow(err) {
			return licensor.DeliveryNotFound(webhookID, deliveryID)
		}
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE seq = $1)`, d.EventSeq).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return licensor.Errorf(licensor.CodeDeliveryNotFound,
				"the event of delivery %d is past the retention period and was pruned", deliveryID)
		}
		if d.State == licensor.DeliveryPending {
			_, err = tx.Exec(ctx, `UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2`, c.Time, d.ID)
			d.NextAttemptAt = c.Time
			out = d
			return err
		}
		out, err = sqlstore.ScanDelivery(tx.QueryRow(ctx, `INSERT INTO webhook_deliveries
	(webhook_id, event_seq, event_type, ordering_key, state, created_at, next_attempt_at)
SELECT webhook_id, event_seq, event_type, ordering_key, 'pending', $1, $1 FROM webhook_deliveries WHERE id = $2
RETURNING `+sqlstore.DeliveryColumns, c.Time, d.ID))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: redeliver: %w", err)
	}
	return &out, nil
}

// DispatchEvents queues the deliveries of new events. Each webhook that is
// behind the feed is locked FOR UPDATE SKIP LOCKED, so that concurrent
// dispatchers (one per instance) share the webhooks and never queue an
// event twice; an idle dispatcher costs one read.
func (db *DB) DispatchEvents(ctx context.Context, now int64, limit int) (int, error) {
	var behind bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks
WHERE cursor < (SELECT seq FROM event_head WHERE id = 1))`).Scan(&behind)
	if err != nil || !behind {
		if err != nil {
			err = fmt.Errorf("postgres: dispatch events: %w", err)
		}
		return 0, err
	}
	queued := 0
	err = db.bookkeepingTx(ctx, func(tx pgx.Tx) error {
		queued = 0
		rows, err := tx.Query(ctx, `SELECT id, cursor, event_types FROM webhooks
WHERE cursor < (SELECT seq FROM event_head WHERE id = 1)
ORDER BY id FOR UPDATE SKIP LOCKED`)
		if err != nil {
			return err
		}
		hooks, err := collect(rows, sqlstore.ScanHook)
		if err != nil || len(hooks) == 0 {
			return err
		}
		// Read after the locks: every position up to this head is
		// committed and visible to the statements that follow.
		var head int64
		if err := tx.QueryRow(ctx, `SELECT seq FROM event_head WHERE id = 1`).Scan(&head); err != nil {
			return err
		}
		for _, h := range hooks {
			ph := sqlfilter.PostgreSQL.Args()
			sel := `SELECT ` + ph.Arg(h.ID) + `::bigint, seq, type, ` + sqlstore.OrderingKey + `, 'pending', ` +
				ph.Arg(now) + `::bigint, ` + ph.Arg(now) + `::bigint`
			conds := sqlfilter.EventConditions(ph, licensor.EventFilter{Types: h.Types})
			conds = append(conds, "seq > "+ph.Arg(h.Cursor), "seq <= "+ph.Arg(head))
			var n int
			var top *int64
			err := tx.QueryRow(ctx, `WITH queued AS (
	INSERT INTO webhook_deliveries (webhook_id, event_seq, event_type, ordering_key, state, created_at, next_attempt_at)
	`+sel+` FROM events WHERE `+strings.Join(conds, " AND ")+` ORDER BY seq LIMIT `+ph.Arg(limit)+`
	RETURNING event_seq)
SELECT count(*), max(event_seq) FROM queued`, ph.Values...).Scan(&n, &top)
			if err != nil {
				return err
			}
			cursor := head
			if n == limit && top != nil {
				cursor = *top
			}
			if _, err := tx.Exec(ctx, `UPDATE webhooks SET cursor = $1 WHERE id = $2`, cursor, h.ID); err != nil {
				return err
			}
			queued += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: dispatch events: %w", err)
	}
	return queued, nil
}

// dueCondition holds for a delivery d that may be attempted at $1:
// pending, due, not leased, and first in line for its ordering key.
const dueCondition = `d.state = 'pending' AND d.next_attempt_at <= $1 AND d.locked_until <= $1
	AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e
		WHERE e.webhook_id = d.webhook_id AND e.ordering_key = d.ordering_key AND e.state = 'pending'
			AND (e.event_seq, e.id) < (d.event_seq, d.id))`

// ClaimDeliveries leases due deliveries for one attempt each: the oldest
// first, within each webhook's room. When the oldest are of webhooks that
// have no room (a receiver that hangs, with a backlog), it looks for each
// other webhook's oldest on its own. Instances claim at once without
// waiting for each other (FOR UPDATE SKIP LOCKED); a row another instance
// claimed meanwhile is re-checked on its committed version and left out,
// its lease being in the future.
func (db *DB) ClaimDeliveries(ctx context.Context, c licensor.DeliveryClaim) ([]licensor.DeliveryJob, error) {
	if c.Limit <= 0 {
		return nil, nil
	}
	var due bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks w WHERE w.paused_at IS NULL AND EXISTS (
	SELECT 1 FROM webhook_deliveries d
	WHERE d.webhook_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= $1 AND d.locked_until <= $1))`, c.Now).Scan(&due)
	if err != nil || !due {
		if err != nil {
			err = fmt.Errorf("postgres: claim deliveries: %w", err)
		}
		return nil, err
	}
	var jobs []licensor.DeliveryJob
	err = db.bookkeepingTx(ctx, func(tx pgx.Tx) error {
		jobs = nil
		rows, err := tx.Query(ctx, `SELECT id FROM webhooks WHERE paused_at IS NOT NULL`)
		if err != nil {
			return err
		}
		paused, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		c.Paused = map[int64]bool{}
		for _, id := range paused {
			c.Paused[id] = true
		}
		rows, err = tx.Query(ctx, `SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d
WHERE `+dueCondition+`
ORDER BY d.next_attempt_at, d.id
LIMIT $2
FOR UPDATE SKIP LOCKED`, c.Now, c.Limit)
		if err != nil {
			return err
		}
		oldest, err := collect(rows, sqlstore.ScanDue)
		if err != nil {
			return err
		}
		taken := map[int64]int{}
		picks := c.Take(oldest, taken)
		if len(oldest) == c.Limit && len(picks) < c.Limit {
			// The oldest are of webhooks without room (or paused): look
			// further for the active others, after the last one seen, each
			// in its own pending deliveries.
			last, want := oldest[len(oldest)-1], c.Limit-len(picks)
			usedBy := maps.Clone(taken)
			for id, n := range c.InFlight {
				usedBy[id] += n
			}
			var hooks []int64
			var used []int32
			for id, n := range usedBy {
				hooks, used = append(hooks, id), append(used, int32(n))
			}
			rows, err := tx.Query(ctx, `SELECT x.id, x.webhook_id, x.next_attempt_at
FROM webhooks w LEFT JOIN unnest($5::bigint[], $6::int[]) AS u(webhook_id, used) ON u.webhook_id = w.id
CROSS JOIN LATERAL (
	SELECT d.id, d.webhook_id, d.next_attempt_at FROM webhook_deliveries d
	WHERE d.webhook_id = w.id AND `+dueCondition+` AND (d.next_attempt_at, d.id) > ($2, $3)
	ORDER BY d.next_attempt_at, d.id
	LIMIT CASE WHEN $4 > 0 THEN greatest(least($4 - coalesce(u.used, 0), $7), 0) ELSE $7 END
	FOR UPDATE OF d SKIP LOCKED) x
WHERE w.paused_at IS NULL`, c.Now, last.NextAttemptAt, last.ID, c.PerWebhook, hooks, used, want)
			if err != nil {
				return err
			}
			more, err := collect(rows, sqlstore.ScanDue)
			if err != nil {
				return err
			}
			picks = c.Oldest(append(picks, more...))
		}
		if len(picks) == 0 {
			return nil
		}
		ids := make([]int64, len(picks))
		for i, p := range picks {
			ids[i] = p.ID
		}
		rows, err = tx.Query(ctx, `UPDATE webhook_deliveries d SET locked_until = $2, attempts = d.attempts + 1
WHERE d.id = ANY($3) AND d.state = 'pending' AND d.locked_until <= $1
RETURNING d.id`, c.Now, c.LeaseUntil, ids)
		if err != nil {
			return err
		}
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+sqlfilter.Qualify("d.", sqlstore.DeliveryColumns)+`, w.url, w.secret, `+sqlfilter.Qualify("e.", sqlstore.EventColumns)+`
FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.seq = d.event_seq
WHERE d.id = ANY($1)
ORDER BY d.next_attempt_at, d.id`, ids)
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
		return nil, fmt.Errorf("postgres: claim deliveries: %w", err)
	}
	return jobs, nil
}

// bookkeepingTx runs fn in a write transaction that does not wait for its
// commit to reach the disk (synchronous_commit off). It is for the
// delivery bookkeeping only, where losing the last commits in a database
// crash costs nothing but a repeated attempt: a queued delivery whose
// commit is lost is queued again from the webhook's cursor (the events
// themselves are committed durably by their writers), and a lost claim or
// outcome means the delivery is attempted again — deliveries are at least
// once anyway. The WAL is written in order, so a later durable commit
// makes these durable too. It takes the disk flush out of the path from a
// commit to its delivery. It runs outside the group-commit lanes (a
// group's commit must stay durable), in a transaction of its own.
func (db *DB) bookkeepingTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		return fn(tx)
	})
}

// CompleteDelivery records an attempt's outcome, if the attempt's claim
// still stands (same attempt number, still pending).
func (db *DB) CompleteDelivery(ctx context.Context, o licensor.DeliveryOutcome) error {
	state, next, status, deliveredAt := sqlstore.OutcomeValues(o)
	err := db.bookkeepingTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET state = $1, next_attempt_at = $2, locked_until = 0,
	last_attempt_at = $3, last_status = $4, last_error = $5, delivered_at = $6
WHERE id = $7 AND attempts = $8 AND state = 'pending'`,
			state, next, o.At, status, o.Error, deliveredAt, o.ID, o.Attempt)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: complete delivery: %w", err)
	}
	return nil
}
