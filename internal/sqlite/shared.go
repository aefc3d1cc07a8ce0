package sqlite

import (
	"context"
	"database/sql"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// querier is *sql.DB, *sql.Tx, or the prepared statements of the readers
// (rq) or of a write (wq).
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// shared is a querier as the operations written once for both engines
// (internal/sqlstore) use it: a reader (db.rq()) or a write transaction's
// querier (db.wq(tx)), whose prepared statements it goes through.
type shared struct {
	q     querier
	point bool // q is the readers' prepared statements: point reads (pointQuery)
}

// stx returns the write transaction tx as internal/sqlstore uses it.
func (db *DB) stx(tx *sql.Tx) shared { return shared{q: db.wq(tx)} }

func (shared) Dialect() sqlfilter.Dialect { return sqlfilter.SQLite }

func (s shared) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Scanner {
	if s.point {
		ctx = pointQuery(ctx)
	}
	return s.q.QueryRowContext(ctx, query, args...)
}

func (s shared) Query(ctx context.Context, query string, args []any, each func(sqlstore.Scanner) error) error {
	rows, err := s.q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlstore.Each(rows, each)
}

func (s shared) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.q.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s shared) AppendEvents(ctx context.Context, events []licensor.Event) error {
	return appendEvents(ctx, s.q, events)
}

func (s shared) StoreWithWrite(ctx context.Context, c licensor.Change, written licensor.Written) error {
	return storeWithWrite(ctx, s.q, c, written)
}

// engineOf is this engine as sqlstore.Shared uses it.
type engineOf struct{ db *DB }

func (engineOf) Name() string               { return "sqlite" }
func (e engineOf) Reader() sqlstore.Querier { return shared{q: e.db.rq(), point: true} }
func (e engineOf) Scans() sqlstore.Querier  { return shared{q: e.db.read} }
func (e engineOf) ReadSnapshot(ctx context.Context, f func(sqlstore.Querier) error) error {
	return e.db.readTx(ctx, func(tx *sql.Tx) error { return f(shared{q: e.db.rtx(tx)}) })
}
func (engineOf) Conflict(err error) error         { return interpretError(err) }
func (engineOf) Unavailable(err error) error      { return unavailable(err) }
func (e engineOf) Committed() *groupcommit.Signal { return &e.db.committed }
func (e engineOf) Write(ctx context.Context, rows int, f func(context.Context, sqlstore.Tx) error) error {
	if rows == sqlstore.Many {
		rows = aloneAbove + 1
	}
	return e.db.writeTxSized(ctx, rows, func(ctx context.Context, tx *sql.Tx) error { return f(ctx, e.db.stx(tx)) })
}
