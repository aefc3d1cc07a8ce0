package faulttest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	kills      = 20   // kill -9 per engine
	batchItems = 1000 // items per batch_create: the default maximum
	loaders    = 2    // clients sending batches back to back
)

// sentBatch is one batch_create sent to a server that was then killed.
type sentBatch struct {
	prefix   string // order ids are prefix-0000 ...; prefix is 9 characters
	body     []byte
	idemKey  string
	answered bool // a 201 came back before the kill
}

// TestKillDuringBatches kills the server with SIGKILL while clients send
// 1000-item batch_create calls back to back, 20 times on each engine. After
// every restart each batch must exist entirely or not at all, every
// answered batch entirely; a retry of an unanswered batch under its
// Idempotency-Key replays the write or runs it afresh, never writes twice;
// and SQLite's integrity check passes.
func TestKillDuringBatches(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		srv := startServer(t, appName(db, "fault-kill-00"))
		product := createProduct(t, srv, key)
		var pg *sql.DB // to look at PostgreSQL directly; SQLite is checked by sqlitecheck
		if e.name == "postgres" {
			pg = openSQL(t, db)
		}

		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 0))
		t.Logf("seed %d", seed)

		// One batch, timed, sets the range of kill delays.
		start := time.Now()
		mustCall(t, 201, "POST", srv.url+base+"/licenses/batch_create", key, batchBody("calibrate", product, batchItems), nil)
		one := time.Since(start)

		var (
			all                                      []*sentBatch
			inFlightKills, answered, committed, lost int
			replayed, fresh, stillHeld               int
		)
		for k := range kills {
			var (
				mu    sync.Mutex
				batch []*sentBatch
				wg    sync.WaitGroup
			)
			ctx, cancel := context.WithCancel(context.Background())
			bodySent := make(chan struct{}, 64)
			for c := range loaders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; ctx.Err() == nil; n++ {
						prefix := fmt.Sprintf("k%02dc%dn%03d", k, c, n)
						b := &sentBatch{prefix: prefix, body: batchBody(prefix, product, batchItems), idemKey: "kill-" + prefix}
						r := callReader(ctx, "POST", srv.url+base+"/licenses/batch_create", key, &signalReader{b: b.body, done: bodySent}, map[string]string{"Idempotency-Key": b.idemKey})
						if r.err != nil && errors.Is(r.err, syscall.ECONNREFUSED) {
							return // never reached the server
						}
						mu.Lock()
						batch = append(batch, b)
						mu.Unlock()
						if r.err != nil {
							return // in flight at the kill
						}
						if r.status != 201 {
							t.Errorf("batch %s: %s", prefix, r)
							return
						}
						b.answered = true
					}
				}()
			}
			// Kill at a random moment while the server works on a batch
			// it has received: after the m-th body is sent, within the
			// time two batches take.
			for range 1 + rng.IntN(3) {
				<-bodySent
			}
			time.Sleep(time.Duration(rng.Int64N(int64(2 * one))))
			srv.kill()
			cancel()
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			// A PostgreSQL backend of the killed server may still run the
			// statements it had received, a COMMIT among them: the outcome
			// is known once it is gone.
			waitBackendsGone(t, e, pg, fmt.Sprintf("fault-kill-%02d", k))

			srv = startServer(t, appName(db, fmt.Sprintf("fault-kill-%02d", k+1)))
			counts := countBatches(t, e, db, pg)
			inDoubt := 0
			for _, b := range batch {
				n := counts[b.prefix]
				switch {
				case n != 0 && n != batchItems:
					t.Fatalf("kill %d: batch %s has %d of %d licenses after restart", k, b.prefix, n, batchItems)
				case b.answered && n == 0:
					t.Fatalf("kill %d: batch %s was answered 201 but is gone after restart", k, b.prefix)
				case b.answered:
					answered++
					continue
				}
				inDoubt++
				if n == batchItems {
					committed++
				} else {
					lost++
				}
				// Retry under the same Idempotency-Key.
				r := call(context.Background(), "POST", srv.url+base+"/licenses/batch_create", key, b.body, map[string]string{"Idempotency-Key": b.idemKey})
				switch {
				case r.err != nil:
					t.Fatalf("retry of %s: %v", b.prefix, r.err)
				case r.status == 201 && n == batchItems:
					if r.header.Get("Idempotent-Replayed") != "true" || len(licenseIDs(t, r)) != batchItems {
						t.Fatalf("retry of committed batch %s was not a replay of it: %s", b.prefix, r.header)
					}
					replayed++
				case r.status == 201:
					if r.header.Get("Idempotent-Replayed") == "true" {
						t.Fatalf("retry of lost batch %s replayed a response whose write is not there", b.prefix)
					}
					fresh++
				case r.status == 409 && slices.Equal(r.codes(), []string{"IDEMPOTENCY_KEY_IN_FLIGHT"}) && n == 0:
					// The claim survived the kill, its write did not; the key
					// is taken over once the claim is stale (2 minutes).
					stillHeld++
				default:
					t.Fatalf("retry of batch %s (%d licenses after restart): %s", b.prefix, n, r)
				}
			}
			if inDoubt > 0 {
				inFlightKills++
			}
			all = append(all, batch...)
		}

		// Last look: every batch ever sent is whole or absent.
		counts := countBatches(t, e, db, pg)
		partial := 0
		for _, b := range all {
			if n := counts[b.prefix]; n != 0 && n != batchItems {
				partial++
				t.Errorf("batch %s has %d of %d licenses", b.prefix, n, batchItems)
			}
		}
		srv.stop(t)
		t.Logf("%s: %d/%d kills with a batch in flight; %d batches of %d (one takes %v): %d answered, %d in flight at a kill (%d committed, %d not), %d partial; retries: %d replayed, %d run afresh, %d still held (409)",
			e.name, inFlightKills, kills, len(all), batchItems, one.Round(time.Millisecond), answered, committed+lost, committed, lost, partial, replayed, fresh, stillHeld)
	})
}

