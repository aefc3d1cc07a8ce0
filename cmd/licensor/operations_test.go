package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/client"
	"github.com/licensor/licensor/internal/testdb"
)

// The procedures of docs/operations.md, each run as the page describes it.

// seedLicenses creates a product and n licenses through the API and
// returns their order ids.
func seedLicenses(t *testing.T, c *client.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("Sports"))
	if err != nil {
		t.Fatal(err)
	}
	var orders []string
	for i := range n {
		order := fmt.Sprintf("seed-%d", i)
		if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prod.ID, OrderID: &order}); err != nil {
			t.Fatal(err)
		}
		orders = append(orders, order)
	}
	return orders
}

// orderIDs lists the order ids of every license a server holds, sorted.
func orderIDs(t *testing.T, c *client.Client) []string {
	t.Helper()
	var ids []string
	for l, err := range c.AllLicenses(context.Background(), client.LicenseQuery{}) {
		if err != nil {
			t.Fatal(err)
		}
		if l.OrderID != nil {
			ids = append(ids, *l.OrderID)
		}
	}
	slices.Sort(ids)
	return ids
}

// TestBackupSQLiteWhileServing: licensor backup copies the database while
// a server writes to it; restored (stop, copy, start) into a fresh
// directory, a new server holds exactly the licenses committed before the
// copy's snapshot, and accepts writes.
func TestBackupSQLiteWhileServing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "licensor.db")
	key := createKey(t, db, "bss", "write")
	p := startServer(t, db)
	c := client.New(p.url, key)
	ctx := context.Background()
	prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("Sports"))
	if err != nil {
		t.Fatal(err)
	}

	// Writers create licenses without pause while the backup runs.
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string]bool{}
		n       atomic.Int64
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				order := fmt.Sprintf("w%d-%d", w, i)
				if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: fmt.Sprint(w), ProductID: prod.ID, OrderID: &order}); err != nil {
					t.Errorf("create during the backup: %v", err)
					return
				}
				mu.Lock()
				created[order] = true
				mu.Unlock()
				n.Add(1)
			}
		}()
	}
	for n.Load() < 50 {
		time.Sleep(10 * time.Millisecond)
	}
	before := n.Load()
	backup := filepath.Join(t.TempDir(), "licensor-backup.db")
	out, errOut, err := cli(t, nil, "backup", "--db", db, "--to", backup)
	after := n.Load()
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, errOut)
	}
	for n.Load() < after+50 && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if !strings.Contains(out, "integrity ok") || !strings.Contains(out, "schema at version") {
		t.Errorf("backup printed %q", out)
	}
	t.Logf("%d licenses before the backup started, %d when it ended, %d in all; %s", before, after, n.Load(), strings.TrimSpace(out))

	// Refusals: an existing file, a missing database, PostgreSQL.
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"backup", "--db", db, "--to", backup}, "already exists", 1},
		{[]string{"backup", "--db", filepath.Join(t.TempDir(), "typo.db"), "--to", backup + ".2"}, "no database at", 1},
		{[]string{"backup", "--db", "postgres://u@db/licensor", "--to", "x.db"}, "pg_dump", 2},
		{[]string{"backup", "--db", db}, "--to is required", 2},
	} {
		if _, _, err := cli(t, nil, c.args...); err == nil || !strings.Contains(err.Error(), c.want) || exitCode(err) != c.code {
			t.Errorf("%v: %v (exit %d), want exit %d mentioning %q", c.args, err, exitCode(err), c.code, c.want)
		}
	}

	// Restore into a fresh directory: copy the file, start a server on it.
	fresh := filepath.Join(t.TempDir(), "licensor.db")
	copyFile(t, backup, fresh)
	q := startServer(t, fresh)
	rc := client.New(q.url, key) // the keys are in the copy too
	restored := orderIDs(t, rc)
	if int64(len(restored)) < before || int64(len(restored)) > after {
		t.Errorf("the copy holds %d licenses; %d were created before the backup began and %d when it ended", len(restored), before, after)
	}
	for _, o := range restored {
		if !created[o] {
			t.Errorf("the copy holds %s, which no writer created", o)
		}
	}
	// Writes go on after the restore, without id clashes.
	order := "after-restore"
	if _, err := rc.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prod.ID, OrderID: &order}); err != nil {
		t.Errorf("create after the restore: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// pgTool finds a PostgreSQL client program: on the PATH, or in Debian's
// /usr/lib/postgresql/*/bin (the newest).
func pgTool(t *testing.T, name string) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(dirs)
	for _, d := range dirs {
		if p := filepath.Join(d, name); fileIsExecutable(p) {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Skipf("%s is not installed", name)
	return ""
}

func fileIsExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode()&0o111 != 0
}

// libpqURL is a test URL as libpq takes it: without search_path, which
// pgx sends as a run-time parameter but libpq refuses in a URL, and that
// schema.
func libpqURL(t *testing.T, pgURL string) (string, string) {
	t.Helper()
	u, err := url.Parse(pgURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	schema := q.Get("search_path")
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// scratchDatabase creates an empty database on the test server, dropped
// at the end of the test, and returns its URL.
func scratchDatabase(t *testing.T) string {
	t.Helper()
	raw := os.Getenv("LICENSOR_POSTGRES_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("licensor_restore_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Skipf("cannot create a database for the restore: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if c, err := pgx.Connect(ctx, raw); err == nil {
			_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(ctx)
		}
	})
	u, _ := url.Parse(raw)
	u.Path = "/" + name
	return u.String()
}

// TestPostgresDumpRestore: pg_dump of a serving database, pg_restore into
// another, and a server started on the restored one with --migrate=false
// (the schema came whole) serves the same licenses and goes on writing.
// The test dumps its own schema (--schema) of the shared test database;
// the page dumps the whole database.
func TestPostgresDumpRestore(t *testing.T) {
	src := testdb.PostgresURL(t)
	pgDump, pgRestore := pgTool(t, "pg_dump"), pgTool(t, "pg_restore")
	key := createKey(t, src, "bss", "write")
	p := startServer(t, src)
	c := client.New(p.url, key)
	want := seedLicenses(t, c, 20)
	slices.Sort(want)

	dump := filepath.Join(t.TempDir(), "licensor.dump")
	srcLibpq, schema := libpqURL(t, src)
	if out, err := exec.Command(pgDump, "--format=custom", "--schema="+schema, "--file="+dump, srcLibpq).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	dst := scratchDatabase(t)
	if out, err := exec.Command(pgRestore, "--no-owner", "--exit-on-error", "--dbname="+dst, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	restoredURL := dst + "&search_path=" + schema
	if !strings.Contains(dst, "?") {
		restoredURL = dst + "?search_path=" + schema
	}
	q := startServer(t, restoredURL, "--migrate=false")
	rc := client.New(q.url, key)
	if got := orderIDs(t, rc); !slices.Equal(got, want) {
		t.Errorf("restored licenses %v, want %v", got, want)
	}
	ctx := context.Background()
	prods, err := rc.Products(ctx, client.ProductQuery{})
	if err != nil || len(prods.Products) != 1 {
		t.Fatalf("restored products: %v %+v", err, prods)
	}
	order := "after-restore"
	lic, err := rc.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prods.Products[0].ID, OrderID: &order})
	if err != nil {
		t.Fatalf("create after the restore: %v", err)
	}
	if lic.ID != int64(len(want))+1 {
		t.Errorf("the first license after the restore has id %d, want %d (the sequences came with the dump)", lic.ID, len(want)+1)
	}
}

// pgCount runs a counting query on the test server.
func pgCount(t *testing.T, ctx context.Context, conn *pgx.Conn, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(ctx, sql, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Getenv("LICENSOR_POSTGRES_URL"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestPostgresPoolBound: two instances with pool_max_conns=4 in their URL
// under 32 concurrent clients never hold more than 4 connections each, as
// pg_stat_activity counts them by the URL's application_name; /metrics
// reports the bound.
func TestPostgresPoolBound(t *testing.T) {
	app := fmt.Sprintf("licensor-pool-%d", time.Now().UnixNano())
	db := testdb.PostgresURL(t) + "&pool_max_conns=4&application_name=" + app
	key := createKey(t, db, "bss", "write") // migrates, as licensor migrate does
	a, b := startServer(t, db, "--migrate=false"), startServer(t, db, "--migrate=false")
	ctx := context.Background()
	prod, _, err := client.New(a.url, key).CreateProduct(ctx, licensor.NewProduct("Sports"))
	if err != nil {
		t.Fatal(err)
	}
	conn := adminConn(t)
	var (
		stop atomic.Bool
		most atomic.Int64
		wg   sync.WaitGroup
	)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for !stop.Load() {
			n := int64(pgCount(t, ctx, conn, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app))
			if n > most.Load() {
				most.Store(n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv := []*process{a, b}[i%2]
			c := client.New(srv.url, key)
			for j := range 15 {
				order := fmt.Sprintf("c%d-%d", i, j)
				if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: fmt.Sprint(i), ProductID: prod.ID, OrderID: &order}); err != nil {
					t.Errorf("create: %v", err)
					return
				}
				if _, err := c.UserLicenses(ctx, fmt.Sprint(i), client.LicenseQuery{}); err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	stop.Store(true)
	<-sampled
	t.Logf("at most %d connections of the two instances at once", most.Load())
	if most.Load() > 8 {
		t.Errorf("two instances with pool_max_conns=4 held %d connections", most.Load())
	}
	if most.Load() < 2 {
		t.Errorf("saw %d connections: the count does not see the instances", most.Load())
	}
	resp, err := http.Get(a.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `licensor_db_pool_max_open{pool="pool"} 4`) {
		t.Errorf("/metrics lacks the pool bound:\n%s", grepLines(string(body), "licensor_db_pool"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPostgresRollingUpgrade: the rolling-upgrade procedure. licensor
// migrate runs while an instance serves and writes; on a schema one
// version ahead of the binary (what the next release's migrate leaves) a
// restarted instance, with and without --migrate=false, serves, writes
// and logs the warning; on a schema one version behind, serve
// --migrate=false refuses to start and names licensor migrate.
func TestPostgresRollingUpgrade(t *testing.T) {
	db := testdb.PostgresURL(t)
	key := createKey(t, db, "bss", "write")
	a := startServer(t, db, "--migrate=false")
	ctx := context.Background()
	c := client.New(a.url, key)
	prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("Sports"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		n    atomic.Int64
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			order := fmt.Sprintf("roll-%d", i)
			if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prod.ID, OrderID: &order}); err != nil {
				t.Errorf("create during the upgrade: %v", err)
				return
			}
			n.Add(1)
		}
	}()
	out, errOut, err := cli(t, map[string]string{"DATABASE_URL": db}, "migrate")
	if err != nil || !strings.Contains(out, "nothing to apply") {
		t.Errorf("migrate beside a serving instance: %v %q %q", err, out, errOut)
	}

	// The next release's migration: a table and a version this binary
	// does not know.
	_, schema := libpqURL(t, db)
	conn := adminConn(t)
	latest := pgCount(t, ctx, conn, `SELECT max(version) FROM `+schema+`.schema_migrations`)
	if _, err := conn.Exec(ctx, `CREATE TABLE `+schema+`.next_release (id BIGINT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO `+schema+`.schema_migrations (version, applied_at) VALUES ($1, 0)`, latest+1); err != nil {
		t.Fatal(err)
	}
	before := n.Load()
	for n.Load() < before+20 && !t.Failed() {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	// An old instance restarting during the roll comes back on the newer
	// schema, with either setting of --migrate.
	for _, extra := range [][]string{{"--migrate=false"}, nil} {
		p := startServer(t, db, extra...)
		order := fmt.Sprintf("after-restart-%d", len(extra))
		if _, err := client.New(p.url, key).CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prod.ID, OrderID: &order}); err != nil {
			t.Errorf("serve %v on a newer schema: %v", extra, err)
		}
		if len(extra) == 0 && !strings.Contains(p.logs.String(), "schema is newer than this program") {
			t.Errorf("serve on a newer schema did not warn:\n%s", p.logs.String())
		}
	}
	if out, _, err := cli(t, map[string]string{"DATABASE_URL": db}, "doctor"); !strings.Contains(out, "upgrade licensor") {
		t.Errorf("doctor on a newer schema: %v\n%s", err, out)
	}

	// A new binary before licensor migrate: an older schema is refused by
	// serve --migrate=false.
	if _, err := conn.Exec(ctx, `DELETE FROM `+schema+`.schema_migrations WHERE version >= $1`, latest); err != nil {
		t.Fatal(err)
	}
	_, _, err = cli(t, nil, "serve", "--db", db, "--migrate=false", "--listen", "127.0.0.1:0")
	if err == nil || !strings.Contains(err.Error(), "run licensor migrate") {
		t.Errorf("serve --migrate=false on an older schema: %v", err)
	}
}

// TestPostgresTLSVerifyFull: licensor migrate and serve reach the test
// server with sslmode=verify-full and the server certificate's CA in
// sslrootcert; the instance's connections are encrypted (pg_stat_ssl); a
// wrong CA and a host the certificate does not name are refused as TLS
// failures. It needs a test server with TLS on and its certificate
// readable (Debian's cluster has the snakeoil certificate for localhost).
func TestPostgresTLSVerifyFull(t *testing.T) {
	db := testdb.PostgresURL(t)
	conn := adminConn(t)
	ctx := context.Background()
	var ssl, certFile string
	if err := conn.QueryRow(ctx, `SELECT current_setting('ssl'), current_setting('ssl_cert_file')`).Scan(&ssl, &certFile); err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(certFile)
	if ssl != "on" || err != nil {
		t.Skipf("the test server has no TLS certificate this test can read (ssl %s, %s: %v)", ssl, certFile, err)
	}
	cert := mustParseCert(t, pemBytes)
	if len(cert.DNSNames) == 0 {
		t.Skip("the server certificate names no host")
	}
	host := cert.DNSNames[0]
	ca := filepath.Join(t.TempDir(), "db-ca.pem")
	if err := os.WriteFile(ca, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(db)
	port := u.Port()
	withTLS := func(host, root string) string {
		v := *u
		v.Host = host + ":" + port
		q := v.Query()
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", root)
		v.RawQuery = q.Encode()
		return v.String()
	}
	app := fmt.Sprintf("licensor-tls-%d", time.Now().UnixNano())
	good := withTLS(host, ca) + "&application_name=" + app
	if out, errOut, err := cli(t, map[string]string{"DATABASE_URL": good}, "migrate"); err != nil {
		t.Skipf("migrate over verify-full to %s: %v %s %s (the server certificate is not self-signed for that host?)", host, err, out, errOut)
	}
	key := createKey(t, good, "bss", "write")
	p := startServer(t, good, "--migrate=false")
	if _, _, err := client.New(p.url, key).CreateProduct(ctx, licensor.NewProduct("Sports")); err != nil {
		t.Fatal(err)
	}
	plain := pgCount(t, ctx, conn, `SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1 AND NOT s.ssl`, app)
	encrypted := pgCount(t, ctx, conn, `SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1 AND s.ssl`, app)
	if plain != 0 || encrypted == 0 {
		t.Errorf("the instance's connections: %d encrypted, %d plain", encrypted, plain)
	}

	otherCA, _ := writeCertPair(t, t.TempDir())
	for _, c := range []struct{ name, url string }{
		{"a CA that did not sign the certificate", withTLS(host, otherCA)},
		{"a host the certificate does not name", withTLS("127.0.0.1", ca)},
	} {
		_, _, err := cli(t, map[string]string{"DATABASE_URL": c.url}, "migrate", "status")
		if err == nil || !strings.Contains(err.Error(), "TLS certificate was refused") {
			t.Errorf("%s: %v, want the TLS refusal named", c.name, err)
		}
	}
}

func mustParseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		t.Skip("the server certificate file is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Skipf("the server certificate does not parse: %v", err)
	}
	return cert
}

// TestPostgresPointInTimeRecovery runs the point-in-time recovery of
// docs/operations.md on a throwaway cluster of its own: initdb with the WAL
// archived by cp, a base backup (pg_basebackup) while licensor serves,
// licenses created after the backup, a target time, one more license, and
// then recovery of the base backup into a second postmaster with
// restore_command and recovery_target_time: the licenses up to the target
// are there, the later one is not. As root it runs PostgreSQL as the
// postgres user.
func TestPostgresPointInTimeRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two PostgreSQL clusters")
	}
	initdb, pgCtl, pgBasebackup := pgTool(t, "initdb"), pgTool(t, "pg_ctl"), pgTool(t, "pg_basebackup")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	work := t.TempDir()
	for d := work; d != filepath.Dir(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
		if strings.HasPrefix(d, os.TempDir()+string(filepath.Separator)) {
			_ = os.Chmod(d, 0o755) // the postgres user must reach work
		}
	}
	archive, data, base := filepath.Join(work, "wal"), filepath.Join(work, "data"), filepath.Join(work, "base")
	if err := os.Mkdir(archive, 0o700); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		for _, d := range []string{work, archive} {
			if err := os.Chown(d, int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	pg := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "LC_ALL=C")
		if cred != nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
		}
		return string(out)
	}
	conf := func(dir string, lines ...string) {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString("\n" + strings.Join(lines, "\n") + "\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	pg(initdb, "--pgdata="+data, "--username=postgres", "--auth=trust", "--no-sync")
	port1, port2 := freePort(t), freePort(t)
	conf(data, "port = "+port1, "listen_addresses = '127.0.0.1'", "unix_socket_directories = '"+work+"'",
		"fsync = off", "wal_level = replica", "archive_mode = on",
		"archive_command = 'test ! -f "+archive+"/%f && cp %p "+archive+"/%f'")
	pg(pgCtl, "--pgdata="+data, "--log="+filepath.Join(work, "data.log"), "--wait", "start")
	stopCluster := func(dir string) {
		c := exec.Command(pgCtl, "--pgdata="+dir, "--mode=immediate", "stop")
		if cred != nil {
			c.SysProcAttr = &syscall.SysProcAttr{Credential: cred} // as the cluster's owner
		}
		_ = c.Run()
	}
	t.Cleanup(func() { stopCluster(data) })
	url1 := "postgres://postgres@127.0.0.1:" + port1 + "/postgres?sslmode=disable"
	key := createKey(t, url1, "bss", "write")
	p := startServer(t, url1)
	c := client.New(p.url, key)
	ctx := context.Background()
	prod, _, err := c.CreateProduct(ctx, licensor.NewProduct("Sports"))
	if err != nil {
		t.Fatal(err)
	}
	create := func(c *client.Client, order string) {
		t.Helper()
		if _, err := c.CreateLicense(ctx, licensor.LicenseDraft{UserID: "41", ProductID: prod.ID, OrderID: &order}); err != nil {
			t.Fatalf("create %s: %v", order, err)
		}
	}
	var want []string
	for i := range 3 {
		create(c, fmt.Sprintf("before-base-%d", i))
		want = append(want, fmt.Sprintf("before-base-%d", i))
	}
	pg(pgBasebackup, "--pgdata="+base, "--wal-method=stream", "--checkpoint=fast", "--host=127.0.0.1", "--port="+port1, "--username=postgres")
	for i := range 3 {
		create(c, fmt.Sprintf("after-base-%d", i))
		want = append(want, fmt.Sprintf("after-base-%d", i))
	}
	conn, err := pgx.Connect(ctx, url1)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var target string
	if err := conn.QueryRow(ctx, `SELECT clock_timestamp()::text`).Scan(&target); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	create(c, "after-target")
	var segment string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_switch_wal())`).Scan(&segment); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		var archived string
		if err := conn.QueryRow(ctx, `SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver`).Scan(&archived); err != nil {
			t.Fatal(err)
		}
		if archived >= segment {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segment %s not archived within a minute (last %q)", segment, archived)
		}
		time.Sleep(100 * time.Millisecond)
	}
	conn.Close(ctx)
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	pg(pgCtl, "--pgdata="+data, "--mode=fast", "--wait", "stop")

	// The recovery, as the page describes it, into the base backup's
	// directory, on another port.
	conf(base, "port = "+port2, "archive_mode = off",
		"restore_command = 'cp "+archive+"/%f %p'",
		"recovery_target_time = '"+target+"'",
		"recovery_target_action = 'promote'")
	signal := filepath.Join(base, "recovery.signal")
	if err := os.WriteFile(signal, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if cred != nil {
		_ = os.Chown(signal, int(cred.Uid), int(cred.Gid))
	}
	pg(pgCtl, "--pgdata="+base, "--log="+filepath.Join(work, "base.log"), "--wait", "start")
	t.Cleanup(func() { stopCluster(base) })
	url2 := "postgres://postgres@127.0.0.1:" + port2 + "/postgres?sslmode=disable"
	conn2, err := pgx.Connect(ctx, url2)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	for deadline := time.Now().Add(60 * time.Second); ; {
		var inRecovery bool
		if err := conn2.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err != nil {
			t.Fatal(err)
		}
		if !inRecovery {
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(work, "base.log"))
			t.Fatalf("still in recovery after a minute:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	q := startServer(t, url2, "--migrate=false")
	rc := client.New(q.url, key)
	slices.Sort(want)
	if got := orderIDs(t, rc); !slices.Equal(got, want) {
		log, _ := os.ReadFile(filepath.Join(work, "base.log"))
		t.Errorf("recovered to %s: licenses %v, want %v\n%s", target, got, want, log)
	}
	create(rc, "after-recovery") // the recovered database takes writes
}
