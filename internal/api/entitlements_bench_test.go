//go:build unix

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/licensor/licensor/internal/jsonapi"
	"github.com/licensor/licensor/internal/sqlite"
)

// The entitlement check, measured:
//
//	go test -run '^$' -bench 'Entitlement|Check' -benchmem ./internal/api/
//
// The data: benchUsers users with two licenses each over benchProducts
// products of benchChannels live channels, in SQLite. Every benchmark
// runs warm (each user loaded once before the clock starts), which is
// the steady state: a user's licenses are reloaded at most once per TTL.
const (
	benchUsers    = 10_000
	benchProducts = 20
	benchChannels = 30
)

type benchFixture struct {
	srv *Server
	db  licensor.Store
	key string
}

func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	c := licensor.Change{Time: 1_750_000_000, Actor: "bench"}
	for p := range benchProducts {
		prod := licensor.NewProduct("product " + strconv.Itoa(p))
		for ch := range benchChannels {
			prod.Channels[licensor.ServiceLive] = append(prod.Channels[licensor.ServiceLive], fmt.Sprintf("ch%d-%d", p, ch))
		}
		if err := db.CreateProduct(ctx, &prod, c); err != nil {
			b.Fatal(err)
		}
	}
	var drafts []licensor.LicenseDraft
	for u := range benchUsers {
		for k := range 2 {
			drafts = append(drafts, licensor.LicenseDraft{UserID: strconv.Itoa(u), ProductID: int64(1 + (u+k*7)%benchProducts)})
		}
		if len(drafts) == 1000 {
			if _, err := db.CreateLicenses(ctx, drafts, c); err != nil {
				b.Fatal(err)
			}
			drafts = drafts[:0]
		}
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	if err := db.CreateAPIKey(ctx, &licensor.APIKey{Name: "bench", Prefix: prefix, Hash: hash, Scope: licensor.ScopeRead, CreatedAt: c.Time}); err != nil {
		b.Fatal(err)
	}
	// A TTL longer than any run: the benchmarks measure the steady state
	// of a hot user (BenchmarkEntitlementCheckMiss measures a load).
	srv := New(db, Options{EndUser: EndUserOptions{Cache: entitlement.Options{TTL: 1 << 62}}})
	for u := range benchUsers {
		if _, err := srv.endUser.cache.Answer(ctx, strconv.Itoa(u), c.Time); err != nil {
			b.Fatal(err)
		}
	}
	runtime.GC() // the set-up's garbage is not the benchmark's
	return &benchFixture{srv: srv, db: db, key: secret}
}

// cpuTime is the CPU time (user and system) the process has used: on a
// shared, busy machine a steadier measure than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds "cpu-ns/op", the process's CPU time per operation since
// start (taken after the fixture was built).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// question is the i-th benchmark question: a user and a channel of one of
// the user's products half of the time.
func benchQuestion(r *rand.Rand) checkQuestion {
	u := r.IntN(benchUsers)
	p := (u + r.IntN(2)*7 + r.IntN(2)) % benchProducts
	return checkQuestion{user: strconv.Itoa(u), channel: fmt.Sprintf("ch%d-%d", p, r.IntN(benchChannels)), service: licensor.ServiceLive}
}

// BenchmarkEntitlementCheckMemory is the check itself: the cache lookup and
// the answer, without HTTP, on one core.
func BenchmarkEntitlementCheckMemory(b *testing.B) {
	f := newBenchFixture(b)
	ec := f.srv.endUser.cache
	ctx := context.Background()
	r := rand.New(rand.NewPCG(7, 8))
	qs := make([]checkQuestion, 4096)
	for i := range qs {
		qs[i] = benchQuestion(r)
	}
	defer reportCPU(b, cpuTime())
	for i := 0; b.Loop(); i++ {
		q := qs[i%len(qs)]
		ans, err := ec.Answer(ctx, q.user, 1_750_000_000)
		if err != nil {
			b.Fatal(err)
		}
		_ = ans.Allows(q.service, q.channel)
	}
}

// BenchmarkEntitlementCheckMiss is the check of a user who is not in
// memory: the load of the user's licenses (and the answer), what every
// user costs once per TTL.
func BenchmarkEntitlementCheckMiss(b *testing.B) {
	f := newBenchFixture(b)
	ec := f.srv.endUser.cache
	ctx := context.Background()
	r := rand.New(rand.NewPCG(5, 6))
	defer reportCPU(b, cpuTime())
	for b.Loop() {
		q := benchQuestion(r)
		ec.InvalidateUser(q.user)
		ans, err := ec.Answer(ctx, q.user, 1_750_000_000)
		if err != nil {
			b.Fatal(err)
		}
		_ = ans.Allows(q.service, q.channel)
	}
}

