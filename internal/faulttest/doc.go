// Package faulttest holds licensor's scripted fault scenarios: tests that
// build the licensor binary, run it as an operator would, and break things
// around it. Each test fails when the property it names breaks:
//
//   - TestKillDuringBatches: kill -9 in the middle of large batch_create
//     calls, 20 times on each engine; every batch exists entirely or not at
//     all, retries under the same Idempotency-Key never write twice, and
//     SQLite's integrity check passes.
//   - TestPostgresRestart: PostgreSQL stopped under load; requests get 503
//     UNAVAILABLE quickly, /readyz says 503, and service resumes by itself.
//     It stops the shared PostgreSQL, so it runs only when
//     LICENSOR_FAULT_PG_RESTART=1 (CI runs it alone).
//   - TestTwoInstancesIdempotencyKey: two servers on one database, 50
//     concurrent POSTs with one Idempotency-Key; one write, the rest replays
//     or 409.
//   - TestRevocationAcrossInstances: a key revoked with the CLI is refused by
//     two running instances within one second.
//   - TestSQLiteDiskFull: the SQLite file's disk fills up; writes get 503
//     UNAVAILABLE and a log line, reads go on, nothing is corrupted, and
//     writes resume when space returns.
//   - TestAbusiveClients: slow clients, huge headers, huge bodies and
//     thousands of idle connections while a normal client keeps being served.
//   - TestNoLeaks: no secret in any log line or response, and no SQL, stack
//     trace or file path in any response, through bad input and a failing
//     database.
//
// The package has no code of its own; it is only tests.
package faulttest
