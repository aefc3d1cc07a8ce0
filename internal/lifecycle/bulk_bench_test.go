package lifecycle_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/lifecycle"
	"github.com/licensor/licensor/internal/postgres"
	"github.com/licensor/licensor/internal/sqlite"
	"github.com/licensor/licensor/internal/testdb"
)

// BenchmarkBulkJob measures a bulk job over LICENSOR_BULK_BENCH_LICENSES
// licenses of one product (default 1,000,000, bulk-seeded in SQL) on a
// SQLite file, with the BSS's own traffic beside it: 4 clients in a closed
// loop over HTTP, each request a GetLicenseById (3 in 4) or a CreateLicense
// (1 in 4) of another product. Three phases, each reporting the BSS's p50
// and p99 and the job's licenses per second. Phase base has no job;
// phase throttled runs a suspend job at the defaults (--bulk-rate 1000,
// --bulk-chunk 200) for 10 s, then cancels it; phase unthrottled runs a
// delete job of every license of the product to its end, as fast as the
// worker goes (chunks of 200, no rate). Run it with:
//
//	go test -run '^$' -bench BulkJob -benchtime 1x ./internal/lifecycle
func BenchmarkBulkJob(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("LICENSOR_BULK_BENCH_LICENSES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	b.Run("sqlite", func(b *testing.B) {
		ctx := context.Background()
		path := filepath.Join(b.TempDir(), "bench.db")
		store, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if err := store.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		benchBulkJob(b, n, store, store.Engine(), func(query string) error {
			raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
			if err != nil {
				return err
			}
			defer raw.Close()
			_, err = raw.ExecContext(ctx, `WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < `+strconv.Itoa(n)+`) `+query)
			return err
		})
	})
	if !testdb.PostgresConfigured(b) {
		return
	}
	b.Run("postgres", func(b *testing.B) {
		ctx := context.Background()
		url := testdb.PostgresURL(b)
		store, err := postgres.Open(ctx, url, postgres.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		if err := store.Migrate(ctx); err != nil {
			b.Fatal(err)
		}
		benchBulkJob(b, n, store, store.Engine(), func(query string) error {
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			if _, err := conn.Exec(ctx, `CREATE TEMP TABLE s AS SELECT generate_series(1, `+strconv.Itoa(n)+`) AS i`); err != nil {
				return err
			}
			if _, err = conn.Exec(ctx, query); err != nil {
				return err
			}
			_, err = conn.Exec(ctx, `ANALYZE licenses`)
			return err
		})
	})
}

