// Package sqlstore holds what the two SQL engines, internal/sqlite and
// internal/postgres, share beyond the list queries of internal/sqlfilter.
// Their tables have the same columns, so a row reads into a domain value
// the same way on both (rows.go); the state of an idempotency key means
// the same on both (idempotency.go); and both embed numbered, forward-only
// migrations (migrate.go).
//
// Whole Store methods are written here once when their statements and
// logic are the same on both engines (Shared, store.go: products, the
// license lists, bulk jobs, the renewer's pass, a renewal's cancellation).
// They run over an Engine: its reader, its write transactions (Tx) and its
// error classification; their statements use ? placeholders, which the
// PostgreSQL engine rebinds to $n, and the locking clause is chosen by
// dialect (ForUpdate: none on SQLite, whose writers are serialized).
//
// What differs stays in each engine: the driver (database/sql and pgx),
// the SQL dialect where it is more than placeholders (locking reads,
// SKIP LOCKED, arrays and unnest), the transactions (one writer with
// savepoints on SQLite, group-commit lanes on PostgreSQL) and the
// classification of the driver's errors.
package sqlstore

import (
	"database/sql"
	"errors"
)

// Scanner is a row to read: *sql.Row and *sql.Rows on SQLite, pgx.Row and
// pgx.Rows on PostgreSQL.
type Scanner interface{ Scan(dest ...any) error }

// Deref turns a scanner of *T into a scanner of T, for lists.
func Deref[T any](scan func(Scanner) (*T, error)) func(Scanner) (T, error) {
	return func(s Scanner) (T, error) {
		p, err := scan(s)
		if err != nil {
			var zero T
			return zero, err
		}
		return *p, nil
	}
}

// NoRow reports whether err says that a query found no row: sql.ErrNoRows
// on SQLite, pgx.ErrNoRows (which wraps it) on PostgreSQL.
func NoRow(err error) bool { return errors.Is(err, sql.ErrNoRows) }
