package faulttest

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", to inspect PostgreSQL
	_ "modernc.org/sqlite"             // database/sql driver "sqlite", to inspect SQLite

	"github.com/licensor/licensor/internal/testdb"
)

const base = "/api/license/management/v4"

// The licensor binary and the SQLite checker (testdata/sqlitecheck), built
// once by TestMain, without the race detector.
var binPath, sqliteCheckPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "licensor-faulttest")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "licensor")
	sqliteCheckPath = filepath.Join(dir, "sqlitecheck")
	for bin, pkg := range map[string]string{binPath: "github.com/licensor/licensor/cmd/licensor", sqliteCheckPath: "./testdata/sqlitecheck"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", pkg, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// engine makes fresh databases of one kind.
type engine struct {
	name string
	// newDB returns the --db value of a fresh, empty database.
	newDB func(t *testing.T) string
}

// engines are SQLite always and PostgreSQL when LICENSOR_POSTGRES_URL is
// set (required with LICENSOR_POSTGRES_REQUIRED=1, as in CI).
func engines(t *testing.T) []engine {
	es := []engine{{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "licensor.db") }}}
	if raw := postgresURL(t, false); raw != "" {
		es = append(es, engine{"postgres", func(t *testing.T) string { return testdb.PostgresURL(t) }})
	}
	return es
}

func forEachEngine(t *testing.T, f func(t *testing.T, e engine)) {
	for _, e := range engines(t) {
		t.Run(e.name, func(t *testing.T) { f(t, e) })
	}
}

// postgresURL is LICENSOR_POSTGRES_URL. When it is not set the test is
// skipped if need is true, or "" is returned; with
// LICENSOR_POSTGRES_REQUIRED=1 a missing URL fails the test.
func postgresURL(t *testing.T, need bool) string {
	t.Helper()
	raw := os.Getenv("LICENSOR_POSTGRES_URL")
	if raw == "" {
		if os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1" {
			t.Fatal("LICENSOR_POSTGRES_REQUIRED=1 but LICENSOR_POSTGRES_URL is not set")
		}
		if need {
			t.Skip("LICENSOR_POSTGRES_URL not set")
		}
	}
	return raw
}