// benchBulkJob runs the benchmark over store; seed runs the query that
// inserts the n licenses from a table s(i) of 1..n.
func benchBulkJob(b *testing.B, n int, store licensor.Store, engine licensor.Engine, seed func(query string) error) {
	ctx := context.Background()
	now := time.Now().Unix()
	c := licensor.Change{Time: now, Actor: "bench"}
	bulkProduct, bssProduct := licensor.NewProduct("Bulk"), licensor.NewProduct("BSS")
	for _, p := range []*licensor.Product{&bulkProduct, &bssProduct} {
		if err := store.CreateProduct(ctx, p, c); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	err := seed(fmt.Sprintf(`INSERT INTO licenses (user_id, product_id, status, start_date, stop_date, order_id, recurring, expiry_date,
	purchase_timestamp, created_at)
SELECT 'user-' || (i %% 250000), %d, 'ACTIVE', %[2]d - 86400, NULL, 'ord-' || i, false, NULL, %[2]d, %[2]d
FROM s`, bulkProduct.ID, now))
	if err != nil {
		b.Fatal(err)
	}
	var bss []int64 // licenses of the other product, read by the BSS clients
	for range 10 {
		drafts := make([]licensor.LicenseDraft, 1000)
		for i := range drafts {
			drafts[i] = licensor.LicenseDraft{UserID: "bss-" + strconv.Itoa(i), ProductID: bssProduct.ID}
		}
		ls, err := store.CreateLicenses(ctx, drafts, c)
		if err != nil {
			b.Fatal(err)
		}
		for _, l := range ls {
			bss = append(bss, l.ID)
		}
	}
	b.Logf("seeded %d licenses in %v", n, time.Since(start).Round(time.Millisecond))

	secret, prefix, hash := licensor.NewAPIKeySecret()
	if err := store.CreateAPIKey(ctx, &licensor.APIKey{Name: "bench", Prefix: prefix, Hash: hash, Scope: licensor.ScopeWrite, CreatedAt: now}); err != nil {
		b.Fatal(err)
	}
	srv := api.New(store, api.Options{Logger: slog.New(slog.DiscardHandler), Engine: engine})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	base := hs.URL + "/api/license/management/v4"
	send := func(method, url string, body []byte) (int, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Apikey "+secret)
		req.Header.Set("Content-Type", "application/vnd.api+json")
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	create := []byte(`{"data":{"type":"License","relationships":{"user":{"data":{"type":"User","id":"bss-new"}},` +
		`"product":{"data":{"type":"Product","id":"` + strconv.FormatInt(bssProduct.ID, 10) + `"}}}}}`)

	// load runs the BSS clients until stop is closed and returns the
	// latencies of their reads and writes.
	load := func(stop <-chan struct{}) (reads, writes []time.Duration) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 1))
				var rs, ws []time.Duration
				for i := 0; ; i++ {
					select {
					case <-stop:
						mu.Lock()
						reads, writes = append(reads, rs...), append(writes, ws...)
						mu.Unlock()
						return
					default:
					}
					t := time.Now()
					if i%4 == 3 {
						status, err := send("POST", base+"/licenses", create)
						if err != nil || status != 201 {
							b.Errorf("create: %d %v", status, err)
							return
						}
						ws = append(ws, time.Since(t))
					} else {
						status, err := send("GET", base+"/licenses/"+strconv.FormatInt(bss[rng.IntN(len(bss))], 10), nil)
						if err != nil || status != 200 {
							b.Errorf("read: %d %v", status, err)
							return
						}
						rs = append(rs, time.Since(t))
					}
				}
			})
		}
		wg.Wait()
		return reads, writes
	}
	pct := func(ds []time.Duration, p float64) time.Duration {
		if len(ds) == 0 {
			return 0
		}
		slices.Sort(ds)
		return ds[min(len(ds)-1, int(float64(len(ds))*p))]
	}
	job := func(a licensor.BulkAction) licensor.BulkJob {
		j := licensor.BulkJob{Action: a, Filter: licensor.LicenseFilter{ProductID: &bulkProduct.ID}}
		if err := store.CreateBulkJob(ctx, &j, licensor.Change{Time: time.Now().Unix(), Actor: "bench"}); err != nil {
			b.Fatal(err)
		}
		return j
	}
	report := func(phase string, reads, writes []time.Duration, rows int64, elapsed time.Duration) {
		rate := float64(rows) / elapsed.Seconds()
		b.Logf("%-11s %8.0f rows/s  reads %6d p50 %7v p99 %7v  writes %5d p50 %7v p99 %7v", phase, rate,
			len(reads), pct(reads, 0.5).Round(10*time.Microsecond), pct(reads, 0.99).Round(10*time.Microsecond),
			len(writes), pct(writes, 0.5).Round(10*time.Microsecond), pct(writes, 0.99).Round(10*time.Microsecond))
		b.ReportMetric(rate, phase+"-rows/s")
		b.ReportMetric(float64(pct(reads, 0.99).Microseconds()), phase+"-read-p99-µs")
		b.ReportMetric(float64(pct(writes, 0.99).Microseconds()), phase+"-write-p99-µs")
	}
	worker := func(opts lifecycle.BulkOptions) (stop func()) {
		wctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		opts.Poll = 20 * time.Millisecond
		go func() {
			defer close(done)
			lifecycle.Bulk(wctx, store, opts)
		}()
		return func() { cancel(); <-done }
	}
	phase := func(d time.Duration, until func() bool) ([]time.Duration, []time.Duration, time.Duration) {
		stop := make(chan struct{})
		var reads, writes []time.Duration
		got := make(chan struct{})
		go func() {
			reads, writes = load(stop)
			close(got)
		}()
		t := time.Now()
		if until == nil {
			time.Sleep(d)
		}
		for until != nil && !until() {
			time.Sleep(50 * time.Millisecond)
		}
		elapsed := time.Since(t)
		close(stop)
		<-got
		return reads, writes, elapsed
	}

	for b.Loop() {
		reads, writes, elapsed := phase(5*time.Second, nil)
		report("base", reads, writes, 0, elapsed)

		throttled := job(licensor.BulkSuspend)
		stop := worker(lifecycle.BulkOptions{})
		reads, writes, elapsed = phase(10*time.Second, nil)
		stop()
		j, err := store.CancelBulkJob(ctx, throttled.ID, licensor.Change{Time: time.Now().Unix(), Actor: "bench"})
		if licensor.ErrorCode(err) == licensor.CodeConflict { // done already: a small run
			j, err = store.FindBulkJobByID(ctx, throttled.ID)
		}
		if err != nil {
			b.Fatal(err)
		}
		report("throttled", reads, writes, j.Processed, elapsed)

		full := job(licensor.BulkDelete)
		stop = worker(lifecycle.BulkOptions{Rate: -1})
		doneJob := func() bool {
			j, err := store.FindBulkJobByID(ctx, full.ID)
			return err != nil || j.State.Final()
		}
		reads, writes, elapsed = phase(0, doneJob)
		stop()
		j, err = store.FindBulkJobByID(ctx, full.ID)
		if err != nil || j.State != licensor.BulkDone || j.Processed != int64(n) {
			b.Fatalf("delete job: %+v, %v", j, err)
		}
		report("unthrottled", reads, writes, j.Processed, elapsed)
	}
}
