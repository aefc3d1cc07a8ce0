package faulttest

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// recurringProduct creates a recurring monthly product renewed by the
// server (renewal_mode automatic).
func recurringProduct(t *testing.T, s *server, key string) string {
	t.Helper()
	r := mustCall(t, 201, "POST", s.url+base+"/products", key,
		[]byte(`{"data":{"type":"Product","attributes":{"title":"Monthly","price_currency_amount":999,"price_currency_iso4217":"EUR",
"license_period":"P1M","recurring":true,"renewal_mode":"automatic"}}}`), nil)
	return idOf(t, r)
}

func idOf(t *testing.T, r result) string {
	t.Helper()
	const marker = `"id":"`
	body := string(r.body)
	i := strings.Index(body, marker)
	if i < 0 {
		t.Fatalf("no id in %s", r)
	}
	body = body[i+len(marker):]
	return body[:strings.IndexByte(body, '"')]
}

// periodBatch is a batch_create document of n licenses of product with the
// given period, order ids prefix-0000 ...
func periodBatch(prefix, product string, n int, start, stop func(i int) int64) []byte {
	var b strings.Builder
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"License","attributes":{"order_id":"%s-%04d","start_date":%d,"stop_date":%d},"relationships":{"user":{"data":{"type":"User","id":"u%d"}},"product":{"data":{"type":"Product","id":%q}}}}`,
			prefix, i, start(i), stop(i), i, product)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// renewalAudit checks the renewals in the database directly, at unix time
// now: nothing twice (no license with two live successors, none renewed
// by two license.renewed events, a license.created for each successor),
// nothing lost (no pending renewal due before now - slack), every RENEWED
// license names a live successor that names it back and starts at its
// stop. It returns the number of successors.
func renewalAudit(t *testing.T, db *sql.DB, now int64) int {
	t.Helper()
	one := func(what, q string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return n
	}
	checks := []struct{ what, q string }{
		{"licenses with two live successors", `SELECT count(*) FROM (SELECT renewed_from FROM licenses
WHERE renewed_from IS NOT NULL AND deleted_at IS NULL GROUP BY renewed_from HAVING count(*) > 1) x`},
		{"licenses with two license.renewed events", `SELECT count(*) FROM (SELECT license_id FROM events
WHERE type = 'license.renewed' GROUP BY license_id HAVING count(*) > 1) x`},
		{"successors without one license.created", `SELECT count(*) FROM licenses s
LEFT JOIN (SELECT license_id, count(*) AS n FROM events WHERE type = 'license.created' GROUP BY license_id) e ON e.license_id = s.id
WHERE s.renewed_from IS NOT NULL AND COALESCE(e.n, 0) <> 1`},
		{"RENEWED licenses without their successor", `SELECT count(*) FROM licenses p WHERE p.renewal = 'RENEWED' AND NOT EXISTS
(SELECT 1 FROM licenses s WHERE s.id = p.renewed_by AND s.renewed_from = p.id AND s.start_date = p.stop_date AND s.deleted_at IS NULL)`},
		{"successors whose predecessor is not RENEWED by them", `SELECT count(*) FROM licenses s WHERE s.renewed_from IS NOT NULL AND NOT EXISTS
(SELECT 1 FROM licenses p WHERE p.id = s.renewed_from AND p.renewal = 'RENEWED' AND p.renewed_by = s.id)`},
		{"successors without license.renewed", `SELECT count(*) FROM licenses s WHERE s.renewed_from IS NOT NULL AND NOT EXISTS
(SELECT 1 FROM events e WHERE e.type = 'license.renewed' AND e.license_id = s.renewed_from)`},
		{"pending renewals left behind", fmt.Sprintf(`SELECT count(*) FROM licenses
