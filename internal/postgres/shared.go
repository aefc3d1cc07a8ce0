package postgres

import (
	"context"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/sqlfilter"
	"github.com/licensor/licensor/internal/sqlstore"
)

// shared is a querier as the operations written once for both engines
// (internal/sqlstore) use it: the pool, or a write transaction (tx set).
// Their statements are written with ? placeholders, rebound to $n once
// per text.
type shared struct {
	q  querier
	tx *wtx
}

// stx returns the write transaction tx as internal/sqlstore uses it.
func stx(tx *wtx) shared { return shared{q: tx, tx: tx} }

var rebound sync.Map // statement text with ? → with $n

func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query // built with sqlfilter's $n placeholders
	}
	if r, ok := rebound.Load(query); ok {
		return r.(string)
	}
	r := sqlfilter.PostgreSQL.Rebind(query)
	rebound.Store(query, r)
	return r
}

func (shared) Dialect() sqlfilter.Dialect { return sqlfilter.PostgreSQL }

func (s shared) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Scanner {
	return s.q.QueryRow(ctx, rebind(query), args...)
}

func (s shared) Query(ctx context.Context, query string, args []any, each func(sqlstore.Scanner) error) error {
	rows, err := s.q.Query(ctx, rebind(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	return sqlstore.Each(rows, each)
}

func (s shared) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := s.q.Exec(ctx, rebind(query), args...)
	return tag.RowsAffected(), err
}

func (s shared) AppendEvents(_ context.Context, events []licensor.Event) error {
	s.tx.appendEvents(events)
	return nil
}

func (s shared) StoreWithWrite(ctx context.Context, c licensor.Change, written licensor.Written) error {
	return storeWithWrite(ctx, s.tx, c, written)
}

// engineOf is this engine as sqlstore.Shared uses it: writes of more than
// soloThreshold rows run in a transaction of their own (bigWriteTx).
type engineOf struct{ db *DB }

func (engineOf) Name() string               { return "postgres" }
func (e engineOf) Reader() sqlstore.Querier { return shared{q: e.db.pool} }
func (e engineOf) Scans() sqlstore.Querier  { return shared{q: e.db.pool} }
func (e engineOf) ReadSnapshot(ctx context.Context, f func(sqlstore.Querier) error) error {
	return e.db.readTx(ctx, func(tx pgx.Tx) error { return f(shared{q: tx}) })
}
func (engineOf) Conflict(err error) error         { return interpretError(err) }
func (engineOf) Unavailable(err error) error      { return unavailable(err) }
func (e engineOf) Committed() *groupcommit.Signal { return &e.db.committed }
func (e engineOf) Write(ctx context.Context, rows int, f func(context.Context, sqlstore.Tx) error) error {
	write := e.db.writeTx
	if rows > soloThreshold || rows == sqlstore.Many {
		write = e.db.bigWriteTx
	}
	return write(ctx, func(ctx context.Context, tx *wtx) error { return f(ctx, stx(tx)) })
}
