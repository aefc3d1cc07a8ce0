package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/testdb"
)

func TestIdempotencyKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		idem := func(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }
		body := licenseBody("u1", pid, nil)

		first := en.must(201, req{method: "POST", path: base + "/licenses", body: body, header: idem("k1")})
		again := en.must(201, req{method: "POST", path: base + "/licenses", body: body, header: idem("k1")})
		if again.Header.Get("Idempotent-Replayed") != "true" || first.Header.Get("Idempotent-Replayed") != "" {
			t.Errorf("Idempotent-Replayed: first %q, repeat %q", first.Header.Get("Idempotent-Replayed"), again.Header.Get("Idempotent-Replayed"))
		}
		if string(again.body) != string(first.body) || again.Header.Get("Location") != first.Header.Get("Location") {
			t.Errorf("replay differs:\n%s\n%s", first.body, again.body)
		}
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if n := num(path(list, "meta", "total")); n != 1 {
			t.Errorf("%d licenses after a replayed create, want 1", n)
		}

		// The same key with another request: 422, nothing written.
		r := en.must(422, req{method: "POST", path: base + "/licenses", body: licenseBody("u2", pid, nil), header: idem("k1")})
		if codes := r.errorCodes(t); !slices.Equal(codes, []string{"IDEMPOTENCY_KEY_REUSED"}) {
			t.Errorf("codes %v", codes)
		}
		// Keys are scoped to the API key: another key may use "k1" afresh.
		other := en.createKey("other", "write", nil)
		en.must(201, req{method: "POST", path: base + "/licenses", body: body, header: idem("k1"), key: other})

		// An error response is kept and replayed too (nothing was written).
		bad := licenseBody("u1", "999999", nil)
		en.must(404, req{method: "POST", path: base + "/licenses", body: bad, header: idem("k-bad")})
		r = en.must(404, req{method: "POST", path: base + "/licenses", body: bad, header: idem("k-bad")})
		if r.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("error response not replayed")
		}

		// Batches and products too.
		batch := map[string]any{"data": []any{licenseObject("b1", pid, nil), licenseObject("b2", pid, nil)}}
		b1 := en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: batch, header: idem("kb")})
		b2 := en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: batch, header: idem("kb")})
		if string(b1.body) != string(b2.body) {
			t.Errorf("batch replay differs")
		}
		p1 := en.must(201, req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "P"}), header: idem("kp")})
		p2 := en.must(201, req{method: "POST", path: base + "/products", body: productBody(map[string]any{"title": "P"}), header: idem("kp")})
		if p1.Header.Get("ETag") != p2.Header.Get("ETag") || string(p1.body) != string(p2.body) {
			t.Errorf("product replay differs")
		}
		list = en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if n := num(path(list, "meta", "total")); n != 4 {
			t.Errorf("%d licenses, want 4", n)
		}

		en.must(400, req{method: "POST", path: base + "/licenses", body: body, header: idem(strings.Repeat("x", 256))})
	})
}

// TestIdempotencyConcurrent sends one key many times at once: one write,
// every other answer a replay of it or 409 IDEMPOTENCY_KEY_IN_FLIGHT.
func TestIdempotencyConcurrent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e)
		pid := en.createProduct(map[string]any{})
		body := licenseBody("u1", pid, nil)
		const n = 20
		var wg sync.WaitGroup
		resps := make([]*response, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resps[i] = en.do(req{method: "POST", path: base + "/licenses", body: body, header: map[string]string{"Idempotency-Key": "same"}})
			}()
		}
		wg.Wait()
		var created string
		for _, r := range resps {
			switch {
			case r.StatusCode == 201 && r.Header.Get("Idempotent-Replayed") == "":
				if created != "" {
					t.Fatalf("two creates ran under one key")
				}
				created = string(r.body)
			case r.StatusCode == 201:
			case r.StatusCode == 409:
				if codes := r.errorCodes(t); !slices.Equal(codes, []string{"IDEMPOTENCY_KEY_IN_FLIGHT"}) {
					t.Errorf("409 with %v", codes)
				}
			default:
				t.Errorf("status %d: %s", r.StatusCode, r.body)
			}
		}
		for _, r := range resps {
			if r.StatusCode == 201 && string(r.body) != created {
				t.Errorf("a replay differs from the created response")
			}
		}
		list := en.must(200, req{method: "GET", path: base + "/licenses?count=true"}).json(t)
		if got := num(path(list, "meta", "total")); got != 1 {
			t.Errorf("%d licenses, want 1", got)
		}
	})
}

func TestRateLimit(t *testing.T) {
	en := newEnv(t, engines(t)[0], func(o *api.Options) { o.RateLimit = 1; o.RateBurst = 3 })
	for i := range 3 {
		r := en.must(200, req{method: "GET", path: base + "/products"})
		if got := r.Header.Get("RateLimit-Remaining"); got != []string{"2", "1", "0"}[i] {
			t.Errorf("request %d: RateLimit-Remaining %q", i, got)
		}
		if r.Header.Get("RateLimit-Limit") != "3" {
			t.Errorf("RateLimit-Limit %q", r.Header.Get("RateLimit-Limit"))
		}
	}
	r := en.must(429, req{method: "GET", path: base + "/products"})
	if codes := r.errorCodes(t); !slices.Equal(codes, []string{"RATE_LIMITED"}) {
		t.Errorf("codes %v", codes)
	}
	if r.Header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After %q, want 1", r.Header.Get("Retry-After"))
	}
	// Another key has its own bucket.
	en.must(200, req{method: "GET", path: base + "/products", key: en.readKey})
	// Time refills the bucket (the server's clock is the test's).
	en.clock.Set(en.clock.Now().Add(2 * time.Second))
	en.must(200, req{method: "GET", path: base + "/products"})
}

