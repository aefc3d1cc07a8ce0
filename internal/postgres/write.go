package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
)

// Group commit: see "Group commit" in doc.go.

const (
	// maxGroup bounds the units of one group. Each unit runs in a
	// subtransaction of its own; a transaction with more than 64
	// subtransaction ids overflows the backend's subxid cache, after
	// which every snapshot taken anywhere in the database gets slower.
	maxGroup = 32
	// defaultWriteLanes is the number of lanes (groups in flight at once)
	// when Options.WriteLanes is 0.
	defaultWriteLanes = 2
	// savepoint is the name of every unit's savepoint (the lane never
	// nests them).
	savepoint = "unit"
)

// wtx is a write unit's handle on its group's transaction. The statements
// the lane asks for (BEGIN, SAVEPOINT, RELEASE) are not sent at once: they
// wait in pending and go out in the same round trip as the next statement
// (pipelined) or the COMMIT. Units do not write their events themselves:
// appendEvents adds them to the group's, and the group writes them all
// with the COMMIT, in its last statement.
type wtx struct {
	conn    *pgxpool.Conn
	pending []string         // statements to send before the next one
	began   bool             // BEGIN was sent: the transaction is open on the server
	sent    bool             // the current unit sent a statement since its savepoint
	events  []licensor.Event // the events of the group's units so far
	mark    int              // len(events) at the current unit's savepoint
	creates []*deferredCreate
	cmark   int // len(creates) at the current unit's savepoint
}

// deferCreate queues the INSERT of a single license resolved from a cached
// product version, to be sent with the group's others in one statement at
// the commit (see flushCreates). The unit itself sends nothing.
func (t *wtx) deferCreate(d *deferredCreate) {
	d.l.ID, d.err, d.retry = 0, nil, false
	t.creates = append(t.creates, d)
}

// appendEvents records events to be written, with the next positions of
// the feed, by the group's last statement before COMMIT (see doc.go). A
// unit rolled back to its savepoint loses its events with its writes.
func (t *wtx) appendEvents(events []licensor.Event) {
	t.events = append(t.events, events...)
}

