package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/jsonapi"
	"github.com/licensor/licensor/internal/sqlite"
)

// The hot path's shortcuts (hotpath_bench_test.go measures them) must
// answer exactly what the straightforward code did.

// hotStore is a SQLite store with a key, a product and one license; fail,
// when set, is FindLicenseByID's error.
type hotStore struct {
	licensor.Store
	fail error
}

func (h *hotStore) FindLicenseByID(ctx context.Context, id int64) (*licensor.License, error) {
	if h.fail != nil {
		return nil, h.fail
	}
	return h.Store.FindLicenseByID(ctx, id)
}

func newHotStore(t *testing.T) (store *hotStore, secret string) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hot.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := licensor.Change{Time: 1_750_000_000, Actor: "test"}
	prod := licensor.NewProduct("P")
	if err := db.CreateProduct(ctx, &prod, c); err != nil {
		t.Fatal(err)
	}
	if _, err := db.CreateLicenses(ctx, []licensor.LicenseDraft{{UserID: "41", ProductID: prod.ID}}, c); err != nil {
		t.Fatal(err)
	}
	secret, prefix, hash := licensor.NewAPIKeySecret()
	if err := db.CreateAPIKey(ctx, &licensor.APIKey{Name: "hot", Prefix: prefix, Hash: hash, Scope: licensor.ScopeRead, CreatedAt: c.Time}); err != nil {
		t.Fatal(err)
	}
	return &hotStore{Store: db}, secret
}

func TestAccessLogLine(t *testing.T) {
	store, secret := newHotStore(t)
	var server, access bytes.Buffer
	srv := New(store, Options{
		Logger:    slog.New(slog.NewJSONHandler(&server, nil)),
		AccessLog: slog.New(slog.NewJSONHandler(&access, nil)),
	})
	get := func(path, requestID string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Apikey "+secret)
		if requestID != "" {
			r.Header.Set("X-Request-Id", requestID)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, r)
		return w
	}
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(access.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("access log line %q: %v", l, err)
			}
			out = append(out, m)
		}
		access.Reset()
		return out
	}

	w := get(basePath+"/licenses/1", "req-1")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	got := lines()
	if len(got) != 1 {
		t.Fatalf("%d access lines, want 1", len(got))
	}
	line := got[0]
	want := map[string]any{
		"level": "INFO", "msg": "request", "method": "GET", "path": basePath + "/licenses/1",
		"route": "GET " + basePath + "/licenses/{license_id}", "status": 200.0, "bytes": float64(w.Body.Len()),
		"request_id": "req-1", "remote": "192.0.2.1:1234", "key": "hot",
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if d, ok := line["duration"].(float64); !ok || d <= 0 {
		t.Errorf("access log duration = %v", line["duration"])
	}
	if _, ok := line["time"].(string); !ok {
		t.Errorf("access log time = %v", line["time"])
	}
	if _, ok := line["err"]; ok {
		t.Errorf("a 200 logged an error: %v", line)
	}

	// A made-up id is 24 hex digits, echoed and logged.
	w = get(basePath+"/licenses/1", "")
	id := w.Header().Get("X-Request-Id")
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(id) {
		t.Errorf("generated X-Request-Id %q", id)
	}
	if line := lines()[0]; line["request_id"] != id {
		t.Errorf("logged request_id %v, want %s", line["request_id"], id)
	}

	// A 5xx: at ERROR with the internal error, which the response hides.
	store.fail = errors.New("disk on fire")
	w = get(basePath+"/licenses/1", "req-5xx")
	if w.Code != 500 || strings.Contains(w.Body.String(), "fire") {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	line = lines()[0]
	if line["level"] != "ERROR" || line["err"] != "disk on fire" || line["status"] != 500.0 || line["request_id"] != "req-5xx" {
		t.Errorf("5xx access line: %v", line)
	}
	if server.Len() != 0 {
		t.Errorf("access lines went to the server log: %s", server.String())
	}

	// A key of another shape: no key in the line.
	r := httptest.NewRequest("GET", basePath+"/licenses/1", nil)
	w = httptest.NewRecorder()
	srv.ServeHTTP(w, r)
	if line := lines()[0]; w.Code != 401 || line["key"] != nil || line["status"] != 401.0 {
		t.Errorf("401: %d, line %v", w.Code, line)
	}
}

// TestRequestContext: handlers' contexts derived from the request's
// (timeouts, cancellation) still follow the connection's.
func TestRequestContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	info := &reqInfo{Context: ctx, requestID: "x"}
	child, stop := context.WithTimeout(info, 1<<40)
	defer stop()
	if got, _ := child.Value(infoKey{}).(*reqInfo); got != info {
		t.Fatalf("the request info is not reachable from a derived context")
	}
	cancel()
	<-child.Done()
	if !errors.Is(child.Err(), context.Canceled) {
		t.Errorf("derived context: %v", child.Err())
	}
}

