package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
)

const base = "/api/license/management/v4"

// Canned resources, as the server writes them.
const (
	licenseJSON = `{"id":"42","type":"License",
	 "attributes":{"status":"ACTIVE","start_date":1700000000,"stop_date":1702592000,"order_id":"abc",
	   "renew_record":{"recurring":false,"expiry_date":1702592000},
	   "purchase_record":{"price_currency_amount":1223,"price_currency_iso4217":"EUR","purchase_timestamp":1700000000,"payment_method":"credit card"},
	   "created_at":1700000000},
	 "relationships":{"user":{"data":{"type":"User","id":"41"}},"product":{"data":{"type":"Product","id":"7"}}},
	 "links":{"self":"/api/license/management/v4/licenses/42"}}`

	licenseNullsJSON = `{"id":"43","type":"License",
	 "attributes":{"status":"EXPIRED","start_date":1700000000,"stop_date":null,"order_id":null,
	   "renew_record":{"recurring":true,"expiry_date":null},
	   "purchase_record":{"price_currency_amount":null,"price_currency_iso4217":null,"purchase_timestamp":1700000001,"payment_method":null},
	   "created_at":1700000002},
	 "relationships":{"user":{"data":{"type":"User","id":"user:41"}},"product":{"data":{"type":"Product","id":"8"}}},
	 "links":{"self":"/api/license/management/v4/licenses/43"}}`

	productJSON = `{"id":"7","type":"Product",
	 "attributes":{"title":"Sports","description":"","type":"CHANNEL_GROUP","is_premium":false,"is_buyable":true,
	   "is_visible":true,"recurring":false,"price_currency_amount":999,"price_currency_iso4217":"EUR",
	   "license_period":"P1M","created_at":1700000000,"updated_at":1700000000},
	 "relationships":{"live":{"data":[{"type":"Channel","id":"c1"},{"type":"Channel","id":"c2"}]},"catchup":{"data":[]},"npvr":{"data":[]},"startover":{"data":[]}},
	 "links":{"self":"/api/license/management/v4/products/7"}}`

	productNullsJSON = `{"id":"8","type":"Product",
	 "attributes":{"title":"Movies","description":"All of them","type":"SVOD","is_premium":true,"is_buyable":false,
	   "is_visible":false,"recurring":true,"price_currency_amount":null,"price_currency_iso4217":null,
	   "license_period":null,"created_at":1700000000,"updated_at":1700000005},
	 "relationships":{"live":{"data":[]},"catchup":{"data":[{"type":"Channel","id":"c9"}]},"npvr":{"data":[]},"startover":{"data":[]}},
	 "links":{"self":"/api/license/management/v4/products/8"}}`
)

func ptr[T any](v T) *T { return &v }

// wantLicense is licenseJSON decoded.
func wantLicense() licensor.License {
	return licensor.License{
		ID: 42, UserID: "41", ProductID: 7, Status: licensor.StatusActive,
		StartDate: 1700000000, StopDate: ptr[int64](1702592000), OrderID: ptr("abc"),
		Recurring: false, ExpiryDate: ptr[int64](1702592000),
		PriceAmount: ptr[int64](1223), PriceCurrency: ptr("EUR"), PurchaseTimestamp: 1700000000,
		PaymentMethod: ptr("credit card"), CreatedAt: 1700000000,
	}
}

// wantLicenseNulls is licenseNullsJSON decoded.
func wantLicenseNulls() licensor.License {
	return licensor.License{
		ID: 43, UserID: "user:41", ProductID: 8, Status: licensor.StatusExpired,
		StartDate: 1700000000, Recurring: true, PurchaseTimestamp: 1700000001, CreatedAt: 1700000002,
	}
}

// wantProduct is productJSON decoded.
func wantProduct() licensor.Product {
	return licensor.Product{
		ID: 7, Title: "Sports", Type: "CHANNEL_GROUP", IsBuyable: true, IsVisible: true,
		PriceAmount: ptr[int64](999), PriceCurrency: ptr("EUR"), LicensePeriod: "P1M",
		Channels: licensor.Channels{
			licensor.ServiceLive: {"c1", "c2"}, licensor.ServiceCatchup: {},
			licensor.ServiceNPVR: {}, licensor.ServiceStartover: {},
		},
		CreatedAt: 1700000000, UpdatedAt: 1700000000,
	}
}

// wantProductNulls is productNullsJSON decoded.
func wantProductNulls() licensor.Product {
	return licensor.Product{
		ID: 8, Title: "Movies", Description: "All of them", Type: "SVOD", IsPremium: true, Recurring: true,
		Channels: licensor.Channels{
			licensor.ServiceLive: {}, licensor.ServiceCatchup: {"c9"},
			licensor.ServiceNPVR: {}, licensor.ServiceStartover: {},
		},
		CreatedAt: 1700000000, UpdatedAt: 1700000005,
	}
}

// reply is one canned response.
type reply struct {
	status int
	body   string
	header http.Header
}

