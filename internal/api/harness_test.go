package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/testdb"
)

const base = "/api/license/management/v4"

// engine is a storage engine under test (SQLite always, PostgreSQL when
// configured; see testdb).
type engine = testdb.Engine

func engines(t *testing.T) []engine { return testdb.Engines(t) }

// forEachEngine runs f as a subtest per engine.
func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) { testdb.ForEach(t, f) }

// env is a running server with a write key and a read key.
type env struct {
	t        *testing.T
	store    licensor.Store
	srv      *httptest.Server
	api      *api.Server
	writeKey string
	readKey  string
	clock    *clock
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func newEnv(t *testing.T, e engine, opts ...func(*api.Options)) *env {
	t.Helper()
	store := e.Open(t)
	clk := &clock{now: time.Unix(1_750_000_000, 0)}
	o := api.Options{Now: clk.Now, KeyCacheTTL: time.Nanosecond}
	if en, ok := store.(interface{ Engine() licensor.Engine }); ok {
		o.Engine = en.Engine()
	}
	for _, f := range opts {
		f(&o)
	}
	srv := api.New(store, o)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	en := &env{t: t, store: store, srv: hs, api: srv, clock: clk}
	en.writeKey = en.createKey("writer", licensor.ScopeWrite, nil)
	en.readKey = en.createKey("reader", licensor.ScopeRead, nil)
	return en
}

func (en *env) createKey(name string, scope licensor.Scope, mutate func(*licensor.APIKey)) string {
	en.t.Helper()
	secret, prefix, hash := licensor.NewAPIKeySecret()
	k := licensor.APIKey{Name: name, Prefix: prefix, Hash: hash, Scope: scope, CreatedAt: en.clock.Now().Unix()}
	if mutate != nil {
		mutate(&k)
	}
	if err := en.store.CreateAPIKey(context.Background(), &k); err != nil {
		en.t.Fatal(err)
	}
	return secret
}

// response is a received response whose body was read.
type response struct {
	*http.Response
	body []byte
}

func (r *response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not JSON: %v: %s", err, r.body)
	}
	return m
}

// errorCodes lists the codes of a JSON:API error document.
func (r *response) errorCodes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("not an error document: %s", r.body)
	}
	var codes []string
	for _, e := range doc.Errors {
		codes = append(codes, e.Code)
	}
	return codes
}

type req struct {
	method, path string
	body         any // string, []byte or a value to marshal
	key          string
	header       map[string]string
	contentType  string // default application/vnd.api+json when there is a body
}

// do sends r with the write key unless r.key says otherwise ("-" for
// none), and validates the response against the OpenAPI document.
func (en *env) do(r req) *response {
	en.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			en.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	hr, err := http.NewRequest(r.method, en.srv.URL+r.path, body)
	if err != nil {
		en.t.Fatal(err)
	}
	switch r.key {
	case "":
		hr.Header.Set("Authorization", "Apikey "+en.writeKey)
	case "-":
	default:
		hr.Header.Set("Authorization", "Apikey "+r.key)
	}
	if body != nil {
		ct := r.contentType
		if ct == "" {
			ct = "application/vnd.api+json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	resp, err := en.srv.Client().Do(hr)
	if err != nil {
		en.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		en.t.Fatal(err)
	}
	out := &response{Response: resp, body: b}
	validateResponse(en.t, hr, out)
	return out
}

// must sends r and fails unless the status is want.
func (en *env) must(want int, r req) *response {
	en.t.Helper()
	resp := en.do(r)
	if resp.StatusCode != want {
		en.t.Fatalf("%s %s: status %d, want %d; body: %s", r.method, r.path, resp.StatusCode, want, resp.body)
	}
	return resp
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specDoc    *openapi3.T
	specErr    error
)

func loadSpec() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		b, err := os.ReadFile("openapi.json")
		if err != nil {
			specErr = err
			return
		}
		loader := openapi3.NewLoader()
		specDoc, specErr = loader.LoadFromData(b)
		if specErr != nil {
			return
		}
		if specErr = specDoc.Validate(context.Background()); specErr != nil {
			return
		}
		specRouter, specErr = legacy.NewRouter(specDoc)
	})
	return specDoc, specRouter, specErr
}

// validateResponse checks a response against the OpenAPI document: its
// route must be described, and its status, headers and body must match.
func validateResponse(t *testing.T, hr *http.Request, resp *response) {
	t.Helper()
	_, router, err := loadSpec()
	if err != nil {
		t.Fatalf("load OpenAPI document: %v", err)
	}
	// Route lookup ignores the host: the document's server is "/".
	lookup := hr.Clone(context.Background())
	lookup.URL = &url.URL{Path: hr.URL.Path, RawQuery: hr.URL.RawQuery}
	lookup.Host = ""
	if resp.StatusCode == http.StatusMethodNotAllowed {
		return // the mux's answer for a method no operation has
	}
	route, params, err := router.FindRoute(lookup)
	if err != nil {
		if resp.StatusCode == http.StatusNotFound {
			return // not a route of the API: nothing to validate against
		}
		t.Fatalf("%s %s: no route in the OpenAPI document: %v", hr.Method, hr.URL.Path, err)
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: lookup, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(resp.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %s → %d does not match the OpenAPI document: %v\nbody: %s", hr.Method, hr.URL.String(), resp.StatusCode, err, resp.body)
	}
}