// openSQL opens the database behind a --db value directly, to inspect it.
func openSQL(t *testing.T, db string) *sql.DB {
	t.Helper()
	var (
		conn *sql.DB
		err  error
	)
	if strings.HasPrefix(db, "postgres://") {
		conn, err = sql.Open("pgx", db)
	} else {
		conn, err = sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// logBuffer collects a process's standard error.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// records returns the JSON log records with the given message ("" for all).
func (l *logBuffer) records(msg string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && (msg == "" || rec["msg"] == msg) {
			out = append(out, rec)
		}
	}
	return out
}

// server is a running licensor serve process.
type server struct {
	cmd    *exec.Cmd
	url    string
	logs   *logBuffer
	exited chan struct{} // closed when the process has exited
}

// startServer starts the binary on a free port of 127.0.0.1 and waits until
// it listens. The process is killed when the test ends.
func startServer(t *testing.T, db string, extra ...string) *server {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	s := &server{cmd: cmd, logs: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.kill)
	deadline := time.After(60 * time.Second)
	for {
		for _, rec := range s.logs.records("licensor listening") {
			if addr, ok := rec["addr"].(string); ok {
				s.url = "http://" + addr
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("licensor serve exited before listening:\n%s", s.logs.String())
		case <-deadline:
			t.Fatalf("licensor serve did not start:\n%s", s.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL and waits for the process to go.
func (s *server) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(60 * time.Second):
		t.Errorf("licensor serve did not stop after SIGTERM")
		s.kill()
	}
}

// cli runs a licensor command against db.
func cli(t *testing.T, db string, args ...string) (stdout string, err error) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+db)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("licensor %s: %v\n%s", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), nil
}

// createKey creates an API key with the CLI and returns its secret,
// creating the database first (the admin commands never create one).
func createKey(t *testing.T, db, name, scope string) string {
	t.Helper()
	if _, err := cli(t, db, "migrate"); err != nil {
		t.Fatal(err)
	}
	out, err := cli(t, db, "keys", "create", "--name", name, "--scope", scope)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// httpClient is shared by the tests; its timeout bounds any hang.
var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// result is a response whose body was read, or the error of the attempt.
type result struct {
	status  int
	header  http.Header
	body    []byte
	err     error
	elapsed time.Duration
}

// call sends one request with the API key (none when key is "") and reads
// the whole response.
func call(ctx context.Context, method, u, key string, body []byte, header map[string]string) result {
	if body == nil {
		return callReader(ctx, method, u, key, nil, header)
	}
	return callReader(ctx, method, u, key, bytes.NewReader(body), header)
}

// callReader is call with the body as a reader (sent chunked unless it is
// a *bytes.Reader).
func callReader(ctx context.Context, method, u, key string, body io.Reader, header map[string]string) result {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return result{err: err}
	}
	if key != "" {
		req.Header.Set("Authorization", "Apikey "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return result{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, header: resp.Header, body: b, err: err, elapsed: time.Since(start)}
}

// codes lists the error codes of a JSON:API error document.
func (r result) codes() []string {
	var doc struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	_ = json.Unmarshal(r.body, &doc)
	var out []string
	for _, e := range doc.Errors {
		out = append(out, e.Code)
	}
	return out
}

func (r result) String() string {
	if r.err != nil {
		return "error: " + r.err.Error()
	}
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// mustCall sends a request and fails the test unless the status is want.
func mustCall(t *testing.T, want int, method, u, key string, body []byte, header map[string]string) result {
	t.Helper()
	r := call(context.Background(), method, u, key, body, header)
	if r.err != nil || r.status != want {
		t.Fatalf("%s %s: %s; want %d", method, u, r, want)
	}
	return r
}

// createProduct creates a product and returns its id.
func createProduct(t *testing.T, s *server, key string) string {
	t.Helper()
	r := mustCall(t, 201, "POST", s.url+base+"/products", key,
		[]byte(`{"data":{"type":"Product","attributes":{"title":"Fault","price_currency_amount":999,"price_currency_iso4217":"EUR","license_period":"P1M"}}}`), nil)
	var doc struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil || doc.Data.ID == "" {
		t.Fatalf("create product: %s", r)
	}
	return doc.Data.ID
}

// licenseJSON is one License resource object.
func licenseJSON(user, product, orderID string) string {
	return fmt.Sprintf(`{"type":"License","attributes":{"order_id":%q},"relationships":{"user":{"data":{"type":"User","id":%q}},"product":{"data":{"type":"Product","id":%q}}}}`,
		orderID, user, product)
}

// batchBody is a batch_create document of n licenses whose order ids are
// prefix-0000, prefix-0001, ...
func batchBody(prefix, product string, n int) []byte {
	var b strings.Builder
	b.WriteString(`{"data":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(licenseJSON(fmt.Sprintf("u%d", i), product, fmt.Sprintf("%s-%04d", prefix, i)))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// waitFor polls cond every 50ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkSQLite runs SQLite's integrity and foreign key checks on a licensor
// database file, failing the test unless both pass, and returns the number
// of live licenses per 9-character order id prefix.
func checkSQLite(t *testing.T, path string) map[string]int {
	t.Helper()
	out, err := exec.Command(sqliteCheckPath, path).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("sqlitecheck: %v\n%s", err, stderr)
	}
	var r struct {
		Integrity  string         `json:"integrity"`
		ForeignKey int            `json:"foreign_key_violations"`
		Counts     map[string]int `json:"counts"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("sqlitecheck: %v: %s", err, out)
	}
	if r.Integrity != "ok" || r.ForeignKey != 0 {
		t.Fatalf("SQLite integrity_check: %q; %d foreign key violations", r.Integrity, r.ForeignKey)
	}
	return r.Counts
}
