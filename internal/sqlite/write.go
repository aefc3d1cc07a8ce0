package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/licensor/licensor"
)

// maxGroup bounds the writes that share one transaction and one commit.
const maxGroup = 64

// writeTx runs fn in a write transaction on the single writer connection
// and commits it if fn returns nil; when writeTx returns nil, fn's work is
// on disk.
//
// Concurrent writes share transactions (group commit, internal/groupcommit):
// the writer takes every write queued while the previous transaction ran
// (up to maxGroup), runs each under its own SAVEPOINT inside one BEGIN
// IMMEDIATE, commits once (one fsync for the group) and then answers each.
// A write that fails is rolled back to its savepoint alone. fn therefore:
//   - must use the ctx it is given (its caller's values, without the
//     cancellation: an interrupted statement would roll back the whole
//     group's transaction) and tx only: never db.read (the same single
//     connection in memory) nor db.writeTx (the writer is busy running fn);
//   - sees the uncommitted writes of the writes before it in its group, as
//     it would have seen them committed had they run alone before it;
//   - must leave its effects outside the database (markStored,
//     db.committed.fire) to its caller, after writeTx returns nil;
//   - may run more than once: when another process holds the write lock
//     longer than the busy timeout, the write is retried a few times.
func (db *DB) writeTx(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) error) error {
	return db.writeTxSized(ctx, 1, fn)
}

// aloneAbove is the size (rows written) above which a write runs in a
// transaction of its own. Under a savepoint SQLite journals every page the
// write changes (the statement journal, in memory: temp_store), and each
// statement's end then walks that journal: a batch of a thousand creates
// inside a savepoint costs quadratic time. Alone it has no savepoint.
const aloneAbove = 16

// writeTxSized is writeTx for a write of about n rows: above aloneAbove it
// does not share its transaction.
func (db *DB) writeTxSized(ctx context.Context, n int, fn func(ctx context.Context, tx *sql.Tx) error) error {
	do := db.lane.Do
	if n > aloneAbove {
		do = db.lane.DoAlone
	}
	for attempt := 1; ; attempt++ {
		err := do(ctx, fn)
		if err == nil || attempt == 5 || !isBusy(err) || ctx.Err() != nil {
			return unavailable(err)
		}
		db.log.Warn("sqlite: database busy, retrying", "attempt", attempt)
		select {
		case <-ctx.Done():
			return unavailable(err)
		case <-time.After(time.Duration(10+rand.IntN(40)) * time.Millisecond):
		}
	}
}

// writeOne runs one statement in a write transaction (writeTx) and
// returns the number of rows it changed.
func (db *DB) writeOne(ctx context.Context, query string, args ...any) (int64, error) {
	return db.countTx(ctx, 1, func(ctx context.Context, tx *sql.Tx) (int64, error) {
		return execCount(ctx, tx, query, args...)
	})
}

// countTx runs fn, a write of about n rows (writeTxSized), and returns
// the number of rows it reports changed.
func (db *DB) countTx(ctx context.Context, n int, fn func(ctx context.Context, tx *sql.Tx) (int64, error)) (int64, error) {
	var count int64
	err := db.writeTxSized(ctx, n, func(ctx context.Context, tx *sql.Tx) error {
		var err error
		count, err = fn(ctx, tx)
		return err
	})
	return count, err
}

// execCount runs one statement in tx and returns the number of rows it
// changed.
func execCount(ctx context.Context, tx *sql.Tx, query string, args ...any) (int64, error) {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// WriteStats returns the counters of the group commit: transactions
// committed, writes run, the largest group (for metrics).
func (db *DB) WriteStats() licensor.WriteStats { return licensor.WriteStats(db.lane.Stats()) }

// Engine returns what the engine offers beyond licensor.Store.
func (db *DB) Engine() licensor.Engine {
	return licensor.Engine{Unavailable: db.Unavailable, PoolStats: db.PoolStats, WriteStats: db.WriteStats}
}

// writer is the groupcommit.Engine of the writer connection. It keeps the
// statements that writes prepare, on the writer connection: a statement
// is prepared on the connection by Begin, while no transaction holds it
// (preparing on the pool inside a write would wait for the connection
// the write holds), and used in later transactions with tx.StmtContext.
// Only the lane goroutine calls its methods and runs the writes.
type writer struct {
	db *sql.DB

	mu       sync.Mutex
	prepared map[string]*sql.Stmt
	wanted   map[string]bool // used inside a transaction, to prepare at the next Begin
	// savepoint, release and rollbackTo are prepared at the first Begin.
	savepoint, release, rollbackTo *sql.Stmt
}

// maxWriterStmts bounds the writer's prepared statements; queries beyond
// are prepared at each use.
const maxWriterStmts = 64

func (w *writer) Begin(ctx context.Context) (*sql.Tx, error) {
	w.prepareWanted(ctx)
	return w.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock)
}

