package sqlstore

import (
	"context"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/sqlfilter"
)

// Querier runs the statements written once here on either engine: a
// reader, or a write transaction. The statements are written with ?
// placeholders; the PostgreSQL engine's Querier rebinds them to $n
// (sqlfilter.Dialect.Rebind), and statements built with a Dialect's Args
// pass through unchanged.
type Querier interface {
	Dialect() sqlfilter.Dialect
	QueryRow(ctx context.Context, query string, args ...any) Scanner
	// Query calls each for every row, in order.
	Query(ctx context.Context, query string, args []any, each func(Scanner) error) error
	// Exec returns the number of rows the statement changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
}

// Tx is a write transaction of either engine. What differs in how the
// engines make a change safe is the locking clause: on SQLite writers are
// serialized, so a row read in the transaction is the one the change is
// made from; on PostgreSQL a row the change depends on is read FOR UPDATE
// (ForUpdate).
type Tx interface {
	Querier
	// AppendEvents records the events of the transaction's changes.
	AppendEvents(ctx context.Context, events []licensor.Event) error
	// StoreWithWrite stores the response of c's idempotency key with the
	// write (StoreWithWrite).
	StoreWithWrite(ctx context.Context, c licensor.Change, written licensor.Written) error
}

// ForUpdate is the clause that locks the rows a read in q returns until
// q's transaction ends: " FOR UPDATE" on PostgreSQL, "" on SQLite.
func ForUpdate(q Querier) string {
	if q.Dialect() == sqlfilter.PostgreSQL {
		return " FOR UPDATE"
	}
	return ""
}

// Collect returns the rows of a query in q, read with scan.
func Collect[T any](ctx context.Context, q Querier, scan func(Scanner) (T, error), query string, args ...any) ([]T, error) {
	out := []T{}
	err := q.Query(ctx, query, args, func(s Scanner) error {
		v, err := scan(s)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Rows is a query's result on either engine (*sql.Rows, pgx.Rows); its
// caller closes it.
type Rows interface {
	Scanner
	Next() bool
	Err() error
}

// Each calls each for every row of rows, in order (an engine's
// Querier.Query).
func Each(rows Rows, each func(Scanner) error) error {
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// ScanID reads a row of one id.
func ScanID(s Scanner) (id int64, err error) { return id, s.Scan(&id) }
