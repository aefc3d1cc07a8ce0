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
	t.sent, t.mark = false, len(t.events)
	return nil
}

func (e engine) Release(_ context.Context, t *wtx) error {
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

// Commit writes the group's events and commits, in one round trip.
func (e engine) Commit(ctx context.Context, t *wtx) error {
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

// lanes are the DB's group-commit lanes; writes take them in turn.
type lanes struct {
	all  []*groupcommit.Lane[*wtx]
	next atomic.Uint32
}

func newLanes(db *DB, n int) *lanes {
	ls := &lanes{}
	for range n {
		ls.all = append(ls.all, groupcommit.New[*wtx](engine{db}, groupcommit.Options{MaxGroup: maxGroup}))
	}
	return ls
}

func (ls *lanes) pick() *groupcommit.Lane[*wtx] {
	return ls.all[int(ls.next.Add(1))%len(ls.all)]
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
	}
	return s
}

// writeTx runs fn as a unit of a group-commit lane: in a READ COMMITTED
// transaction shared with the other writes queued meanwhile, under a
// savepoint of its own when it has company (see doc.go). fn must use the
// ctx it is given. A unit aborted as a deadlock victim is retried a few
// times, each time in a later group; its neighbours are not affected.
func (db *DB) writeTx(ctx context.Context, fn func(ctx context.Context, tx *wtx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.lanes.pick().Do(ctx, fn)
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