WHERE renewal = 'PENDING' AND deleted_at IS NULL AND expiry_date <= %d`, now)},
	}
	for _, c := range checks {
		if n := one(c.what, c.q); n != 0 {
			t.Errorf("%s: %d", c.what, n)
		}
	}
	return one("successors", `SELECT count(*) FROM licenses WHERE renewed_from IS NOT NULL`)
}

// TestTwoInstancesRenewal runs two server processes in automatic mode on
// one database while 300 recurring licenses reach their expiry_date within
// a few seconds: each is renewed exactly once (one successor, one
// license.renewed), by whichever instance got there first.
func TestTwoInstancesRenewal(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		a := startServer(t, db, "--renewal-mode", "notify") // the product says automatic
		startServer(t, db, "--renewal-mode", "notify")
		product := recurringProduct(t, a, key)
		base0 := time.Now().Unix() + 10 // after the batch is in, even on a loaded machine
		const n = 300
		mustCall(t, 201, "POST", a.url+base+"/licenses/batch_create", key,
			periodBatch("twoinst", product, n, func(int) int64 { return base0 - 3600 }, func(i int) int64 { return base0 + int64(i%4) }), nil)
		conn := openSQL(t, db)
		count := func() int {
			var c int
			if err := conn.QueryRow(`SELECT count(*) FROM licenses WHERE renewed_from IS NOT NULL`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		if !waitFor(90*time.Second, func() bool { return count() >= n }) {
			t.Fatalf("%d of %d renewed after 90 s", count(), n)
		}
		time.Sleep(time.Second) // a second chance for a duplicate to appear
		if got := renewalAudit(t, conn, time.Now().Unix()-1); got != n {
			t.Errorf("%d successors, want %d", got, n)
		}
	})
}

// TestKillDuringRenewalBacklog makes a backlog of renewals (10k recurring
// licenses whose expiry_date passed while no instance ran its workers, as
// during a downtime) and works it off with two instances while one of them
// is killed with SIGKILL again and again, then both: at the end every
// missed period is made exactly once, from its predecessor's stop, with
// its events; nothing is made twice, nothing is lost. (The catch-up of
// several periods per license is the lifecycle and storetest Backlog
// tests'; here each license misses one.)
func TestKillDuringRenewalBacklog(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		name := func(i int) string { return appName(db, fmt.Sprintf("fault-renew-%02d", i)) }
		// The downtime: licenses made by an instance without workers,
		// each expiring a few seconds after its creation.
		seedSrv := startServer(t, db, "--workers=false")
		product := recurringProduct(t, seedSrv, key)
		const roots, batch = 10000, 1000
		for chunk := range roots / batch {
			now := time.Now().Unix()
			mustCall(t, 201, "POST", seedSrv.url+base+"/licenses/batch_create", key,
				periodBatch(fmt.Sprintf("back%05d", chunk), product, batch,
					func(int) int64 { return now - 3600 }, func(i int) int64 { return now + 20 + int64(i%3) }), nil)
		}
		seedSrv.stop(t)
		// Every expiry_date passes (each is 20 s after its batch was
		// sent: a license created after its expiry_date is not renewed,
		// and a batch may take seconds on a loaded machine).
		time.Sleep(time.Until(time.Unix(time.Now().Unix()+23, 0)))
		conn := openSQL(t, db)
		successors := func() int {
			var c int
			if err := conn.QueryRow(`SELECT count(*) FROM licenses WHERE renewed_from IS NOT NULL`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}

		seed := uint64(time.Now().UnixNano())
		rng := rand.New(rand.NewPCG(seed, 0))
		t.Logf("seed %d", seed)
		steady := startServer(t, name(1), "--renewal-mode", "automatic")
		victim := startServer(t, name(2), "--renewal-mode", "automatic")
		kills := 0
		for i := 3; i < 9; i++ {
			time.Sleep(time.Duration(50+rng.IntN(300)) * time.Millisecond)
			before := successors()
			victim.kill()
			kills++
			waitBackendsGone(t, e, conn, name(i-1))
			t.Logf("kill %d: %d successors made", kills, before)
			victim = startServer(t, name(i), "--renewal-mode", "automatic")
		}
		// Then both, once.
		before := successors()
		steady.kill()
		victim.kill()
		kills += 2
		t.Logf("kill both: %d successors made", before)
		steady = startServer(t, name(20), "--renewal-mode", "automatic")
		other := startServer(t, name(21), "--renewal-mode", "automatic")
		if !waitFor(5*time.Minute, func() bool { return successors() >= roots }) {
			t.Fatalf("%d of %d renewals made after 5 minutes", successors(), roots)
		}
		time.Sleep(time.Second)
		total := renewalAudit(t, conn, time.Now().Unix()-2)
		if total != roots {
			t.Errorf("%d successors, want %d", total, roots)
		}
		if e.name == "sqlite" {
			steady.stop(t)
			other.stop(t)
			checkSQLite(t, db)
		}
		t.Logf("%s: %d renewals made across %d kills (-9), nothing twice or lost", e.name, total, kills)
	})
}