// request is what the fake server received.
type request struct {
	Method string
	Path   string // unescaped
	Raw    string // escaped path
	Query  map[string][]string
	Header http.Header
	Body   string
}

// fake serves canned replies in order and records the requests.
type fake struct {
	t       *testing.T
	mu      sync.Mutex
	replies []reply
	got     []request
}

// serve starts a fake server and returns a client of it.
func serve(t *testing.T, replies ...reply) (*client.Client, *fake) {
	t.Helper()
	f := &fake{t: t, replies: replies}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return client.New(srv.URL, "lk_test_key", client.WithHTTPClient(srv.Client())), f
}

func (f *fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, request{
		Method: r.Method, Path: r.URL.Path, Raw: r.URL.EscapedPath(), Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: string(body),
	})
	if len(f.replies) == 0 {
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL)
		http.Error(w, "no more replies", http.StatusTeapot)
		return
	}
	rep := f.replies[0]
	f.replies = f.replies[1:]
	for k, vs := range rep.header {
		w.Header()[k] = vs
	}
	if w.Header().Get("X-Request-Id") == "" {
		w.Header().Set("X-Request-Id", "req-1")
	}
	if rep.body != "" {
		w.Header().Set("Content-Type", "application/vnd.api+json")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

// requests returns what the server received so far.
func (f *fake) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.got...)
}

// only returns the one request the server received.
func (f *fake) only() request {
	f.t.Helper()
	got := f.requests()
	if len(got) != 1 {
		f.t.Fatalf("server got %d requests, want 1", len(got))
	}
	return got[0]
}

// compact strips the insignificant white space of a JSON text.
func compact(t *testing.T, s string) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(s)); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return b.String()
}

// checkRequest checks method, path, query, standard headers and the exact
// body (compared after compacting want).
func checkRequest(t *testing.T, got request, method, path string, query map[string][]string, wantBody string) {
	t.Helper()
	if got.Method != method || got.Path != path {
		t.Errorf("request %s %s, want %s %s", got.Method, got.Path, method, path)
	}
	if query == nil {
		query = map[string][]string{}
	}
	if !reflect.DeepEqual(got.Query, query) {
		t.Errorf("query %v, want %v", got.Query, query)
	}
	if h := got.Header.Get("Authorization"); h != "Apikey lk_test_key" {
		t.Errorf("Authorization %q", h)
	}
	if h := got.Header.Get("Accept"); h != client.MediaType {
		t.Errorf("Accept %q", h)
	}
	if wantBody == "" {
		if got.Body != "" {
			t.Errorf("body %s, want none", got.Body)
		}
		if h := got.Header.Get("Content-Type"); h != "" {
			t.Errorf("Content-Type %q without a body", h)
		}
		return
	}
	if h := got.Header.Get("Content-Type"); h != client.MediaType {
		t.Errorf("Content-Type %q", h)
	}
	if want := compact(t, wantBody); got.Body != want {
		t.Errorf("body\n got %s\nwant %s", got.Body, want)
	}
}

func doc(data string) string { return `{"data":` + data + `}` }

func TestBaseURL(t *testing.T) {
	for _, prefix := range []string{"", "/", "/gateway/licensor", "/gateway/licensor/"} {
		var gotPath string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			gotPath = r.URL.Path
			_, _ = io.WriteString(w, doc(licenseJSON))
		}))
		c := client.New(srv.URL+prefix, "k", client.WithUserAgent("test-agent/1"))
		if _, err := c.License(t.Context(), 42); err != nil {
			t.Errorf("prefix %q: %v", prefix, err)
		}
		want := strings.TrimRight(prefix, "/") + base + "/licenses/42"
		if gotPath != want {
			t.Errorf("prefix %q: path %q, want %q", prefix, gotPath, want)
		}
		srv.Close()
	}
}

func TestRequestOptions(t *testing.T) {
	c, f := serve(t, reply{status: 201, body: doc(licenseJSON)})
	_, err := c.CreateLicense(t.Context(), licensor.LicenseDraft{UserID: "41", ProductID: 7},
		client.WithIdempotencyKey("idem-1"), client.WithRequestID("my-request"))
	if err != nil {
		t.Fatal(err)
	}
	h := f.only().Header
	if got := h.Get("Idempotency-Key"); got != "idem-1" {
		t.Errorf("Idempotency-Key %q", got)
	}
	if got := h.Get("X-Request-Id"); got != "my-request" {
		t.Errorf("X-Request-Id %q", got)
	}
	if got := h.Get("User-Agent"); got != "licensor-client" {
		t.Errorf("User-Agent %q", got)
	}
}

func TestContextCanceled(t *testing.T) {
	c, _ := serve(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.License(ctx, 1)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "GetLicenseById") {
		t.Fatalf("err = %v", err)
	}
	if code := licensor.ErrorCode(err); code != licensor.CodeInternal {
		t.Errorf("ErrorCode = %q, want INTERNAL for a transport error", code)
	}
}