// TestMetricsByRoute: requests are counted by the pattern of the route they
// matched; the resolved observers and their bound are internal/metrics'
// (TestObserversBounded).
func TestMetricsByRoute(t *testing.T) {
	store, secret := newHotStore(t)
	srv := New(store, Options{MetricsOnAPI: true})
	do := func(method, path string) {
		r := httptest.NewRequest(method, path, nil)
		r.Header.Set("Authorization", "Apikey "+secret)
		srv.ServeHTTP(httptest.NewRecorder(), r)
	}
	for range 3 {
		do("GET", basePath+"/licenses/1")
	}
	do("GET", basePath+"/licenses/99")
	// Methods the client invents are one series, "other": each would
	// otherwise be a new series in every scrape.
	const invented = 600 // past the metrics' bound of resolved observers
	for i := range invented {
		do("M"+strconv.Itoa(i), basePath+"/nowhere")
	}
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	text := w.Body.String()
	route := `route="GET /api/license/management/v4/licenses/{license_id}"`
	for _, want := range []string{
		`licensor_http_requests_total{method="GET",` + route + `,status="200"} 3`,
		`licensor_http_requests_total{method="GET",` + route + `,status="404"} 1`,
		`licensor_http_request_duration_seconds_count{method="GET",` + route + `} 4`,
		fmt.Sprintf(`licensor_http_requests_total{method="other",route="/",status="404"} %d`, invented),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, `method="M0"`) {
		t.Errorf("an invented method is a label value of its own")
	}
}

func TestValidRequestIDAgrees(t *testing.T) {
	ref := regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
	inputs := []string{"", "a", "abc-123", "a b", "a\n", strings.Repeat("x", 128), strings.Repeat("x", 129), "é", "a/b", "A.Z_0:9-"}
	for c := range 256 {
		inputs = append(inputs, string([]byte{byte(c)}))
	}
	for _, in := range inputs {
		if got, want := validRequestID(in), ref.MatchString(in); got != want {
			t.Errorf("validRequestID(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestEncodeIsMarshal: the pooled encoder writes json.Marshal's bytes, one
// response after another of different sizes.
func TestEncodeIsMarshal(t *testing.T) {
	stop, order := int64(1_800_000_000), "<order & \"co\">\u2028\xff"
	docs := []any{
		licenseDocument{Data: licenseOut(&licensor.License{ID: 7, UserID: "41", ProductID: 3, Status: licensor.StatusActive, StopDate: &stop, OrderID: &order}, 1_900_000_000)},
		jsonapi.ErrorDocument{Errors: []jsonapi.ErrorObject{{Status: "404", Code: licensor.CodeLicenseNotFound, Detail: "no license 7"}}},
		map[string]string{"status": "ok"},
		licenseListDocument{Data: make([]licenseResource, 300)},
		licenseDocument{},
	}
	for i := range 3 {
		for _, d := range docs {
			want, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			if err := jsonapi.Write(w, 200, d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(w.Body.Bytes(), want) {
				t.Fatalf("round %d: encode wrote\n%s\nwant\n%s", i, w.Body.Bytes(), want)
			}
			if w.Header().Get("Content-Length") != strconv.Itoa(len(want)) || w.Header().Get("Content-Type") != jsonapi.MediaType {
				t.Errorf("headers %v", w.Header())
			}
		}
	}
	// A value that cannot be encoded is the handler's error, and nothing is
	// written.
	w := httptest.NewRecorder()
	if err := jsonapi.Write(w, 200, map[string]any{"x": func() {}}); err == nil || w.Body.Len() != 0 {
		t.Errorf("encode of a func: %v, wrote %q", err, w.Body.String())
	}
}

// randomLicense fills every field of a License, found by reflection (a
// field added later is filled too), with random values: nil or not for
// pointers, and strings that need escaping now and then.
func randomLicense(r *rand.Rand) licensor.License {
	strs := []string{"", "41", "user-7", "EUR", "billing", "<b>&\"x\"</b>", "tab\there", "\u2028\u00e9", "\xff\xfe", "a\\b", "order-1adc0dbe"}
	var l licensor.License
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if r.IntN(3) == 0 {
				return // nil
			}
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem())
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i))
			}
		case reflect.String:
			v.SetString(strs[r.IntN(len(strs))])
		case reflect.Int, reflect.Int64, reflect.Int32:
			v.SetInt(r.Int64N(4_000_000_000) - 1_000_000_000)
		case reflect.Bool:
			v.SetBool(r.IntN(2) == 0)
		default:
			panic("randomLicense: fill a " + v.Kind().String())
		}
	}
	fill(reflect.ValueOf(&l).Elem())
	if r.IntN(2) == 0 {
		l.Status = licensor.StatusActive // and sometimes expired by now
	}
	return l
}

// TestLicenseJSONIsMarshal: the hand-written license documents are
// json.Marshal's bytes.
func TestLicenseJSONIsMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	total := int64(12)
	check := func(name string, doc jsonapi.Appender) {
		t.Helper()
		want, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := doc.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("%s:\n got %s\nwant prefix%s", name, got, want)
		}
		w := httptest.NewRecorder()
		if err := jsonapi.Write(w, 200, doc); err != nil || !bytes.Equal(w.Body.Bytes(), want) {
			t.Fatalf("%s: encode wrote %s (%v), want %s", name, w.Body.Bytes(), err, want)
		}
	}
	for i := range 2000 {
		ls := make([]licenseResource, r.IntN(4))
		for j := range ls {
			l := randomLicense(r)
			ls[j] = licenseOut(&l, 1_750_000_000)
		}
		var one licenseResource
		if len(ls) > 0 {
			one = ls[0]
		}
		var included []productResource
		if i%5 == 0 {
			p := licensor.NewProduct("<Sport> & more")
			p.ID = 3
			included = []productResource{productOut(&p)}
		}
		list := licenseListDocument{Data: ls, Included: included, Links: listLinks{Self: "/x?filter[status]=ACTIVE&a=<b>"}}
		if i%2 == 0 {
			list.Links.Next, list.Meta.Total = "/x?page[after]=abc", &total
		}
		check("license", licenseDocument{Data: one, Included: included})
		check("list", list)
		check("batch", licenseBatchDocument{Data: ls})
	}
	check("nil list", licenseListDocument{})
	check("nil batch", licenseBatchDocument{})
}