// countBatches counts the live licenses per 9-character order id prefix
// and, on SQLite, runs the integrity and foreign key checks.
func countBatches(t *testing.T, e engine, db string, pg *sql.DB) map[string]int {
	t.Helper()
	if e.name == "sqlite" {
		return checkSQLite(t, db)
	}
	rows, err := pg.Query(`SELECT substr(order_id, 1, 9), count(*) FROM licenses
WHERE deleted_at IS NULL AND order_id IS NOT NULL GROUP BY substr(order_id, 1, 9)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var prefix string
		var n int
		if err := rows.Scan(&prefix, &n); err != nil {
			t.Fatal(err)
		}
		out[prefix] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// licenseIDs returns the ids of a batch_create response.
func licenseIDs(t *testing.T, r result) []string {
	t.Helper()
	var doc struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("batch response: %v", err)
	}
	ids := make([]string, len(doc.Data))
	for i, d := range doc.Data {
		ids[i] = d.ID
	}
	return ids
}

// signalReader is a request body that says on done when it has been read
// to the end.
type signalReader struct {
	b    []byte
	off  int
	done chan<- struct{}
}

func (r *signalReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		if r.done != nil {
			select {
			case r.done <- struct{}{}:
			default:
			}
			r.done = nil
		}
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

// appName names the PostgreSQL connections of a server (application_name),
// so that a test can tell when they are gone; SQLite paths are unchanged.
func appName(db, name string) string {
	if !strings.HasPrefix(db, "postgres://") {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return db
	}
	q := u.Query()
	q.Set("application_name", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// waitBackendsGone waits until PostgreSQL has no backend left with the
// application_name; it does nothing on SQLite.
func waitBackendsGone(t *testing.T, e engine, db *sql.DB, name string) {
	t.Helper()
	if e.name != "postgres" {
		return
	}
	var n int
	gone := waitFor(60*time.Second, func() bool {
		err := db.QueryRow(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, name).Scan(&n)
		return err == nil && n == 0
	})
	if !gone {
		t.Fatalf("%d PostgreSQL backends of a killed server (%s) are still there after 60s", n, name)
	}
}
