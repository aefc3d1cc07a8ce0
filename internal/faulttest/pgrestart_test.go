package faulttest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor/internal/testdb"
)

// Bounds of the PostgreSQL restart scenario. They are generous on purpose:
// the property is "no hang", not a latency target.
const (
	maxOutageAnswer = 5 * time.Second  // a request while PostgreSQL is down is answered within this
	maxResume       = 30 * time.Second // service is back within this after PostgreSQL accepts connections
)

// TestPostgresRestart stops PostgreSQL while clients read and write, then
// starts it again. While it is down every request must be answered quickly
// with 503 UNAVAILABLE and /readyz must say 503; once it is back, service
// must resume without touching the server.
//
// It stops the shared PostgreSQL server, which breaks every other test
// using it, so it runs only when LICENSOR_FAULT_PG_RESTART=1; CI runs it
// alone: go test -run TestPostgresRestart -count=1 ./internal/faulttest/
func TestPostgresRestart(t *testing.T) {
	if os.Getenv("LICENSOR_FAULT_PG_RESTART") != "1" {
		t.Skip("stops the shared PostgreSQL: set LICENSOR_FAULT_PG_RESTART=1 and run it alone")
	}
	raw := postgresURL(t, true)
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("no PostgreSQL cluster in /etc/postgresql: %v", err)
	}
	version, cluster := versions[0].Name(), "main"
	if c := os.Getenv("LICENSOR_FAULT_PG_CLUSTER"); c != "" {
		cluster = c // another cluster of the same version, for trying the test out
	}
	pgctl := func(action string) error {
		out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, action).CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_ctlcluster %s %s %s: %v\n%s", version, cluster, action, err, out)
		}
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "5432"
	}
	pgReady := func() bool {
		return exec.Command("pg_isready", "-q", "-h", host, "-p", port).Run() == nil
	}

	db := testdb.PostgresURL(t)
	key := createKey(t, db, "bss", "write")
	srv := startServer(t, db)
	product := createProduct(t, srv, key)
	// Registered after testdb.PostgresURL's cleanup, so it runs first: the
	// schema can be dropped only once PostgreSQL is up again.
	t.Cleanup(func() {
		if !pgReady() {
			if err := pgctl("start"); err != nil {
				t.Errorf("restarting PostgreSQL: %v", err)
			}
		}
		if !waitFor(60*time.Second, pgReady) {
			t.Errorf("PostgreSQL is not accepting connections after the test")
		}
	})

	// Load: clients alternating a list and a create, recording every answer.
	type answer struct {
		at time.Time
		r  result
	}
	var (
		mu      sync.Mutex
		answers []answer
		wg      sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ctx.Err() == nil; n++ {
				var r result
				if n%2 == 0 {
					r = call(ctx, "GET", srv.url+base+"/licenses?page[size]=10", key, nil, nil)
				} else {
					order := fmt.Sprintf("pg-%d-%d", c, n)
					r = call(ctx, "POST", srv.url+base+"/licenses", key,
						[]byte(`{"data":`+licenseJSON("u1", product, order)+`}`), nil)
				}
				if ctx.Err() != nil {
					return
				}
				mu.Lock()
				answers = append(answers, answer{at: time.Now(), r: r})
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	ready := func() int {
		r := call(context.Background(), "GET", srv.url+"/readyz", "", nil, nil)
		return r.status
	}

	time.Sleep(time.Second)
	if s := ready(); s != 200 {
		t.Fatalf("/readyz before the outage: %d", s)
	}
	stopAt := time.Now()
	if err := pgctl("stop"); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	var readyz503 time.Duration
	if !waitFor(10*time.Second, func() bool { return ready() == 503 }) {
		t.Errorf("/readyz did not report 503 within 10s of stopping PostgreSQL")
	} else {
		readyz503 = time.Since(stoppedAt)
	}
	time.Sleep(3 * time.Second) // the outage, under load
	if err := pgctl("start"); err != nil {
		t.Fatal(err)
	}
	if !waitFor(60*time.Second, pgReady) {
		t.Fatal("PostgreSQL did not come back")
	}
	backAt := time.Now()
	resumed := waitFor(maxResume, func() bool {
		if ready() != 200 {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		// Two successful answers in a row from after PostgreSQL was back.
		ok := 0
		for i := len(answers) - 1; i >= 0 && answers[i].at.After(backAt); i-- {
			if s := answers[i].r.status; s != 200 && s != 201 {
				return false
			}
			ok++
		}
		return ok >= 2
	})
	resumedAfter := time.Since(backAt)
	time.Sleep(500 * time.Millisecond)
	cancel()
	wg.Wait()
	if !resumed {
		t.Fatalf("service did not resume within %v of PostgreSQL accepting connections", maxResume)
	}

	// Every answer during the outage is a quick 503 UNAVAILABLE.
	var (
		during, unavailable int
		bad, slow           int
		first503            time.Duration = -1
		slowest             time.Duration
	)
	for _, a := range answers {
		if a.at.Before(stopAt) {
			if a.r.err != nil || (a.r.status != 200 && a.r.status != 201) {
				t.Errorf("before the outage: %s", a.r)
			}
			continue
		}
		if a.r.err != nil {
			t.Errorf("request failed at the transport level: %v", a.r.err)
			continue
		}
		if a.at.After(backAt) {
			continue // requests started before PostgreSQL was back may still fail
		}
		during++
		slowest = max(slowest, a.r.elapsed)
		switch {
		case a.r.status == 200 || a.r.status == 201:
		case a.r.status == 503 && slices.Equal(a.r.codes(), []string{"UNAVAILABLE"}):
			unavailable++
			if first503 < 0 {
				first503 = a.at.Sub(stopAt)
			}
		default:
			if bad++; bad <= 5 {
				t.Errorf("during the outage: %s, want 503 UNAVAILABLE", a.r)
			}
		}
		if a.r.elapsed > maxOutageAnswer {
			if slow++; slow <= 5 {
				t.Errorf("a request during the outage took %v (more than %v)", a.r.elapsed, maxOutageAnswer)
			}
		}
	}
	if bad > 0 || slow > 0 {
		t.Errorf("%d wrong answers and %d slow answers of %d during the outage", bad, slow, during)
	}
	if unavailable == 0 {
		t.Errorf("no request got 503 during the outage (%d answered)", during)
	}
	var sample string
	for _, rec := range srv.logs.records("request") {
		if rec["status"] == float64(503) && rec["level"] == "ERROR" {
			sample, _ = rec["err"].(string)
			break
		}
	}
	if sample == "" {
		t.Errorf("no 503 with its cause in the access log")
	}
	t.Logf("a 503 in the log: %s", sample)
	t.Logf("PostgreSQL stopped in %v; %d requests during the outage, %d got 503 UNAVAILABLE, the first %v after the stop began, slowest answer %v; /readyz 503 %v after the stop; service resumed %v after PostgreSQL accepted connections",
		stoppedAt.Sub(stopAt).Round(time.Millisecond), during, unavailable, first503.Round(time.Millisecond), slowest.Round(time.Millisecond),
		readyz503.Round(time.Millisecond), resumedAfter.Round(time.Millisecond))
}