func checkRequestBody(r *rand.Rand, n int) []byte {
	items := make([]any, n)
	for i := range items {
		q := benchQuestion(r)
		items[i] = map[string]any{"type": "EntitlementCheck", "attributes": map[string]any{
			"user_id": q.user, "channel_id": q.channel, "service": string(q.service)}}
	}
	body, _ := json.Marshal(map[string]any{"data": items})
	return body
}

// BenchmarkCheckHTTP is POST .../entitlements/check through the whole
// handler (API key, JSON:API decoding and encoding), with 1 and 1000
// questions; "questions/s" is per core.
func BenchmarkCheckHTTP(b *testing.B) {
	f := newBenchFixture(b)
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("questions=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			bodies := make([][]byte, 64)
			for i := range bodies {
				bodies[i] = checkRequestBody(r, n)
			}
			b.ResetTimer()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				req := httptest.NewRequest("POST", basePath+"/entitlements/check", bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Authorization", "Apikey "+f.key)
				req.Header.Set("Content-Type", jsonapi.MediaType)
				w := httptest.NewRecorder()
				f.srv.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "questions/s")
		})
	}
}

// BenchmarkGetEntitlementsHTTP is GET .../users/{id}/entitlements through
// the whole handler, answering 200 (body and ETag) or 304.
func BenchmarkGetEntitlementsHTTP(b *testing.B) {
	f := newBenchFixture(b)
	get := func(user, etag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", basePath+"/users/"+user+"/entitlements", nil)
		req.Header.Set("Authorization", "Apikey "+f.key)
		if etag != "" {
			req.Header.Set("If-None-Match", etag)
		}
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		return w
	}
	for _, conditional := range []bool{false, true} {
		name := "200"
		if conditional {
			name = "304"
		}
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			users := make([]string, 1024)
			etags := make([]string, len(users))
			for i := range users {
				users[i] = strconv.Itoa(r.IntN(benchUsers))
				if conditional {
					etags[i] = get(users[i], "").Header().Get("ETag")
				}
			}
			want := map[bool]int{false: 200, true: 304}[conditional]
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				if w := get(users[i%len(users)], etags[i%len(users)]); w.Code != want {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// BenchmarkGetEntitlementsAPI is GET .../users/{id}/entitlements as
// `licensor serve` answers it (every request logged as JSON, to
// io.Discard here), without httptest's allocations: the requests are
// built once, as net/http's server gives them, and written to a reusable
// writer (see BenchmarkGetLicenseByID's "api"), so that what it counts is
// this package's share of the request: middleware, API key, access log,
// metrics, the cache lookup and the body.
func BenchmarkGetEntitlementsAPI(b *testing.B) {
	f := newBenchFixture(b)
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	srv := New(f.db, Options{Logger: logger, EndUser: EndUserOptions{Cache: entitlement.Options{TTL: 1 << 62}}})
	ctx := context.Background()
	for u := range benchUsers {
		if _, err := srv.endUser.cache.Answer(ctx, strconv.Itoa(u), 1_750_000_000); err != nil {
			b.Fatal(err)
		}
	}
	for _, conditional := range []bool{false, true} {
		name, want := "200", http.StatusOK
		if conditional {
			name, want = "304", http.StatusNotModified
		}
		b.Run(name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(3, 4))
			reqs := make([]*http.Request, 1024)
			for i := range reqs {
				req, err := http.NewRequest("GET", basePath+"/users/"+strconv.Itoa(r.IntN(benchUsers))+"/entitlements", nil)
				if err != nil {
					b.Fatal(err)
				}
				req.Header.Set("Authorization", "Apikey "+f.key)
				req.Body = http.NoBody // as net/http's server gives a GET
				req.RemoteAddr = "192.0.2.1:50000"
				req.RequestURI = req.URL.RequestURI()
				if conditional {
					w := httptest.NewRecorder()
					srv.ServeHTTP(w, req)
					req.Header.Set("If-None-Match", w.Header().Get("ETag"))
				}
				reqs[i] = req
			}
			w := &benchWriter{header: http.Header{}}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				w.reset()
				srv.ServeHTTP(w, reqs[i%len(reqs)])
				if w.status != want {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// BenchmarkEntitlementBody is a memoized answer and the writing of its
// body (two products of 30 channels: about 2 KiB), without HTTP.
func BenchmarkEntitlementBody(b *testing.B) {
	f := newBenchFixture(b)
	ec := f.srv.endUser.cache
	ctx := context.Background()
	var buf []byte
	defer reportCPU(b, cpuTime())
	for i := 0; b.Loop(); i++ {
		u := strconv.Itoa(i % benchUsers)
		ans, err := ec.Answer(ctx, u, 1_750_000_000)
		if err != nil {
			b.Fatal(err)
		}
		buf = entitlementJSON{}.AppendAnswer(buf[:0], u, ans)
	}
	b.SetBytes(int64(len(buf)))
}
