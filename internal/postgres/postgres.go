package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/groupcommit"
	"github.com/licensor/licensor/internal/sqlstore"
)

// Options configure a DB.
type Options struct {
	// Logger receives operational messages (applied migrations, retried
	// transactions). Nil discards them.
	Logger *slog.Logger
	// Now is the clock for the few writes that carry no licensor.Change
	// (migration records, an API key created without CreatedAt). Nil
	// means time.Now.
	Now func() time.Time
	// MaxConns caps the connection pool; 0 means the URL's pool_max_conns
	// or else DefaultMaxConns.
	MaxConns int32
	// WriteLanes is the number of group-commit lanes, each running one
	// group of writes at a time on a connection of the pool (see doc.go);
	// 0 means 2.
	WriteLanes int
	// OnWriteGroup, if set, is called after each group of a lane with its
	// size, outcome and duration (for metrics). It runs on the lane's
	// goroutine, the lanes' at once: it must be safe for concurrent use,
	// not block, and not use the DB. WriteStats has the cumulative
	// counters.
	OnWriteGroup func(groupcommit.GroupInfo)
}

// DefaultMaxConns is the pool size when neither Options.MaxConns nor the
// URL's pool_max_conns sets one: 4 connections per CPU, at least 8 and at
// most 32. Reads hold a connection for one query each, and every write
// lane one for a group, so the pool must outnumber the lanes by the reads
// that run meanwhile.
func DefaultMaxConns() int32 {
	return int32(min(max(4*runtime.NumCPU(), 8), 32))
}

// DB is a licensor.Store on a PostgreSQL database.
type DB struct {
	// Shared holds the Store methods written once for both engines.
	sqlstore.Shared
	pool *pgxpool.Pool
	log  *slog.Logger
	now  func() time.Time
	// searchPath is the search_path the URL asked for, if any; Migrate
	// creates its first schema when it does not exist.
	searchPath string
	// committed wakes the waiters of EventsCommitted (events.go).
	committed groupcommit.Signal
	// lanes run the writes in groups (write.go).
	lanes *lanes
	// products caches products for CreateLicenses (product.go).
	products productCache
}

var _ licensor.Store = (*DB)(nil)

// Open connects to the database at url (postgres://user@host/db?...).
// Parameters pgx does not know are sent as run-time parameters, so
// "?search_path=t_abc" puts every table in schema t_abc. Open checks that
// the database answers; it does not migrate (call Migrate).
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// The error of ParseConfig may quote the URL, password included.
		return nil, errors.New("postgres: open: the database URL is malformed")
	}
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !setsPoolMaxConns(url):
		cfg.MaxConns = DefaultMaxConns()
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	db := &DB{log: opts.Logger, now: opts.Now, searchPath: cfg.ConnConfig.RuntimeParams["search_path"]}
	db.Shared = sqlstore.Shared{Engine: engineOf{db}}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.now == nil {
		db.now = time.Now
	}
	db.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := db.Ping(ctx); err != nil {
		db.pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	n := opts.WriteLanes
	if n <= 0 {
		n = defaultWriteLanes
	}
	db.lanes = newLanes(db, n, opts.OnWriteGroup)
	return db, nil
}

// setsPoolMaxConns reports whether the URL (or key=value string) sets
// pool_max_conns.
func setsPoolMaxConns(url string) bool {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false
	}
	_, ok := cfg.RuntimeParams["pool_max_conns"]
	return ok
}

// Close waits for the writes in progress, fails the queued ones, and
// closes every connection of the pool.
func (db *DB) Close() error {
	db.lanes.close()
	db.pool.Close()
	return nil
}

// Ping makes a round trip to the database.
func (db *DB) Ping(ctx context.Context) error {
	var one int
	if err := db.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", unavailable(err))
	}
	return nil
}

// inTx runs fn in a transaction and commits it if fn returns nil. A
// transaction the server aborted as a deadlock victim or a serialization
// failure is retried a few times, so fn must be safe to run again.
func (db *DB) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := db.beginTxFunc(ctx, opts, fn)
		if err == nil || attempt == 5 || !retryable(err) || ctx.Err() != nil {
			return unavailable(err)
		}
		db.log.Warn("postgres: transaction aborted, retrying", "attempt", attempt, "err", err)
		if !sleep(ctx, attempt) {
			return unavailable(err)
		}
	}
}

// sleep waits a few random milliseconds, more after each attempt, before
// a retry; it reports false if ctx ended first.
func sleep(ctx context.Context, attempt int) bool {
	t := time.NewTimer(time.Duration(5+rand.IntN(20*attempt)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// readTx runs fn in a read-only REPEATABLE READ transaction: every query
// in fn sees the same snapshot (a page and its count agree).
func (db *DB) readTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return db.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// retryable reports whether err is a deadlock or a serialization failure.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// interpretError turns the database errors a client can act on into
// *licensor.Error and returns every other error unchanged. The details
// never carry SQL or the server's message.
func interpretError(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		switch pe.ConstraintName {
		case "api_keys_name_key":
			return licensor.Errorf(licensor.CodeConflict, "an API key with this name already exists (not revoked)")
		case "api_keys_prefix_key":
			return licensor.Errorf(licensor.CodeConflict, "an API key with this prefix already exists")
		}
		return licensor.Errorf(licensor.CodeConflict, "the resource conflicts with an existing one")
	}
	return err
}

// querier is *pgxpool.Pool or pgx.Tx.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// collect reads every row of rows with scan, and closes rows.
func collect[T any](rows pgx.Rows, scan func(sqlstore.Scanner) (T, error)) ([]T, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (T, error) { return scan(r) })
}

// PoolStats describes the connection pool, for metrics. Waits are the
// acquisitions that found no idle connection.
func (db *DB) PoolStats() []licensor.PoolStats {
	s := db.pool.Stat()
	return []licensor.PoolStats{{Name: "pool", MaxOpen: int(s.MaxConns()), Open: int(s.TotalConns()),
		InUse: int(s.AcquiredConns()), Idle: int(s.IdleConns()), WaitCount: s.EmptyAcquireCount(),
		WaitDuration: s.EmptyAcquireWaitTime().Seconds()}}
}

// Clock returns the database server's clock (clock_timestamp()), for
// operators comparing it with the application's.
func (db *DB) Clock(ctx context.Context) (time.Time, error) {
	var t time.Time
	if err := db.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&t); err != nil {
		return time.Time{}, fmt.Errorf("postgres: clock: %w", unavailable(err))
	}
	return t, nil
}