func (w *writer) Savepoint(ctx context.Context, tx *sql.Tx) error {
	_, err := w.exec(ctx, tx, w.savepoint, "SAVEPOINT unit")
	return err
}

func (w *writer) Release(ctx context.Context, tx *sql.Tx) error {
	_, err := w.exec(ctx, tx, w.release, "RELEASE unit")
	return err
}

// RollbackTo undoes the write since its savepoint; ROLLBACK TO keeps the
// savepoint, RELEASE then removes it.
func (w *writer) RollbackTo(ctx context.Context, tx *sql.Tx) error {
	if _, err := w.exec(ctx, tx, w.rollbackTo, "ROLLBACK TO unit"); err != nil {
		return err
	}
	return w.Release(ctx, tx)
}

func (w *writer) Commit(ctx context.Context, tx *sql.Tx) error { return tx.Commit() }

func (w *writer) Rollback(ctx context.Context, tx *sql.Tx) error {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		return err
	}
	return nil
}

func (w *writer) exec(ctx context.Context, tx *sql.Tx, s *sql.Stmt, query string) (sql.Result, error) {
	if s != nil {
		return tx.StmtContext(ctx, s).ExecContext(ctx)
	}
	return tx.ExecContext(ctx, query)
}

// prepareWanted prepares, on the idle writer connection, the savepoint
// statements and the queries writes asked for since the last Begin.
func (w *writer) prepareWanted(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.savepoint == nil {
		w.savepoint, _ = w.db.PrepareContext(ctx, "SAVEPOINT unit")
		w.release, _ = w.db.PrepareContext(ctx, "RELEASE unit")
		w.rollbackTo, _ = w.db.PrepareContext(ctx, "ROLLBACK TO unit")
	}
	for q := range w.wanted {
		delete(w.wanted, q)
		if len(w.prepared) >= maxWriterStmts {
			continue
		}
		s, err := w.db.PrepareContext(ctx, q)
		if err != nil {
			// A table not created yet, say: prepared at each use, as
			// before. The next migration may fix it; a few failed
			// prepares are cheap.
			continue
		}
		if w.prepared == nil {
			w.prepared = map[string]*sql.Stmt{}
		}
		w.prepared[q] = s
	}
}

// stmt returns query as a statement of tx: the writer's prepared one if
// any, else one prepared on tx now (and query is prepared on the writer
// at the next Begin). The statement is closed with tx.
func (w *writer) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	w.mu.Lock()
	s := w.prepared[query]
	if s == nil && len(w.prepared) < maxWriterStmts {
		if w.wanted == nil {
			w.wanted = map[string]bool{}
		}
		w.wanted[query] = true
	}
	w.mu.Unlock()
	if s != nil {
		return tx.StmtContext(ctx, s), nil
	}
	return tx.PrepareContext(ctx, query)
}

// close closes the prepared statements (the lane is closed: no write runs).
func (w *writer) close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var err error
	for _, s := range []*sql.Stmt{w.savepoint, w.release, w.rollbackTo} {
		if s != nil {
			err = errors.Join(err, s.Close())
		}
	}
	for q, s := range w.prepared {
		err = errors.Join(err, s.Close())
		delete(w.prepared, q)
	}
	return err
}

// wq is the querier of a write: the statements of tx, through the
// writer's prepared statements, each made a statement of tx once.
type wq struct {
	w     *writer
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
}

// wq returns the querier of a write in tx.
func (db *DB) wq(tx *sql.Tx) *wq { return &wq{w: db.writer, tx: tx} }

func (q *wq) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := q.stmts[query]; ok {
		return s, nil
	}
	s, err := q.w.stmt(ctx, q.tx, query)
	if err != nil {
		return nil, err
	}
	if q.stmts == nil {
		q.stmts = map[string]*sql.Stmt{}
	}
	q.stmts[query] = s
	return s, nil
}

func (q *wq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	s, err := q.stmt(ctx, query)
	if err != nil {
		return q.tx.QueryRowContext(ctx, query, args...) // fails the same way, as a Row
	}
	return s.QueryRowContext(ctx, args...)
}

func (q *wq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

func (q *wq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := q.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}
