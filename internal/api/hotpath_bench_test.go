//go:build unix

package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
	"github.com/licensor/licensor/internal/sqlite"
)

// The hot path of the management API, GET .../licenses/{id}, measured:
//
//	go test -run '^$' -bench GetLicenseByID -benchmem ./internal/api/
//
// "sqlite" is the whole request over a real SQLite store; "sqlite-list100"
// is GetLicensesByUser answering a page of 100; "api" serves the
// same license from memory (the store read replaced), so that what it
// measures is this package's share: middleware, API key, access log,
// metrics and encoding. Both log every request as JSON (to io.Discard), as
// `licensor serve` does.

// memoryLicenses answers FindLicenseByID from a fixed license; everything
// else goes to the store underneath.
type memoryLicenses struct {
	licensor.Store
	license licensor.License
}

func (m *memoryLicenses) FindLicenseByID(ctx context.Context, id int64) (*licensor.License, error) {
	l := m.license
	l.ID = id
	return &l, nil
}

// benchWriter is a reusable http.ResponseWriter that keeps nothing but the
// status, so that the benchmark measures the server, not a recorder.
type benchWriter struct {
	header http.Header
	status int
	bytes  int
}

func (w *benchWriter) Header() http.Header { return w.header }
func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.bytes += len(b)
	return len(b), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.status, w.bytes = 0, 0
}

func BenchmarkGetLicenseByID(b *testing.B) {
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
	prod := licensor.NewProduct("Sport channels megapack")
	prod.PriceAmount, prod.PriceCurrency = ptr(int64(999)), ptr("EUR")
	prod.Recurring, prod.LicensePeriod = true, "P1M"
	if err := db.CreateProduct(ctx, &prod, c); err != nil {
		b.Fatal(err)
	}
	const licenses = 1000
	drafts := make([]licensor.LicenseDraft, licenses)
	for i := range drafts {
		drafts[i] = licensor.LicenseDraft{UserID: strconv.Itoa(i), ProductID: prod.ID, OrderID: ptr("order-" + strconv.Itoa(i))}
	}
	created, err := db.CreateLicenses(ctx, drafts, c)
	if err != nil {
		b.Fatal(err)
	}
	many := make([]licensor.LicenseDraft, 100)
	for i := range many {
		many[i] = licensor.LicenseDraft{UserID: "many", ProductID: prod.ID, OrderID: ptr("many-" + strconv.Itoa(i))}
	}
	if _, err := db.CreateLicenses(ctx, many, c); err != nil {
		b.Fatal(err)
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	if err := db.CreateAPIKey(ctx, &licensor.APIKey{Name: "bench", Prefix: prefix, Hash: hash, Scope: licensor.ScopeRead, CreatedAt: c.Time}); err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil))
	for _, bc := range []struct {
		name  string
		store licensor.Store
		path  func(i int) string
	}{
		{"sqlite", db, nil},
		{"api", &memoryLicenses{Store: db, license: created[0]}, nil},
		// GetLicensesByUser of a user with 100 licenses: a page of 100.
		{"sqlite-list100", db, func(int) string { return basePath + "/users/many/licenses" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := New(bc.store, Options{Logger: logger})
			reqs := make([]*http.Request, 64)
			for i := range reqs {
				path := basePath + "/licenses/" + strconv.FormatInt(created[i*licenses/len(reqs)].ID, 10)
				if bc.path != nil {
					path = bc.path(i)
				}
				r, err := http.NewRequest("GET", path, nil)
				if err != nil {
					b.Fatal(err)
				}
				r.Header.Set("Authorization", "Apikey "+secret)
				r.Header.Set("Accept", jsonapi.MediaType)
				r.Body = http.NoBody // as net/http's server gives a GET
				r.RemoteAddr = "192.0.2.1:50000"
				r.RequestURI = r.URL.RequestURI()
				reqs[i] = r
			}
			w := &benchWriter{header: http.Header{}}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b, cpuTime())
			for i := 0; b.Loop(); i++ {
				w.reset()
				srv.ServeHTTP(w, reqs[i%len(reqs)])
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkLicenseListJSON is a page of 100 licenses as JSON: by
// reflection (json.Marshal) and by AppendJSON, which jsonapi.WriteJSON uses.
func BenchmarkLicenseListJSON(b *testing.B) {
	r := rand.New(rand.NewPCG(5, 6))
	doc := licenseListDocument{Data: make([]licenseResource, 100), Links: listLinks{Self: basePath + "/users/41/licenses", Next: basePath + "/users/41/licenses?page[after]=abc"}}
	for i := range doc.Data {
		l := randomLicense(r)
		l.UserID, l.OrderID, l.PriceCurrency, l.PaymentMethod = "41", ptr("1adc0dbe-3c65-4248-896c-78c049e276c8"), ptr("EUR"), nil
		l.Status = licensor.StatusActive
		doc.Data[i] = licenseOut(&l, 1_750_000_000)
	}
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(doc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendJSON", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = doc.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
