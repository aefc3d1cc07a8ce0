package sqlite

import (
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/licensor/licensor"
)

// Unavailable classifies an error of any store method: the errors that mean
// the database cannot be used right now become licensor.CodeUnavailable
// (503); others are returned unchanged. The API applies it to every
// internal error, so read paths need not wrap each call.
func (db *DB) Unavailable(err error) error { return unavailable(err) }

// unavailable marks the errors that mean the database file cannot be used
// right now as licensor.CodeUnavailable (503), keeping the driver's error
// in the chain for the log; any other error is returned unchanged. They
// are: a full disk (SQLITE_FULL), a read-only file or file system
// (SQLITE_READONLY), a failing disk (SQLITE_IOERR), a file that cannot be
// opened (SQLITE_CANTOPEN) and a write lock held by another process past
// every retry (SQLITE_BUSY). Once the cause goes away, the next request
// succeeds: SQLite rolls back the failed transaction and the connection
// stays usable.
func unavailable(err error) error {
	var le *licensor.Error
	var se *sqlite.Error
	if err == nil || errors.As(err, &le) || !errors.As(err, &se) {
		return err
	}
	var detail string
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		detail = "the database's disk is full; retry later"
	case sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM:
		detail = "the database's storage cannot be written; retry later"
	case sqlite3.SQLITE_BUSY:
		detail = "the database is busy; retry later"
	default:
		return err
	}
	return fmt.Errorf("%w: %w", licensor.Errorf(licensor.CodeUnavailable, "%s", detail), err)
}
