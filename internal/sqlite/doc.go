// Package sqlite is the SQLite storage engine: a licensor.Store on one
// database file, through modernc.org/sqlite (pure Go, no cgo) and
// database/sql, with hand-written SQL.
//
// # Connections
//
// SQLite allows one writer at a time per file. A DB therefore holds two
// pools: a writer with a single connection, on which every write runs in a
// BEGIN IMMEDIATE transaction (the DSN's _txlock=immediate), and a pool of
// query_only reader connections. Writes of one process share transactions
// (group commit, internal/groupcommit): one goroutine takes every write
// queued while the previous transaction ran, up to 64, runs each under its
// own SAVEPOINT in one transaction and commits once, so concurrent writes
// share one fsync; a write that fails is rolled back to its savepoint
// alone, and a write returns only after its group's commit. A write of
// more than 16 rows (a batch) runs in a transaction of its own: under a
// savepoint SQLite journals every page it changes (in memory,
// temp_store=MEMORY, instead of a temporary file) and each statement's
// end walks that journal. The writer's page cache is 32 MB, so that a
// batch of 1000 creates does not spill its pages to the WAL mid-way.
// Writers of several processes wait for each other through busy_timeout
// (5 s), and a write that still finds the database busy is retried a few
// times.
//
// BEGIN IMMEDIATE takes the write lock before the first read, so a
// transaction never reads a snapshot that another writer then invalidates
// (no SQLITE_BUSY_SNAPSHOT), and a check followed by a write inside one
// transaction (a product still live, an order id still free, an ETag
// still current) cannot be raced. The journal is WAL, so readers never block the
// writer nor the writer the readers; synchronous=FULL makes every commit
// durable before it returns. Foreign keys are enforced.
//
// Queries are prepared once: the readers' statements are kept by SQL text
// (the list queries have one text per filter shape), and the writer's on
// its connection, so that SQLite does not parse and plan a query at every
// call.
//
// An in-memory database (":memory:") exists only inside its connection, so
// it gets a single read-write connection; tests use files in t.TempDir().
//
// # Schema
//
// Numbered, forward-only migrations are embedded from migrations/ and
// applied by Migrate, each in its own transaction with its row in
// schema_migrations; the numbering is the same as in internal/postgres.
// Times are unix seconds in INTEGER columns; tables are STRICT.
//
// Nothing is ever removed: deleting sets deleted_at (a tombstone kept for
// audit and the change feed), and every read and index is restricted to
// deleted_at IS NULL. The partial unique index on licenses(order_id) makes
// the database, not the code, guarantee that a live order id is unique;
// CreateLicenses inserts with ON CONFLICT ... DO NOTHING and reports the
// holder of a taken order id.
//
// # Idempotency keys
//
// A write made under an Idempotency-Key (licensor.Change.Idempotency)
// renders its response and stores it in the write's own transaction, so
// after a crash either both exist or neither does. The write checks that
// its request still holds the key (pending, same fingerprint); if a stale
// claim was taken over meanwhile, the write fails rather than let one key
// stand for two writes. Claims run in write transactions, so two requests
// never both hold a key.
//
// # Events, webhooks, expiry
//
// Every write that changes a license or a product records its events
// (licensor.Event: the resource as the API shows it, rendered in Go) in
// its own transaction: the transactional outbox behind the change feed and
// the webhooks. An event's position (seq) comes from the single row of
// event_head, updated just before the events are inserted, at the end of
// the transaction; with one writer at a time, positions are gap-free and
// follow commit order. Events reads the head and the page in one read
// transaction.
//
// Webhook deliveries are rows of webhook_deliveries, queued per webhook
// from its cursor in the feed (DispatchEvents) and leased for one attempt
// at a time (ClaimDeliveries): only the first pending delivery of each
// license (ordering_key) per webhook is due, which keeps a license's
// events in order. ExpireLicenses is an UPDATE guarded by status =
// 'ACTIVE'. The idle paths (nothing to queue, nothing due) are answered
// by a reader, without taking the write lock.
//
// # Behaving like PostgreSQL
//
// Both engines must answer every query identically, so the SQL avoids what
// differs between them: product titles are matched with instr() on a
// lower-cased copy computed in Go (strings.ToLower, not SQL lower() or
// LIKE, whose case folding differs), titles sort bytewise (SQLite's BINARY,
// COLLATE "C" on PostgreSQL), and the nullable stop and expiry dates sort
// through COALESCE(date, 9223372036854775807) because the engines disagree
// on where NULLs sort; the same expression makes the keyset cursor a plain
// integer and is what the expression indexes are built on. Lists are keyset
// pages: (key, id) compared as a row value with the cursor, ties broken by
// id in the same direction.
//
// # What is shared with internal/postgres, and what is not
//
// What both engines would otherwise write twice is written once: the list
// queries in internal/sqlfilter (in the dialect's placeholders); the
// columns, row scanning and row values, an idempotency key's state and
// the decision a claim makes on it, the after-commit step and the
// migrations' loading in internal/sqlstore; domain rules (a patch applied
// and validated, a suspension, the not-found errors) in the root package.
// Whole Store methods whose statements and logic are the same on both
// engines (products, the license lists, bulk jobs, the renewer's pass and
// a renewal's cancellation) are sqlstore.Shared's, which DB embeds: they
// run over this engine's reader and write transactions (engineOf, the
// shared querier in shared.go), with ? placeholders (rebound to $n on
// PostgreSQL) and the locking clause by dialect (none here). Each method
// still here keeps what is SQLite's own: the writes run under the single
// writer (writeTx, group commit with savepoints), reads go through the
// readers' prepared statements, SQL is written with ? placeholders and
// without locking clauses (BEGIN IMMEDIATE serializes writers), and
// errors are classified by SQLite's result codes. The methods of the two
// engines that remain therefore still look alike, method by method, where
// only those things differ (API keys, licenses' creation and deletion,
// suspensions, webhooks, the change feed): moving them too would need a
// dialect hook in every statement, for code that differs in its
// transactions and locking more than in its text.
package sqlite
