package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Options configure a DB.
type Options struct {
	// Logger receives operational messages (applied migrations). Nil
	// discards them.
	Logger *slog.Logger
	// Now is the clock for the few writes that carry no licensor.Change
	// (migration records, an API key created without CreatedAt). Nil
	// means time.Now.
	Now func() time.Time
	// Readers is the size of the reader pool; 0 means max(4, GOMAXPROCS).
	Readers int
	// OnWriteGroup, if set, is called after each write transaction of the
	// group commit with its size, outcome and duration (for metrics: a
	// histogram of group sizes). It runs on the writer's goroutine: it must
	// not block nor use the DB. WriteStats has the cumulative counters.
	OnWriteGroup func(groupcommit.GroupInfo)
	// MustExist opens an existing database file read-write and fails if
	// the file does not exist, instead of creating it (SQLite's mode=rw).
	// The admin commands open with it so that a mistyped path is an error,
	// not a new empty database.
	MustExist bool
}

// DB is a licensor.Store on one SQLite database file.
type DB struct {
	// Shared holds the Store methods written once for both engines.
	sqlstore.Shared
	write *sql.DB // one connection: every write transaction, BEGIN IMMEDIATE
	read  *sql.DB // several query_only connections; == write for in-memory databases
	// lane runs the write transactions, several writes to a commit
	// (write.go); writer is its engine, with the writer's statements.
	lane   *groupcommit.Lane[*sql.Tx]
	writer *writer
	// reads holds the readers' prepared statements (stmt.go).
	reads stmtCache
	log   *slog.Logger
	now   func() time.Time
	// committed wakes the waiters of EventsCommitted (events.go).
	committed groupcommit.Signal
}

var _ licensor.Store = (*DB)(nil)

// writerCacheSize is the writer's page cache (negative: KiB). A batch of
// 1000 creates dirties more pages than the default 2 MB hold.
const writerCacheSize = "cache_size(-32768)"

// busyTimeout is how long a connection waits for another process's write
// lock before failing with SQLITE_BUSY.
const busyTimeout = 5000 // milliseconds

// Open opens (creating it if needed) the database named by dsn: a file
// path, a "file:" URI, or ":memory:" (a private in-memory database, for
// tests; it gets a single connection). It does not migrate; call Migrate.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	db := &DB{log: opts.Logger, now: opts.Now}
	db.Shared = sqlstore.Shared{Engine: engineOf{db}}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	base, query, memory, err := splitDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if opts.MustExist && !memory {
		query = withParams("", query, "mode", "rw")[1:]
	}

	bt := fmt.Sprintf("busy_timeout(%d)", busyTimeout)
	writerDSN := withParams(base, query,
		"_pragma", bt,
		"_pragma", "foreign_keys(1)",
		"_pragma", "journal_mode(WAL)",
		"_pragma", "synchronous(FULL)",
		// The savepoints of group commit journal the pages they change
		// (the statement journal): in memory, not a temporary file.
		"_pragma", "temp_store(MEMORY)",
		"_pragma", writerCacheSize,
		"_txlock", "immediate")
	db.write, err = sql.Open("sqlite", writerDSN)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	// SQLite allows one writer at a time; queueing writers on one
	// connection in the pool is cheaper and fairer than letting them spin
	// on the file lock. The connection is kept forever (an in-memory
	// database lives as long as its connection).
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	// Connect the writer first: it switches the file to WAL (a persistent
	// setting) before any reader opens it.
	if err := db.write.PingContext(ctx); err != nil {
		db.write.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.writer = &writer{db: db.write}
	db.lane = groupcommit.New[*sql.Tx](db.writer, groupcommit.Options{MaxGroup: maxGroup, OnGroup: opts.OnWriteGroup})
	if memory {
		db.read = db.write
		db.reads.db = db.read
		return db, nil
	}

	reader := withParams(base, query,
		"_pragma", bt,
		"_pragma", "foreign_keys(1)",
		"_pragma", "query_only(1)")
	db.read, err = sql.Open("sqlite", reader)
	if err != nil {
		db.Close() // the lane too
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	n := opts.Readers
	if n <= 0 {
		n = max(4, runtime.GOMAXPROCS(0))
	}
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	db.reads.db = db.read
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	return db, nil
}

// splitDSN returns the "file:" URI of dsn without its query, the query, and
// whether the database lives in memory.
func splitDSN(dsn string) (base, query string, memory bool, err error) {
	if dsn == "" {
		return "", "", false, errors.New("empty database name")
	}
	if dsn == ":memory:" {
		return "file::memory:", "", true, nil
	}
	if strings.HasPrefix(dsn, "file:") {
		base, query, _ = strings.Cut(dsn, "?")
		memory = base == "file::memory:" || strings.Contains("&"+query+"&", "&mode=memory&")
		return base, query, memory, nil
	}
	// A plain path: escape the characters that mean something in a URI.
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(dsn), "", false, nil
}

// withParams appends key/value pairs to a URI's query.
func withParams(base, query string, kv ...string) string {
	var b strings.Builder
	b.WriteString(base)
	b.WriteByte('?')
	b.WriteString(query)
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > len(base)+1 {
			b.WriteByte('&')
		}
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(kv[i+1])
	}
	return b.String()
}

// Close waits for the running write transaction, fails the queued writes,
// and closes every statement and connection.
func (db *DB) Close() error {
	if db.lane != nil {
		db.lane.Close()
	}
	err := errors.Join(db.reads.close(), db.writer.close())
	if db.read != nil && db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	if db.write != nil {
		err = errors.Join(err, db.write.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Ping runs a query on a reader connection.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", unavailable(err))
	}
	return nil
}

// readTx runs fn in a read transaction on a reader connection: every
// query in fn sees the same snapshot.
func (db *DB) readTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return unavailable(err)
	}
	return unavailable(tx.Commit())
}

// collect reads every row of rows with scan and closes rows: database/sql's
// pgx.CollectRows.
func collect[T any](rows *sql.Rows, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// isBusy reports whether err is SQLITE_BUSY (in any extended form).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// interpretError turns the database errors a client can act on into
// *licensor.Error and returns every other error unchanged. The details
// never carry SQL or the driver's message.
func interpretError(err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		// The message names the columns: "UNIQUE constraint failed: api_keys.name".
		msg := se.Error()
		switch {
		case strings.Contains(msg, "api_keys.name"):
			return licensor.Errorf(licensor.CodeConflict, "an API key with this name already exists (not revoked)")
		case strings.Contains(msg, "api_keys.prefix"):
			return licensor.Errorf(licensor.CodeConflict, "an API key with this prefix already exists")
		}
		return licensor.Errorf(licensor.CodeConflict, "the resource conflicts with an existing one")
	}
	return err
}

// PoolStats describes the writer and reader connection pools, for metrics.
func (db *DB) PoolStats() []licensor.PoolStats {
	stat := func(name string, d *sql.DB) licensor.PoolStats {
		s := d.Stats()
		return licensor.PoolStats{Name: name, MaxOpen: s.MaxOpenConnections, Open: s.OpenConnections,
			InUse: s.InUse, Idle: s.Idle, WaitCount: s.WaitCount, WaitDuration: s.WaitDuration.Seconds()}
	}
	if db.read == db.write {
		return []licensor.PoolStats{stat("write", db.write)}
	}
	return []licensor.PoolStats{stat("write", db.write), stat("read", db.read)}
}
