package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// stmtCache keeps the readers' prepared statements by SQL text, so that
// a query is parsed and planned once per reader connection instead of at
// every call (sqlite3_prepare was a fifth of the server's CPU on
// GetLicenseById). database/sql prepares a statement again by itself on
// each connection it runs on. The dynamic queries (license and product
// lists) depend only on the shape of the filter, so there are few texts;
// past maxReaderStmts the cache stops adding and a query is prepared at
// each use, as before.
type stmtCache struct {
	db *sql.DB

	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

const maxReaderStmts = 256

// get returns the prepared statement of query, or nil when it is not
// cached and prepare is false, or it cannot be cached (full, or it does
// not prepare: the caller then runs the query unprepared and gets its
// error). Preparing takes a connection of the pool: a caller that holds
// one (a read transaction) must not prepare, or the last free connection
// could be waited for by its own holders (in memory there is only one).
func (c *stmtCache) get(ctx context.Context, query string, prepare bool) *sql.Stmt {
	c.mu.RLock()
	s, ok := c.stmts[query]
	full := len(c.stmts) >= maxReaderStmts
	c.mu.RUnlock()
	if ok || !prepare || full {
		return s
	}
	// Prepared without the caller's cancellation (the statement outlives
	// the call), and without holding the lock (it waits for a connection).
	s, err := c.db.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok {
		s.Close() // another caller was faster
		return prev
	}
	if len(c.stmts) >= maxReaderStmts {
		s.Close()
		return nil
	}
	if c.stmts == nil {
		c.stmts = map[string]*sql.Stmt{}
	}
	c.stmts[query] = s
	return s
}

func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for q, s := range c.stmts {
		err = errors.Join(err, s.Close())
		delete(c.stmts, q)
	}
	return err
}

// pointQuery is the context of a lookup by key: ctx without its
// cancellation. Such a query takes microseconds; watching a cancellable
// context costs more (database/sql and the driver each start a goroutine
// per query to interrupt it). A caller that gives up gets its answer a few
// microseconds late.
func pointQuery(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// rq is the querier of reads: on a reader connection, or on tx (a read
// transaction), through the readers' prepared statements.
type rq struct {
	c  *stmtCache
	tx *sql.Tx // nil: the reader pool
}

// rq returns the querier of reads on the reader pool.
func (db *DB) rq() rq { return rq{c: &db.reads} }

// rtx returns the querier of reads in tx, a transaction of the reader
// pool.
func (db *DB) rtx(tx *sql.Tx) rq { return rq{c: &db.reads, tx: tx} }

func (q rq) stmt(ctx context.Context, query string) *sql.Stmt {
	s := q.c.get(ctx, query, q.tx == nil)
	if s != nil && q.tx != nil {
		s = q.tx.StmtContext(ctx, s)
	}
	return s
}

func (q rq) querier() querier {
	if q.tx != nil {
		return q.tx
	}
	return q.c.db
}

func (q rq) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryRowContext(ctx, args...)
	}
	return q.querier().QueryRowContext(ctx, query, args...)
}

func (q rq) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.QueryContext(ctx, args...)
	}
	return q.querier().QueryContext(ctx, query, args...)
}

func (q rq) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if s := q.stmt(ctx, query); s != nil {
		return s.ExecContext(ctx, args...)
	}
	return q.querier().ExecContext(ctx, query, args...)
}
