// Package postgres is the PostgreSQL storage engine: a licensor.Store
// through pgx v5 and its connection pool (pgxpool), with hand-written SQL.
//
// # Why pgx directly rather than database/sql
//
// pgx's own interface is used rather than database/sql over pgx's stdlib
// adapter: pgx.Batch pipelines the inserts of a CreateLicenses batch (one
// round trip for a thousand licenses instead of one per license),
// arrays bind natively (id = ANY($1), unnest), and *pgconn.PgError gives
// the SQLSTATE and constraint name of a failure without another wrapping
// layer. The SQL and the shape of the code stay parallel to
// internal/sqlite, and both packages pass internal/storetest. What the two
// would write alike is written once (see "What is shared" in
// internal/sqlite): the list queries in internal/sqlfilter, the rows,
// idempotency-key states and migrations' loading in internal/sqlstore, and
// the Store methods sqlstore.Shared implements over this engine (products,
// license lists, bulk jobs, the renewer's pass; shared.go), where the rows
// a change depends on are read FOR UPDATE.
// What stays here is PostgreSQL's own: the group-commit lanes and their
// pipelined statements, the locking reads (FOR UPDATE, FOR SHARE, SKIP
// LOCKED) that order concurrent instances, arrays and unnest instead of
// statement loops, and the SQLSTATE classification of errors.
//
// # Concurrency
//
// Writes run in READ COMMITTED transactions (shared by concurrent writes:
// see Group commit) and serialize on row locks rather than on isolation
// level:
//
//   - CreateLicenses locks its products FOR SHARE (in id order), so a
//     concurrent DeleteProduct (FOR UPDATE) either commits first, and the
//     products are then not found, or waits, and then counts the licenses
//     just created. A locking read that waited re-checks deleted_at IS NULL
//     on the row version that committed, which is the re-check after
//     locking.
//   - UpdateProduct and DeleteProduct hold FOR UPDATE from the ETag check
//     to the write.
//   - The partial unique index on licenses(order_id) WHERE deleted_at IS
//     NULL guarantees that a live order id is unique. Licenses are inserted
//     with ON CONFLICT (order_id) WHERE deleted_at IS NULL DO NOTHING, which
//     waits for a concurrent insert of the same order id and skips the row
//     only if that insert commits; the holder is then read (each statement
//     sees what committed before it) and reported as ORDER_ID_CONFLICT.
//     Concurrent creates of one order id thus yield one license and
//     conflicts naming it, never an error.
//   - CreateLicenses draws its ids from the identity sequence in draft
//     order, then inserts in order_id order: a batch waiting for another's
//     insert of an order id holds only smaller ones, so overlapping batches
//     cannot deadlock, and ids still follow the draft order.
//   - Idempotency keys: a claim inserts the key with ON CONFLICT DO NOTHING
//     (waiting for a concurrent claim) or reads it FOR UPDATE (waiting for
//     a write that is storing its response), so two requests never both
//     hold a key. A write under a key stores its response in its own
//     transaction, after checking that its request still holds the key.
//   - A transaction aborted as a deadlock victim or by a serialization
//     failure (40P01, 40001) is retried a few times (a write unit alone:
//     see Group commit).
//
// A page read with a count runs both in one REPEATABLE READ, read-only
// transaction, so the total agrees with the page.
//
// # Events in commit order
//
// Every write that changes a license or a product records its events in
// its own transaction (the transactional outbox behind the change feed and
// the webhooks). A sequence cannot number them: a transaction that draws
// a later value may commit first, and a reader that moved past it would
// never see the earlier one. So positions come from the single row of
// event_head, which each writing transaction updates in its last
// statement before COMMIT — the same statement inserts its events
// (queueEvents), sent in the COMMIT's round trip. The row lock makes
// writers take their positions one after the other, each only once the
// previous one has committed or rolled back (which undoes its increment),
// so positions are gap-free and follow commit order, and every position up
// to a committed head belongs to a committed transaction. Events reads the
// head, then the events up to it, in a later statement: a reader following
// the feed sees every event exactly once. The lock is held for one
// statement and the commit; writers run concurrently until then.
//
// Webhook deliveries are queued per webhook from its cursor in the feed,
// each webhook locked FOR UPDATE SKIP LOCKED so that instances share them
// and never queue an event twice (DispatchEvents). Attempts are claimed
// with FOR UPDATE SKIP LOCKED and a lease (locked_until); only the first
// pending delivery of a license per webhook is due, which keeps a
// license's events in order across instances. An outcome is recorded only
// if its claim still stands (same attempt number). ExpireLicenses locks
// due rows FOR UPDATE SKIP LOCKED and re-checks status = 'ACTIVE', so each
// license expires once whatever the number of instances.
//
// # Group commit
//
// Because of the event_head lock, transactions that write events commit
// one after the other, each after the previous one's WAL flush. So
// concurrent writes share transactions instead: every write (writeTx) is
// a unit of a group-commit lane (internal/groupcommit). A lane takes the
// units queued while its previous group ran — at most 32, so that the
// subtransactions stay within PostgreSQL's subxid cache of 64 — and runs
// them one after the other in one READ COMMITTED transaction, each under
// a SAVEPOINT when there are several. A unit that fails (a 409, a missing
// product, a statement error of any class: refused bytes, a constraint,
// a timeout, an error the unit swallowed) rolls back to its savepoint
// alone and its caller gets its own error; the others commit together, with one event_head update and one
// WAL flush, and are answered after the COMMIT: a nil error still means
// the write is on disk. A unit aborted as a deadlock victim (40P01, a
// rollback of its subtransaction only) is retried in a transaction of its
// own, outside the lanes (a group holds the locks of all its units, taken
// in no global order, so groups racing for the same order ids can
// deadlock; a lone transaction takes its order ids in order). Several lanes (Options.WriteLanes, 2 by default) run groups at
// once, each on a connection of the pool, so that one builds its group
// while another commits, and a long unit (a batch of a thousand) holds up
// only its own lane (a write goes to the lane with the fewest in flight);
// the event_head lock orders their commits like those of any other
// writer, on this instance or another. A batch of more than 32 licenses
// (created or deleted) is a group by itself: it runs in a transaction of
// its own, outside the lanes (bigWriteTx), with the same statements.
//
// Round trips are saved where the protocol allows: BEGIN, SAVEPOINT and
// RELEASE SAVEPOINT are not sent on their own but in the pipeline of the
// unit's next statement (wtx), and the events and the COMMIT go together.
// A unit's statements run with its caller's context values but not its
// cancellation (a statement cancelled mid-way would close the connection
// and fail its neighbours). Units of one group see each other's writes
// before the commit, as later transactions would after it (two creates
// of one order id in a group: the second gets ORDER_ID_CONFLICT naming
// the first); a unit that failed after others succeeded is answered after
// their commit, with the commit's error if it failed. The webhook
// bookkeeping (bookkeepingTx, synchronous_commit off) runs outside the
// lanes, in transactions of its own.
//
// A single license (CreateLicenses of one draft without an idempotency
// key) whose product was read before costs its unit no round trip at all:
// the product is cached (productCache), the license is resolved from it,
// and the group inserts all such licenses at its commit in one statement
// (flushCreates) that locks their products FOR SHARE, keeps only the
// licenses whose product is live and still has the cached version, and
// skips the order ids a live license holds; the holders are read in the
// same round trip (ORDER_ID_CONFLICT naming them), and a license whose
// product changed or went runs again on the general path: the product
// read FOR SHARE and the new ids in one round trip, the inserts in
// another. So a group of single creates is two round trips: the inserts,
// then the events with the COMMIT. That statement runs under a savepoint
// of its own (flushCreatesIsolated): should it fail (bytes the server
// refuses in one license, a deadlock with another group over an order
// id), it is rolled back to that savepoint and the creates are inserted
// one by one, each under the savepoint, so that the one that fails gets
// its own error (a deadlock victim runs again on the general path) and
// the others commit with the group.
//
// The pool holds DefaultMaxConns connections (4 per CPU, at least 8 and at
// most 32) unless Options.MaxConns or the URL's pool_max_conns says
// otherwise: the lanes take one each while a group runs, the reads one
// per query.
//
// # Schema
//
// Numbered, forward-only migrations are embedded from migrations/ and
// applied by Migrate, each in its own transaction with its row in
// schema_migrations; the numbering is the same as in internal/sqlite.
// Instances starting together take turns on a session advisory lock keyed
// by the search_path (so tests in separate schemas do not wait for each
// other). A search_path given in the URL ("?search_path=t_abc") is sent as
// a run-time parameter; Migrate creates that schema if it is missing.
//
// Times are unix seconds in BIGINT columns; ids are identity columns.
// Nothing is ever removed: deleting sets deleted_at (a tombstone), and
// every read and index is restricted to deleted_at IS NULL.
//
// # Behaving like SQLite
//
// Both engines must answer every query identically: product titles are
// matched with strpos() on a lower-cased copy computed in Go
// (strings.ToLower, not SQL lower() or ILIKE, whose case folding depends
// on the database's locale), the title column is COLLATE "C" so titles sort
// bytewise as on SQLite, and the nullable stop and expiry dates sort
// through COALESCE(date, 9223372036854775807) because the engines disagree
// on where NULLs sort; the same expression makes the keyset cursor a plain
// integer and is what the expression indexes are built on.
package postgres