// TestUserRateLimit: each end user (token subject) has a token bucket on
// the end-user API; beyond it 429 RATE_LIMITED with Retry-After, before
// the body is read or an Idempotency-Key is taken. Before, nothing bounded
// how fast one user could send 4 MiB purchases.
func TestUserRateLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, e engine) {
		en := newEnv(t, e, withTokens, func(o *api.Options) { o.UserRateLimit = 1; o.UserRateBurst = 3 })
		pid := en.createProduct(map[string]any{})
		tok := en.token("41", nil)
		for i, r := range []req{
			{method: "GET", path: userBase + "/products"},
			{method: "GET", path: userBase + "/users/41/entitlements"},
			{method: "GET", path: userBase + "/users/41/licenses"},
		} {
			resp := en.userMust(200, tok, r)
			if got := resp.Header.Get("RateLimit-Remaining"); got != []string{"2", "1", "0"}[i] {
				t.Errorf("request %d: RateLimit-Remaining %q", i, got)
			}
			if resp.Header.Get("RateLimit-Limit") != "3" {
				t.Errorf("RateLimit-Limit %q", resp.Header.Get("RateLimit-Limit"))
			}
		}
		attack := unknownAttributesBody(pid, 4<<20-1024)
		for _, r := range []req{
			{method: "GET", path: userBase + "/products"},
			{method: "POST", path: userBase + "/users/41/licenses", body: attack, header: idem("k")},
			{method: "POST", path: userBase + "/users/41/licenses", body: purchaseBody(pid), header: idem("buy")},
		} {
			resp := en.userMust(429, tok, r)
			if codes := resp.errorCodes(t); !slices.Equal(codes, []string{"RATE_LIMITED"}) {
				t.Errorf("%s %s: codes %v", r.method, r.path, codes)
			}
			if resp.Header.Get("Retry-After") != "1" || resp.Header.Get("RateLimit-Remaining") != "0" {
				t.Errorf("%s %s: Retry-After %q, RateLimit-Remaining %q", r.method, r.path, resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit-Remaining"))
			}
		}
		// Another user has a bucket of their own; API keys are not limited
		// by it.
		en.userMust(200, en.token("42", nil), req{method: "GET", path: userBase + "/products"})
		for range 5 {
			en.must(200, req{method: "GET", path: base + "/products"})
		}
		// Time refills the bucket (the server's clock is the test's); the
		// refused purchase took no key: it runs afresh.
		en.clock.Set(en.clock.Now().Add(time.Second))
		tok = en.token("41", nil)
		buy := en.userMust(201, tok, req{method: "POST", path: userBase + "/users/41/licenses", body: purchaseBody(pid), header: idem("buy")})
		if buy.Header.Get("Idempotent-Replayed") != "" {
			t.Error("the purchase refused with 429 was kept and replayed")
		}
		en.userMust(429, tok, req{method: "GET", path: userBase + "/products"})
	})
}

func TestMetrics(t *testing.T) {
	en := newEnv(t, engines(t)[0], func(o *api.Options) { o.MetricsOnAPI = true })
	pid := en.createProduct(map[string]any{})
	en.must(201, req{method: "POST", path: base + "/licenses/batch_create", body: map[string]any{"data": []any{licenseObject("m", pid, nil)}}})
	en.must(401, req{method: "GET", path: base + "/licenses", key: "-"})
	resp, err := http.Get(en.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, want := range []string{
		`licensor_http_requests_total{method="POST",route="POST /api/license/management/v4/products",status="201"} 1`,
		`licensor_http_request_duration_seconds_bucket{method="GET",route="GET /api/license/management/v4/licenses"`,
		`licensor_batch_items_count{operation="batch_create"} 1`,
		`licensor_rejections_total{code="API_KEY_MISSING"} 1`,
		`licensor_db_pool_open{pool=`,
		`licensor_idempotent_replays_total 0`,
		`licensor_write_transactions_total `, // the SQLite store's group commit
		`licensor_write_units_total `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	_ = context.Background
}

// downProducts is a store whose product lists fail with errDown.
type downProducts struct{ licensor.Store }

var errDown = errors.New("disk gone")

func (downProducts) FindProducts(context.Context, licensor.ProductQuery) (*licensor.ProductPage, error) {
	return nil, errDown
}

// TestEngineUnavailable: the engine's error mapping is the one given in
// Options.Engine, whatever wraps the store (the entitlement cache's
// decorator always does): a failure it marks unavailable is a 503
// UNAVAILABLE; without the mapping the same failure is a 500.
func TestEngineUnavailable(t *testing.T) {
	down := engine{Name: "sqlite", Open: func(t testing.TB) licensor.Store { return downProducts{testdb.OpenSQLite(t)} }}
	en := newEnv(t, down, func(o *api.Options) {
		o.Engine.Unavailable = func(err error) error {
			if errors.Is(err, errDown) {
				return fmt.Errorf("%w: %w", licensor.Errorf(licensor.CodeUnavailable, "the disk is gone"), err)
			}
			return err
		}
	})
	if resp := en.must(503, req{method: "GET", path: base + "/products"}); !strings.Contains(string(resp.body), `"UNAVAILABLE"`) {
		t.Errorf("body %s, want the code UNAVAILABLE", resp.body)
	}
	plain := newEnv(t, down)
	plain.must(500, req{method: "GET", path: base + "/products"})
}
