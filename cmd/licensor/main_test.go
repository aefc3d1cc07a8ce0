package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/sqlite"
	"github.com/licensor/licensor/internal/testdb"
)

// cli runs the program in-process as a user would, returning its output.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err = run(context.Background(), args, getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

var keyPattern = regexp.MustCompile(`^lk_[a-z2-7]{8}_[a-z2-7]{32}$`)

func TestKeysCommands(t *testing.T) {
	dbPath := filepath.Join(t.TempDir(), "keys.db")
	env := map[string]string{"DATABASE_URL": dbPath}
	migrateDB(t, dbPath)

	out, errOut, err := cli(t, env, "keys", "create", "--name", "bss-1", "--scope", "write", "--allow", "10.0.0.0/8", "--allow", "2001:db8::/32", "--expires", "P30D")
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	secret := strings.TrimSpace(out)
	if !keyPattern.MatchString(secret) {
		t.Fatalf("keys create printed %q, want one key", out)
	}
	if !strings.Contains(errOut, "shown only this once") {
		t.Errorf("no warning that the key is shown once: %s", errOut)
	}
	if _, _, err := cli(t, env, "keys", "create", "--name", "reader", "--scope", "read"); err != nil {
		t.Fatal(err)
	}

	out, _, err = cli(t, env, "keys", "list")
	if err != nil {
		t.Fatal(err)
	}
	prefix := secret[:11]
	for _, want := range []string{"NAME", "LAST USED", "bss-1", prefix, "write", "10.0.0.0/8,2001:db8::/32", "reader", "read", "any", "never"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret[12:]) {
		t.Errorf("keys list shows the secret:\n%s", out)
	}

	if _, _, err := cli(t, env, "keys", "revoke", "bss-1"); err != nil {
		t.Fatal(err)
	}
	out, _, err = cli(t, env, "keys", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var views []keyView
	if err := json.Unmarshal([]byte(out), &views); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	if len(views) != 2 || views[0].RevokedAt == nil || views[1].RevokedAt != nil || views[0].ExpiresAt == nil {
		t.Errorf("after revoke: %+v", views)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no name", []string{"keys", "create", "--scope", "read"}, "--name is required", 2},
		{"bad scope", []string{"keys", "create", "--name", "x", "--scope", "admin"}, "--scope must be read or write", 2},
		{"bad cidr", []string{"keys", "create", "--name", "x", "--scope", "read", "--allow", "10.0.0.0/33"}, "not a CIDR", 2},
		{"bad expiry", []string{"keys", "create", "--name", "x", "--scope", "read", "--expires", "soon"}, "neither a duration", 2},
		{"taken name", []string{"keys", "create", "--name", "reader", "--scope", "read"}, "is in use", 1},
		{"revoke unknown", []string{"keys", "revoke", "nobody"}, "no key named", 1},
		{"unknown command", []string{"frobnicate"}, "unknown command", 2},
		{"bad database URL", []string{"keys", "list", "--db", "mysql://x"}, "unsupported database URL", 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := cli(t, env, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
			if got := exitCode(err); got != c.code {
				t.Errorf("exit code %d, want %d", got, c.code)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	got := redact("postgres://licensor:s3cret@db:5432/licensor?sslmode=disable")
	if strings.Contains(got, "s3cret") {
		t.Errorf("redact kept the password: %s", got)
	}
}

// binary is the licensor command built once for the process tests.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func licensorBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "licensor-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "licensor")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// process is a running licensor serve.
type process struct {
	cmd  *exec.Cmd
	url  string
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServer starts the built binary on a free port and waits for it to
// listen.
func startServer(t *testing.T, db string, extra ...string) *process {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--db", db}, extra...)
	cmd := exec.Command(licensorBinary(t), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, logs: &syncBuffer{}}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			p.logs.Write([]byte(line + "\n"))
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "licensor listening" {
				addr <- rec.Addr
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			_ = cmd.Wait()
			t.Fatalf("licensor serve exited before listening:\n%s", p.logs.String())
		}
		p.url = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatalf("licensor serve did not start:\n%s", p.logs.String())
	}
	return p
}

func createKey(t *testing.T, db, name, scope string) string {
	t.Helper()
	migrateDB(t, db)
	out, errOut, err := cli(t, map[string]string{"DATABASE_URL": db}, "keys", "create", "--name", name, "--scope", scope)
	if err != nil {
		t.Fatalf("keys create: %v\n%s", err, errOut)
	}
	return strings.TrimSpace(out)
}

// migrateDB creates the database and its schema, as an operator does
// before the admin commands.
func migrateDB(t *testing.T, db string) {
	t.Helper()
	if _, errOut, err := cli(t, map[string]string{"DATABASE_URL": db}, "migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errOut)
	}
}

// TestServeEndToEnd runs the binary as an operator would and drives it with
// the Go client: the README's walkthrough, then a graceful shutdown with a
// request in flight.
func TestServeEndToEnd(t *testing.T) {
	db := filepath.Join(t.TempDir(), "licensor.db")
	key := createKey(t, db, "bss", "write")
	p := startServer(t, db)
	ctx := context.Background()
	c := client.New(p.url, key)

	price, cur := int64(999), "EUR"
	prod := licensor.NewProduct("Sports")
	prod.PriceAmount, prod.PriceCurrency, prod.LicensePeriod = &price, &cur, "P1M"
	prod.Channels = licensor.Channels{licensor.ServiceLive: {"espn", "eurosport"}}
	created, etag, err := c.CreateProduct(ctx, prod)
	if err != nil {
		t.Fatal(err)
	}
	if etag == "" || created.ID == 0 {
		t.Fatalf("CreateProduct: %+v, etag %q", created, etag)
	}
	order := "order-1"
	lic, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: created.ID, OrderID: &order})
	if err != nil {
		t.Fatal(err)
	}
	if lic.PriceAmount == nil || *lic.PriceAmount != 999 || lic.StopDate == nil || lic.Status != licensor.StatusActive {
		t.Errorf("license defaults: %+v", lic)
	}
	_, err = c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "42", ProductID: created.ID, OrderID: &order})
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code() != licensor.CodeOrderIDConflict {
		t.Fatalf("duplicate order: %v", err)
	}
	if id, ok := cerr.ExistingID(); !ok || id != lic.ID {
		t.Errorf("ExistingID = %d, %v; want %d", id, ok, lic.ID)
	}
	page, err := c.UserLicenses(ctx, "41", client.LicenseQuery{})
	if err != nil || len(page.Licenses) != 1 {
		t.Fatalf("UserLicenses: %v, %+v", err, page)
	}
	if ents, _, err := c.UserEntitlements(ctx, "41", 0); err != nil || ents == nil {
		t.Fatalf("UserEntitlements: %v, %+v", err, ents)
	}

	// Graceful shutdown: a request whose body is still arriving when
	// SIGTERM comes completes, then the process exits 0.
	pr, pw := io.Pipe()
	hreq, _ := http.NewRequest("POST", p.url+"/api/license/management/v4/products", pr)
	hreq.Header.Set("Authorization", "Apikey "+key)
	hreq.Header.Set("Content-Type", "application/vnd.api+json")
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Errorf("in-flight request failed: %v", err)
			done <- nil
			return
		}
		done <- resp
	}()
	if _, err := pw.Write([]byte(`{"data":{"type":"Product",`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the request is now being read by the server
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	_, _ = pw.Write([]byte(`"attributes":{"title":"Late"}}}`))
	pw.Close()
	if resp := <-done; resp == nil || resp.StatusCode != http.StatusCreated {
		t.Errorf("in-flight request did not complete: %+v", resp)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("licensor serve exited with %v after SIGTERM\n%s", err, p.logs.String())
	}
	logs := p.logs.String()
	for _, want := range []string{`"msg":"request"`, `"status":201`, `"request_id"`, `"msg":"stopped"`, `hot users saved`} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(logs, key) || strings.Contains(logs, key[12:]) {
		t.Errorf("the API key appears in the log")
	}
	// The stop saved the user checked, for the next instance's warm-up.
	store, err := sqlite.Open(ctx, db, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if users, _, err := store.HotUsers(ctx, 10); err != nil || len(users) != 1 || users[0] != "41" {
		t.Errorf("hot users saved at SIGTERM: %v, %v; want [41]", users, err)
	}
}

// TestTwoInstancesOnePostgres starts two server processes on one
// PostgreSQL database and races 50 creates of one order_id across them.
func TestTwoInstancesOnePostgres(t *testing.T) {
	raw := os.Getenv("LICENSOR_POSTGRES_URL")
	if raw == "" {
		if os.Getenv("LICENSOR_POSTGRES_REQUIRED") == "1" {
			t.Fatal("LICENSOR_POSTGRES_REQUIRED=1 but LICENSOR_POSTGRES_URL is not set")
		}
		t.Skip("LICENSOR_POSTGRES_URL not set")
	}
	db := testdb.PostgresURL(t)
	key := createKey(t, db, "bss", "write")
	a, b := startServer(t, db), startServer(t, db)
	ctx := context.Background()
	prod, _, err := client.New(a.url, key).CreateProduct(ctx, licensor.NewProduct("Race"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	var wg sync.WaitGroup
	results := make([]error, n)
	ids := make([]int64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := a
			if i%2 == 1 {
				srv = b
			}
			order := "same-order"
			l, err := client.New(srv.url, key).CreateLicense(ctx, licensor.LicenseDraft{UserID: fmt.Sprint(i), ProductID: prod.ID, OrderID: &order})
			results[i] = err
			if err == nil {
				ids[i] = l.ID
			}
		}()
	}
	wg.Wait()
	var winner int64
	wins := 0
	for i, err := range results {
		if err == nil {
			wins++
			winner = ids[i]
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates succeeded, want exactly 1: %v", wins, results)
	}
	for _, err := range results {
		if err == nil {
			continue
		}
		var cerr *client.Error
		if !errors.As(err, &cerr) || cerr.Code() != licensor.CodeOrderIDConflict {
			t.Errorf("loser got %v, want ORDER_ID_CONFLICT", err)
			continue
		}
		if id, _ := cerr.ExistingID(); id != winner {
			t.Errorf("existing_id %d, want %d", id, winner)
		}
	}
	page, err := client.New(b.url, key).Licenses(ctx, client.LicenseQuery{OrderID: "same-order", Count: true})
	if err != nil || page.Total == nil || *page.Total != 1 {
		t.Errorf("licenses with the order id: %v %+v", err, page)
	}
}
