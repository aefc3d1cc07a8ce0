package console_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/console"
	"github.com/licensor/licensor/internal/sqlite"
)

// BenchmarkPages measures each page's server time (the handler, without
// the network) on SQLite at LICENSOR_CONSOLE_BENCH_LICENSES licenses
// (default 1,000,000: 100 products, 250,000 users, bulk-seeded in SQL):
//
//	go test -run '^$' -bench BenchmarkPages -benchtime 200x ./internal/console
func BenchmarkPages(b *testing.B) {
	n := 1_000_000
	if v := os.Getenv("LICENSOR_CONSOLE_BENCH_LICENSES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
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
	now := time.Now().Unix()
	c := licensor.Change{Time: now, Actor: "bench"}
	for i := range 100 {
		p := licensor.NewProduct(fmt.Sprintf("Product %03d", i))
		p.Channels = licensor.Channels{licensor.ServiceLive: {fmt.Sprintf("ch%d", i), "news"}}
		if err := store.CreateProduct(ctx, &p, c); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	raw, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		b.Fatal(err)
	}
	_, err = raw.ExecContext(ctx, fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
INSERT INTO licenses (user_id, product_id, status, start_date, stop_date, order_id, recurring, expiry_date,
	purchase_timestamp, created_at)
SELECT 'user-' || (i %% 250000), 1 + (i * 7919) %% 100,
	CASE WHEN i %% 20 = 0 THEN 'SUSPENDED' ELSE 'ACTIVE' END,
	%[2]d - 86400 * (i %% 400), CASE WHEN i %% 3 = 0 THEN NULL ELSE %[2]d + 86400 * (i %% 365) - 86400 * 30 END,
	'ord-' || i, i %% 2, NULL, %[2]d, %[2]d - (%[1]d - i)
FROM s`, n, now))
	raw.Close()
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d licenses in %v", n, time.Since(start).Round(time.Millisecond))

	secret, prefix, hash := licensor.NewAPIKeySecret()
	_ = secret
	key := licensor.APIKey{Name: "bench", Prefix: prefix, Hash: hash, Scope: licensor.ScopeWrite}
	if err := store.CreateAPIKey(ctx, &key); err != nil {
		b.Fatal(err)
	}
	token := "bench-session-token"
	sum := sha256.Sum256([]byte(token))
	if err := store.CreateConsoleSession(ctx, &licensor.ConsoleSession{ID: hex.EncodeToString(sum[:]), KeyID: key.ID, KeyPrefix: prefix,
		CSRF: "x", CreatedAt: now, SeenAt: now, ExpiresAt: now + 86400}); err != nil {
		b.Fatal(err)
	}
	h := console.New(store, console.Options{})
	uncached := console.New(store, console.Options{CountEvery: -1})
	for _, p := range []struct{ name, path string }{
		{"overview", "/"},
		{"overview-recount", "/"},
		{"subscriber", "/subscriber?user=user-4242&service=live&channel=news"},
		{"licenses-search", "/licenses?filter%5Bstatus%5D=SUSPENDED&sort=created_at&desc=1&size=50"},
		{"licenses-product", "/licenses?filter%5Bproduct_id%5D=7&size=50"},
		{"license", "/licenses/" + strconv.Itoa(n/2)},
		{"products", "/products"},
		{"product", "/products/7"},
		{"keys", "/keys"},
		{"webhooks", "/webhooks"},
	} {
		b.Run(p.name, func(b *testing.B) {
			for b.Loop() {
				req := httptest.NewRequest(http.MethodGet, console.Prefix+p.path, nil)
				req.AddCookie(&http.Cookie{Name: "licensor_console", Value: token})
				rec := httptest.NewRecorder()
				if p.name == "overview-recount" {
					uncached.ServeHTTP(rec, req)
				} else {
					h.ServeHTTP(rec, req)
				}
				if rec.Code != http.StatusOK {
					b.Fatalf("%s: %d %s", p.path, rec.Code, rec.Body.String())
				}
			}
		})
	}
}