// Exec runs one statement, after the pending ones.
func (t *wtx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.sent, t.began = true, true
	if len(t.pending) == 0 {
		return t.conn.Exec(ctx, sql, args...)
	}
	if len(args) == 0 {
		// pgx sends a statement without arguments in the simple protocol,
		// which takes several at once; the tag is the last one's.
		stmts := strings.Join(t.pending, "; ") + "; " + sql
		t.pending = t.pending[:0]
		return t.conn.Exec(ctx, stmts)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br := t.SendBatch(ctx, &b)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// Query runs one query, after the pending statements.
func (t *wtx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	t.sent, t.began = true, true
	if len(t.pending) == 0 {
		return t.conn.Query(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	br := t.SendBatch(ctx, &b)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// QueryRow runs one query, after the pending statements.
func (t *wtx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	t.sent, t.began = true, true
	if len(t.pending) == 0 {
		return t.conn.QueryRow(ctx, sql, args...)
	}
	var b pgx.Batch
	b.Queue(sql, args...)
	return batchRow{br: t.SendBatch(ctx, &b)}
}

// SendBatch sends the pending statements and b's in one round trip; the
// results are b's.
func (t *wtx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	t.sent, t.began = true, true
	n := len(t.pending)
	if n == 0 {
		return t.conn.SendBatch(ctx, b)
	}
	all := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, n+len(b.QueuedQueries))}
	for _, s := range t.pending {
		all.Queue(s)
	}
	all.QueuedQueries = append(all.QueuedQueries, b.QueuedQueries...)
	t.pending = t.pending[:0]
	br := t.conn.SendBatch(ctx, all)
	for range n {
		if _, err := br.Exec(); err != nil {
			break // the batch's later results all return this error
		}
	}
	return br
}

// batchRows are the rows of a batch's last query; closing them closes the
// batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error // of closing br
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is the row of a batch's last query; Scan closes the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dest ...any) error {
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// engine runs the groups of a lane on a pooled connection
// (groupcommit.Engine).
type engine struct{ db *DB }

func (e engine) Begin(ctx context.Context) (*wtx, error) {
	actx, cancel := context.WithTimeout(ctx, acquireTimeout)
	conn, err := e.db.pool.Acquire(actx)
	cancel()
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("no database connection within %v: %w", acquireTimeout, err)
		}
		return nil, err
	}
	return &wtx{conn: conn, pending: []string{"BEGIN ISOLATION LEVEL READ COMMITTED"}}, nil
}

func (e engine) Savepoint(_ context.Context, t *wtx) error {
	t.pending = append(t.pending, "SAVEPOINT "+savepoint)
	t.sent, t.mark, t.cmark = false, len(t.events), len(t.creates)
	return nil
}

func (e engine) Release(_ context.Context, t *wtx) error {
	if t.sent && t.conn.Conn().PgConn().TxStatus() == 'E' {
		// The unit swallowed a statement error: releasing its savepoint
		// would fail the next unit's statements instead.
		return errors.New("the unit left the transaction in error")
	}
	if !t.sent {
		// The unit sent nothing: forget its savepoint.
		t.pending = t.pending[:len(t.pending)-1]
		return nil
	}
	t.pending = append(t.pending, "RELEASE SAVEPOINT "+savepoint)
	return nil
}

func (e engine) RollbackTo(ctx context.Context, t *wtx) error {
	t.events = t.events[:t.mark]
	clear(t.creates[t.cmark:])
	t.creates = t.creates[:t.cmark]
	if !t.sent {
		t.pending = t.pending[:len(t.pending)-1]
		return nil
	}
	undo := []string{"ROLLBACK TO SAVEPOINT " + savepoint, "RELEASE SAVEPOINT " + savepoint}
	if t.conn.Conn().PgConn().TxStatus() == 'T' {
		// The transaction is not in error: the undo can wait for the
		// next statement. (In a failed transaction the server parses
		// nothing but the ROLLBACK TO, so it is sent now.)
		t.pending = append(t.pending, undo...)
		return nil
	}
	_, err := t.conn.Exec(ctx, strings.Join(undo, "; "))
	return err
}

// Commit writes the group's deferred creates (one round trip), then its
// events and the COMMIT (another).
func (e engine) Commit(ctx context.Context, t *wtx) error {
	if len(t.creates) > 0 {
		if err := flushCreatesIsolated(ctx, t); err != nil {
			return fmt.Errorf("commit: insert licenses: %w", err)
		}
	}
	if !t.began {
		// Nothing was sent: there is no transaction to commit.
		t.conn.Release()
		t.conn = nil
		return nil
	}
	if n := len(t.pending); n > 0 && t.pending[n-1] == "RELEASE SAVEPOINT "+savepoint {
		t.pending = t.pending[:n-1] // COMMIT releases it
	}
	var b pgx.Batch
	if len(t.events) > 0 {
		queueEvents(&b, t.events)
	}
	b.Queue("COMMIT")
	br := t.SendBatch(ctx, &b)
	var err error
	if len(t.events) > 0 {
		_, err = br.Exec()
	}
	if err == nil {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			// COMMIT of a transaction in error rolls back.
			err = pgx.ErrTxCommitRollback
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	t.conn.Release()
	t.conn = nil
	return nil
}

func (e engine) Rollback(ctx context.Context, t *wtx) error {
	if t.conn == nil {
		return nil
	}
	defer func() { t.conn.Release(); t.conn = nil }()
	if pc := t.conn.Conn().PgConn(); !t.began || pc.IsClosed() || pc.TxStatus() == 'I' {
		return nil
	}
	// The pool destroys a connection released in a transaction; rolling
	// back keeps it.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := t.conn.Exec(rctx, "ROLLBACK")
	return err
}

// createsSavepoint is the savepoint of a group's deferred creates.
const createsSavepoint = "creates"

// flushCreatesIsolated runs flushCreates under a savepoint, so that a
// statement error caused by one create (bytes the server refuses, a
// constraint, a timeout, a deadlock) cannot fail the group: the savepoint
// is rolled back and each create is then inserted alone under it, and the
// one that fails gets its own error (or, for a deadlock or a serialization
// failure, runs again on the general path). Only an error that leaves the
// transaction unusable (a lost connection) is the group's.
func flushCreatesIsolated(ctx context.Context, t *wtx) error {
	t.pending = append(t.pending, "SAVEPOINT "+createsSavepoint)
	events := len(t.events)
	err := flushCreates(ctx, t)
	if err == nil {
		return nil
	}
	if !isServerError(err) {
		return err
	}
	t.events = t.events[:events]
	if rerr := rollbackToCreates(ctx, t); rerr != nil {
		return errors.Join(err, rerr)
	}
	if len(t.creates) == 1 {
		failCreate(t.creates[0], err)
		return nil
	}
	all := t.creates
	defer func() { t.creates = all }()
	for _, d := range all {
		t.creates = []*deferredCreate{d}
		t.pending = append(t.pending, "SAVEPOINT "+createsSavepoint)
		err := flushCreates(ctx, t)
		if err == nil {
			events = len(t.events)
			continue
		}
		t.events = t.events[:events]
		if rerr := rollbackToCreates(ctx, t); rerr != nil {
			return errors.Join(err, rerr)
		}
		failCreate(d, err)
	}
	return nil
}

// failCreate gives a deferred create the error of its own insert: a
// deadlock or a serialization failure sends it to the general path again.
func failCreate(d *deferredCreate, err error) {
	d.l.ID = 0
	if retryable(err) {
		d.retry = true
	} else {
		d.err = err
	}
}

// isServerError reports whether err is an error the server answered (the
// connection and transaction remain usable after a rollback to savepoint).
func isServerError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// rollbackToCreates undoes a failed flushCreates to its savepoint, now.
func rollbackToCreates(ctx context.Context, t *wtx) error {
	t.pending = t.pending[:0]
	if t.conn.Conn().PgConn().IsClosed() {
		return errors.New("the connection was lost")
	}
	_, err := t.conn.Exec(ctx, "ROLLBACK TO SAVEPOINT "+createsSavepoint+"; RELEASE SAVEPOINT "+createsSavepoint)
	return err
}

// deferredCreate is a single license created through wtx.deferCreate. After
// the commit, either l has its ID, or err says why it was not created
// (ORDER_ID_CONFLICT), or retry says that the product changed or went and
// the create must run again on the general path.
type deferredCreate struct {
	l       licensor.License // resolved from the product
	version int64            // the product's version it was resolved from
	c       licensor.Change  // for its event
	err     error
	retry   bool
}

// flushCreates inserts the group's deferred creates in one statement and
// reads the holders of their order ids in the same round trip. The
// statement locks the products FOR SHARE (in id order) and inserts only
// the licenses whose product is live and still has the version they were
// resolved from, in order_id order, skipping the order ids a live license
// holds (ON CONFLICT DO NOTHING waits for a concurrent insert of the same
// order id). The ids are drawn in the statement, so that each returned
// one names its create.
func flushCreates(ctx context.Context, t *wtx) error {
	n := len(t.creates)
	users, statuses := make([]string, n), make([]string, n)
	products, versions, starts, purchases, createdAt := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	stops, expiries, prices := make([]*int64, n), make([]*int64, n), make([]*int64, n)
	orders, currencies, methods, renewals := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	recurring := make([]bool, n)
	var orderIDs []string
	for i, d := range t.creates {
		l := &d.l
		users[i], statuses[i], products[i], versions[i] = l.UserID, string(l.Status), l.ProductID, d.version
		starts[i], purchases[i], createdAt[i] = l.StartDate, l.PurchaseTimestamp, l.CreatedAt
		stops[i], expiries[i], prices[i] = l.StopDate, l.ExpiryDate, l.PriceAmount
		orders[i], currencies[i], methods[i], recurring[i] = l.OrderID, l.PriceCurrency, l.PaymentMethod, l.Recurring
		if l.Renewal != licensor.RenewalNone {
			renewal := string(l.Renewal)
			renewals[i] = &renewal
		}
		if l.OrderID != nil {
			orderIDs = append(orderIDs, *l.OrderID)
		}
	}
	var b pgx.Batch
	b.Queue(`WITH v AS MATERIALIZED (
	SELECT nextval(pg_get_serial_sequence('licenses', 'id')) AS id, u.*
	FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
		$8::boolean[], $9::bigint[], $10::bigint[], $11::text[], $12::bigint[], $13::text[], $14::bigint[], $15::text[])
		WITH ORDINALITY AS u(user_id, product_id, version, status, start_date, stop_date, order_id,
			recurring, expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at, renewal, ord)
), p AS (
	SELECT id, version FROM products WHERE id = ANY($2::bigint[]) AND deleted_at IS NULL ORDER BY id FOR SHARE
), ins AS (
	INSERT INTO licenses (id, user_id, product_id, status, start_date, stop_date, order_id, recurring,
		expiry_date, price_amount, price_currency, purchase_timestamp, payment_method, created_at, renewal)
	OVERRIDING SYSTEM VALUE
	SELECT v.id, v.user_id, v.product_id, v.status, v.start_date, v.stop_date, v.order_id, v.recurring,
		v.expiry_date, v.price_amount, v.price_currency, v.purchase_timestamp, v.payment_method, v.created_at, v.renewal
	FROM v JOIN p ON p.id = v.product_id AND p.version = v.version
	ORDER BY v.order_id NULLS FIRST
	ON CONFLICT (order_id) WHERE deleted_at IS NULL DO NOTHING
	RETURNING id
)
SELECT v.ord, v.id FROM v JOIN ins ON ins.id = v.id`,
		users, products, versions, statuses, starts, stops, orders, recurring, expiries, prices, currencies,
		purchases, methods, createdAt, renewals)
	if len(orderIDs) > 0 {
		b.Queue(`SELECT order_id, id FROM licenses WHERE order_id = ANY($1) AND deleted_at IS NULL`, orderIDs)
	}
	br := t.SendBatch(ctx, &b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return err
	}
	inserted := make([]int64, n)
	for rows.Next() {
		var ord, id int64
		if err := rows.Scan(&ord, &id); err != nil {
			rows.Close()
			return err
		}
		inserted[ord-1] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	holders := map[string]int64{}
	if len(orderIDs) > 0 {
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var o string
			var id int64
			if err := rows.Scan(&o, &id); err != nil {
				rows.Close()
				return err
			}
			holders[o] = id
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	if err := br.Close(); err != nil {
		return err
	}
	for i, d := range t.creates {
		switch id := inserted[i]; {
		case id != 0:
			d.l.ID = id
			t.events = append(t.events, licensor.LicenseEvent(licensor.EventLicenseCreated, &d.l, d.c))
		case d.l.OrderID != nil && holders[*d.l.OrderID] != 0:
			d.err = licensor.ItemErrors{{Index: 0, Err: licensor.OrderIDConflict(*d.l.OrderID, holders[*d.l.OrderID])}}
		default:
			d.retry = true
		}
	}
	return nil
}

// lanes are the DB's group-commit lanes. A write goes to the lane with the
// fewest writes in flight, so that a long unit (a batch of a thousand)
// holds up only the writes queued behind it in its own lane.
type lanes struct {
	all    []*groupcommit.Lane[*wtx]
	flight []atomic.Int32 // writes submitted to each lane and not yet answered
}

func newLanes(db *DB, n int, onGroup func(groupcommit.GroupInfo)) *lanes {
	ls := &lanes{flight: make([]atomic.Int32, n)}
	for range n {
		ls.all = append(ls.all, groupcommit.New[*wtx](engine{db}, groupcommit.Options{MaxGroup: maxGroup, OnGroup: onGroup}))
	}
	return ls
}

// do runs fn in the least busy lane.
func (ls *lanes) do(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	best := 0
	for i := 1; i < len(ls.all); i++ {
		if ls.flight[i].Load() < ls.flight[best].Load() {
			best = i
		}
	}
	ls.flight[best].Add(1)
	defer ls.flight[best].Add(-1)
	return ls.all[best].Do(ctx, fn)
}

func (ls *lanes) close() {
	for _, l := range ls.all {
		l.Close()
	}
}

// stats sums the lanes' counters.
func (ls *lanes) stats() groupcommit.Stats {
	var s groupcommit.Stats
	for _, l := range ls.all {
		ls := l.Stats()
		s.Groups += ls.Groups
		s.Commits += ls.Commits
		s.Units += ls.Units
		s.Succeeded += ls.Succeeded
		s.MaxGroup = max(s.MaxGroup, ls.MaxGroup)
		s.Queued += ls.Queued
	}
	return s
}

// WriteStats returns the counters of the group commit, summed over the
// lanes: transactions committed, writes run, writes queued, the largest
// group (for metrics). The writes run outside the lanes (batches of more
// than 32, retries after a deadlock) are not counted.
func (db *DB) WriteStats() licensor.WriteStats { return licensor.WriteStats(db.lanes.stats()) }

// Engine returns what the engine offers beyond licensor.Store.
func (db *DB) Engine() licensor.Engine {
	return licensor.Engine{Unavailable: db.Unavailable, PoolStats: db.PoolStats, WriteStats: db.WriteStats}
}

// writeTx runs fn as a unit of a group-commit lane: in a READ COMMITTED
// transaction shared with the other writes queued meanwhile, under a
// savepoint of its own when it has company (see doc.go). fn must use the
// ctx it is given. A unit aborted as a deadlock victim (or whose group
// was) is retried a few times in a transaction of its own, where it takes
// its locks in the order that rules out deadlocks between writers (order
// ids in order); its neighbours are not affected.
func (db *DB) writeTx(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	return db.retry(ctx, func(attempt int) error {
		if attempt == 1 {
			return db.lanes.do(ctx, fn)
		}
		return db.soloTx(ctx, fn)
	})
}

// soloThreshold is the number of items (licenses created or deleted) above
// which a write runs in a transaction of its own rather than in a group: it
// is a group by itself, and it would hold up the small writes queued behind
// it in its lane.
const soloThreshold = maxGroup

// bigWriteTx runs fn in a READ COMMITTED transaction of its own, outside
// the lanes, with the same statements as a unit (the events go with the
// COMMIT); it is for the writes of more than soloThreshold items. A
// transaction aborted as a deadlock victim is retried a few times.
func (db *DB) bigWriteTx(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	return db.retry(ctx, func(int) error { return db.soloTx(ctx, fn) })
}

// soloTx runs fn in a transaction of its own, outside the lanes.
func (db *DB) soloTx(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	e := engine{db}
	t, err := e.Begin(ctx)
	if err != nil {
		return err
	}
	if err = fn(ctx, t); err == nil {
		err = e.Commit(ctx, t)
	}
	if err != nil {
		_ = e.Rollback(context.WithoutCancel(ctx), t)
	}
	return err
}

// retry runs write until it succeeds or fails with an error other than a
// deadlock or a serialization failure, at most five times.
func (db *DB) retry(ctx context.Context, write func(attempt int) error) error {
	for attempt := 1; ; attempt++ {
		err := write(attempt)
		if errors.Is(err, groupcommit.ErrClosed) {
			err = licensor.Errorf(licensor.CodeUnavailable, "the store is closed")
		}
		if err == nil || attempt == 5 || !retryable(err) || ctx.Err() != nil {
			return unavailable(err)
		}
		db.log.Warn("postgres: write aborted, retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, attempt) {
			return unavailable(err)
		}
	}
}
