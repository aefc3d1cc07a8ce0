package faulttest

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestRenewalBacklogBench is the benchmark of a renewal backlog: 100k
// recurring licenses whose expiry_date passed while no instance ran its
// workers (a downtime; one missed renewal each, and as many expiries),
// worked off by one
// licensor serve in automatic mode while a BSS keeps sending its own
// traffic. It reports the renewals per second and the BSS's request
// latency during the backlog beside the same traffic against the same
// database without it (a server with --workers=false). It takes minutes,
// so it runs only when asked:
//
//	LICENSOR_BENCH_RENEWAL=1 go test -count=1 -run TestRenewalBacklogBench -v ./internal/faulttest
//
// (LICENSOR_BENCH_RENEWAL=N for N licenses; LICENSOR_POSTGRES_URL adds
// PostgreSQL, LICENSOR_BENCH_ENGINE=sqlite or postgres keeps one;
// LICENSOR_BENCH_RENEWAL_RATE=R passes --renewal-rate R, Inf for no
// throttle, the default otherwise.) The BSS's latency during the backlog
// is also reported in two parts: while the expirer works off its own
// backlog of expiries, and after. Figures are in BENCHMARKS.md.
func TestRenewalBacklogBench(t *testing.T) {
	n := 100_000
	switch v := os.Getenv("LICENSOR_BENCH_RENEWAL"); v {
	case "":
		t.Skip("LICENSOR_BENCH_RENEWAL not set: the renewal backlog benchmark takes minutes")
	case "1":
	default:
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			t.Fatalf("LICENSOR_BENCH_RENEWAL=%q: want 1 or a number of licenses >= 1000", v)
		}
	}
	forEachEngine(t, func(t *testing.T, e engine) {
		if only := os.Getenv("LICENSOR_BENCH_ENGINE"); only != "" && only != e.name {
			t.Skipf("LICENSOR_BENCH_ENGINE=%s", only)
		}
		db := e.newDB(t)
		key := createKey(t, db, "bss", "write")
		idle := startServer(t, db, "--workers=false", "--rate-limit", "0")
		product := recurringProduct(t, idle, key)
		plain := createProduct(t, idle, key) // the BSS's own creates: not recurring
		// Each expires a minute after its batch is sent (a license created
		// after its expiry_date would not be renewed); then wait for the
		// last one.
		seeded := time.Now()
		var last int64
		for chunk := range n / 1000 {
			last = time.Now().Unix() + 60
			mustCall(t, 201, "POST", idle.url+base+"/licenses/batch_create", key,
				periodBatch(fmt.Sprintf("bench%04d", chunk), product, 1000,
					func(int) int64 { return last - 3600 }, func(int) int64 { return last }), nil)
		}
		time.Sleep(time.Until(time.Unix(last+1, 0)))
		t.Logf("%s: seeded %d recurring licenses due for renewal in %v", e.name, n, time.Since(seeded).Round(time.Millisecond))
		conn := openSQL(t, db)
		successors := func() int {
			var c int
			if err := conn.QueryRow(`SELECT count(*) FROM licenses WHERE renewed_from IS NOT NULL`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}

		// The BSS: 4 clients in a closed loop, each request a read of a
		// license or a create of one (one in four).
		var seq atomic.Int64 // order ids of the BSS's creates, across both phases
		bss := func(s *server, stop <-chan struct{}) samples {
			var mu sync.Mutex
			var lat samples
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					var mine samples
					for i := 0; ; i++ {
						select {
						case <-stop:
							mu.Lock()
							lat = append(lat, mine...)
							mu.Unlock()
							return
						default:
						}
						k := seq.Add(1)
						t0 := time.Now()
						var r result
						if i%4 == 3 {
							r = call(context.Background(), "POST", s.url+base+"/licenses", key,
								[]byte(`{"data":`+licenseJSON(fmt.Sprintf("bss%d", w), plain, fmt.Sprintf("bss-%s-%d", e.name, k))+`}`), nil)
							if r.err == nil && r.status != 201 {
								r.err = fmt.Errorf("create: %s", r)
							}
						} else {
							r = call(context.Background(), "GET", s.url+base+"/licenses/"+strconv.FormatInt(1+k%int64(n), 10), key, nil, nil)
							if r.err == nil && r.status != 200 {
								r.err = fmt.Errorf("read: %s", r)
							}
						}
						if r.err != nil {
							t.Errorf("BSS request: %v", r.err)
							return
						}
						mine = append(mine, sample{t0, time.Since(t0)})
					}
				})
			}
			wg.Wait()
			return lat
		}
		measure := func(s *server, until func() bool) (samples, time.Duration) {
			stop := make(chan struct{})
			var lat samples
			done := make(chan struct{})
			go func() { lat = bss(s, stop); close(done) }()
			t0 := time.Now()
			for !until() {
				time.Sleep(50 * time.Millisecond)
			}
			took := time.Since(t0)
			close(stop)
			<-done
			return lat, took
		}

		// Baseline: the same traffic, no background work.
		baseEnd := time.Now().Add(10 * time.Second)
		base, _ := measure(idle, func() bool { return time.Now().After(baseEnd) })
		baseline := base.lat()
		idle.stop(t)

		// The backlog, with the same traffic.
		flags := []string{"--renewal-mode", "automatic", "--rate-limit", "0"}
		rateFlag := "default"
		if r := os.Getenv("LICENSOR_BENCH_RENEWAL_RATE"); r != "" {
			flags, rateFlag = append(flags, "--renewal-rate", r), r
		}
		srv := startServer(t, db, flags...)
		expired := func() int {
			var c int
			if err := conn.QueryRow(`SELECT count(*) FROM licenses WHERE status = 'EXPIRED'`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			return c
		}
		started := time.Now()
		var expiredAt time.Time // when the expirer's backlog was done
		during, took := measure(srv, func() bool {
			if expiredAt.IsZero() && expired() >= n {
				expiredAt = time.Now()
			}
			return successors() >= n && !expiredAt.IsZero()
		})
		if got := renewalAudit(t, conn, time.Now().Unix()-2); got != n {
			t.Errorf("%d successors, want %d", got, n)
		}
		pct := func(l []time.Duration, p float64) time.Duration {
			if len(l) == 0 {
				return 0
			}
			slices.Sort(l)
			return l[min(len(l)-1, int(float64(len(l))*p))].Round(10 * time.Microsecond)
		}
		rate := func(l []time.Duration, d time.Duration) float64 { return float64(len(l)) / d.Seconds() }
		t.Logf("%s: --renewal-rate %s: %d renewals in %v: %.0f renewals/s (each a successor, its license.created and license.renewed, beside %d expiries, done in %v)",
			e.name, rateFlag, n, took.Round(time.Millisecond), float64(n)/took.Seconds(), n, expiredAt.Sub(started).Round(time.Millisecond))
		t.Logf("%s: BSS (4 clients, 3 reads : 1 create) without the backlog: %.0f req/s, p50 %v, p99 %v, max %v",
			e.name, rate(baseline, 10*time.Second), pct(baseline, 0.5), pct(baseline, 0.99), pct(baseline, 1))
		t.Logf("%s: BSS during the backlog:                              %.0f req/s, p50 %v, p99 %v, max %v",
			e.name, rate(during.lat(), took), pct(during.lat(), 0.5), pct(during.lat(), 0.99), pct(during.lat(), 1))
		exp, rest := during.split(expiredAt)
		t.Logf("%s: BSS while the expirer catches up (%v):              %.0f req/s, p50 %v, p99 %v, max %v",
			e.name, expiredAt.Sub(started).Round(time.Millisecond), rate(exp, expiredAt.Sub(started)), pct(exp, 0.5), pct(exp, 0.99), pct(exp, 1))
		t.Logf("%s: BSS after, renewals alone (%v):                     %.0f req/s, p50 %v, p99 %v, max %v",
			e.name, started.Add(took).Sub(expiredAt).Round(time.Millisecond), rate(rest, started.Add(took).Sub(expiredAt)), pct(rest, 0.5), pct(rest, 0.99), pct(rest, 1))
	})
}

// sample is one request of the BSS: when it started and how long it took.
type sample struct {
	start time.Time
	took  time.Duration
}

type samples []sample

// lat returns the latencies.
func (s samples) lat() []time.Duration {
	out := make([]time.Duration, len(s))
	for i, x := range s {
		out[i] = x.took
	}
	return out
}

// split returns the latencies of the requests started before at, and of
// the others.
func (s samples) split(at time.Time) (before, after []time.Duration) {
	for _, x := range s {
		if x.start.Before(at) {
			before = append(before, x.took)
		} else {
			after = append(after, x.took)
		}
	}
	return before, after
}
