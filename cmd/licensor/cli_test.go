package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/licensor/licensor/internal/testdb"
)

// TestAdminCommandsNeverCreateOrMigrate: only migrate and serve create a
// database or change its schema; the other commands refuse a missing file
// or schema and say which command to run.
func TestAdminCommandsNeverCreateOrMigrate(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "typo.db")
	for _, args := range [][]string{
		{"keys", "list", "--db", typo},
		{"keys", "create", "--name", "x", "--scope", "read", "--db", typo},
		{"keys", "revoke", "x", "--db", typo},
		{"webhooks", "list", "--db", typo},
		{"migrate", "status", "--db", typo},
	} {
		_, _, err := cli(t, nil, args...)
		if err == nil || !strings.Contains(err.Error(), "no database at") || !strings.Contains(err.Error(), "licensor migrate") {
			t.Errorf("%v: err = %v, want no database, run licensor migrate", args, err)
		}
		if _, err := os.Stat(typo); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v created %s", args, typo)
		}
	}

	// An empty file is a SQLite database without the schema.
	empty := filepath.Join(dir, "empty.db")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := cli(t, nil, "keys", "list", "--db", empty)
	if err == nil || !strings.Contains(err.Error(), "no licensor schema: run licensor migrate") {
		t.Errorf("keys list on an empty file: %v", err)
	}
	if out, _, _ := cli(t, nil, "migrate", "status", "--db", empty); !strings.Contains(out, "version 0") {
		t.Errorf("keys list migrated the empty file: %s", out)
	}

	// An old schema (the last migration not applied) is refused, and left old.
	old := filepath.Join(dir, "old.db")
	migrateDB(t, old)
	raw, err := sql.Open("sqlite", old)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	for _, args := range [][]string{{"keys", "list"}, {"webhooks", "list"}, {"serve", "--listen", "127.0.0.1:0", "--migrate=false"}} {
		_, _, err = cli(t, nil, append(args, "--db", old)...)
		if err == nil || !strings.Contains(err.Error(), "run licensor migrate") || !strings.Contains(err.Error(), "the schema is at version") {
			t.Errorf("%v on an old schema: %v", args, err)
		}
	}
	if out, _, _ := cli(t, nil, "migrate", "status", "--db", old); !strings.Contains(out, "pending:   1 migration") {
		t.Errorf("an admin command migrated the old schema: %s", out)
	}

	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		pg := testdb.PostgresURL(t)
		_, _, err := cli(t, nil, "keys", "list", "--db", pg)
		if err == nil || !strings.Contains(err.Error(), "no licensor schema: run licensor migrate") {
			t.Errorf("keys list on an empty PostgreSQL schema: %v", err)
		}
		out, _, err := cli(t, nil, "migrate", "status", "--db", pg)
		if err != nil || !strings.Contains(out, "schema:    version 0") {
			t.Errorf("keys list migrated the PostgreSQL schema: %v\n%s", err, out)
		}
		// serve --migrate=false refuses it too, without migrating.
		_, _, err = cli(t, nil, "serve", "--listen", "127.0.0.1:0", "--migrate=false", "--db", pg)
		if err == nil || !strings.Contains(err.Error(), "no licensor schema") {
			t.Errorf("serve --migrate=false on an empty schema: %v", err)
		}
	}
}

// TestServeChecksFlagsBeforeDatabase: a bad listen address (or TLS pair)
// fails before the database is created or migrated.
func TestServeChecksFlagsBeforeDatabase(t *testing.T) {
	db := filepath.Join(t.TempDir(), "serve.db")
	for _, args := range [][]string{
		{"serve", "--db", db, "--listen", ":99999"},
		{"serve", "--db", db, "--listen", "127.0.0.1:0", "--metrics-listen", "nonsense"},
		{"serve", "--db", db, "--listen", "127.0.0.1:0", "--tls-cert", db + ".crt", "--tls-key", db + ".key"},
	} {
		_, _, err := cli(t, nil, args...)
		if err == nil {
			t.Fatalf("%v: no error", args)
		}
		if _, serr := os.Stat(db); !errors.Is(serr, os.ErrNotExist) {
			t.Fatalf("%v failed (%v) after creating the database", args, err)
		}
	}
}

// TestDatabaseFlagRefusesKeywordDSN: a libpq keyword/value string is
// neither a path nor a URL; it was a SQLite file named after it.
func TestDatabaseFlagRefusesKeywordDSN(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	dsn := "host=db.example user=licensor password=s3cretpw dbname=licensor"
	for _, cmd := range [][]string{{"migrate"}, {"keys", "list"}, {"serve", "--listen", "127.0.0.1:0"}} {
		for _, viaEnv := range []bool{false, true} {
			args, env := append([]string{}, cmd...), map[string]string{}
			if viaEnv {
				env["DATABASE_URL"] = dsn
			} else {
				args = append(args, "--db", dsn)
			}
			out, errOut, err := cli(t, env, args...)
			if err == nil || !strings.Contains(err.Error(), "postgres://USER:PASSWORD@HOST") || exitCode(err) != 2 {
				t.Errorf("%v (env %v): err = %v, want a usage error suggesting the URL form", cmd, viaEnv, err)
			}
			if all := out + errOut + err.Error(); strings.Contains(all, "s3cretpw") {
				t.Errorf("%v: the password is shown: %s", cmd, all)
			}
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("files were created: %v", entries)
	}
}

// TestPasswordNeverShown: the database password appears in no help text,
// default value, error, log line, nor /debug/pprof/cmdline.
func TestPasswordNeverShown(t *testing.T) {
	const secret = "s3cretpw"
	pgURL := "postgres://licensor:" + secret + "@127.0.0.1:1/licensor?sslmode=disable&connect_timeout=1"
	env := map[string]string{"DATABASE_URL": pgURL}
	check := func(what, text string) {
		t.Helper()
		if strings.Contains(text, secret) {
			t.Errorf("%s shows the password:\n%s", what, text)
		}
	}
	for _, args := range [][]string{{"serve", "-h"}, {"migrate", "-h"}, {"keys", "list", "-h"}, {"webhooks", "create", "-h"}, {"migrate", "status", "-h"}} {
		out, errOut, err := cli(t, env, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		check(strings.Join(args, " "), out+errOut)
	}
	for _, args := range [][]string{{"keys", "list"}, {"migrate"}, {"migrate", "status"}, {"keys", "list", "--db", pgURL}, {"serve", "--listen", "127.0.0.1:0", "--log-format", "text"}} {
		out, errOut, err := cli(t, env, args...)
		if err == nil {
			t.Fatalf("%v: connected to a closed port", args)
		}
		check(strings.Join(args, " "), out+errOut+err.Error())
	}
	for _, s := range []string{pgURL, "password=" + secret, "host=x password='" + secret + " x' port=1", "postgres://u@h/d?password=" + secret + "&sslmode=disable"} {
		check("redact("+s+")", redact(s))
	}
	if got := redact("postgres://licensor:" + secret + "@db:5432/licensor"); got != "postgres://licensor:xxxxx@db:5432/licensor" {
		t.Errorf("redact = %s", got)
	}

	// pprof's cmdline handler shows the command line, redacted.
	saved := os.Args
	os.Args = []string{"licensor", "serve", "--db", pgURL, "--db=" + pgURL}
	t.Cleanup(func() { os.Args = saved })
	lns, err := sideListeners(serveConfig{pprofListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	side := sideServers(serveConfig{}, lns, nil, discardLogger(), served)
	defer side[0].Close()
	resp, err := http.Get("http://" + lns[0].ln.Addr().String() + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	check("/debug/pprof/cmdline", string(body))
	if !strings.Contains(string(body), "licensor:xxxxx@127.0.0.1:1") {
		t.Errorf("/debug/pprof/cmdline = %q", body)
	}

}

// TestMigrateSaysWhatItDid: migrate names the migrations it applied, or
// says there were none; migrate status lists the pending ones.
func TestMigrateSaysWhatItDid(t *testing.T) {
	dbs := map[string]string{"sqlite": filepath.Join(t.TempDir(), "m.db")}
	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		dbs["postgres"] = testdb.PostgresURL(t)
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": db}
			d, err := openMigrated(context.Background(), db, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			_, latest, _ := d.SchemaVersion(context.Background())
			d.Close()
			if name == "postgres" {
				// A fresh schema for the "before" state.
				db = testdb.PostgresURL(t)
			} else {
				db = filepath.Join(t.TempDir(), "fresh.db")
				if err := os.WriteFile(db, nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env["DATABASE_URL"] = db
			out, _, err := cli(t, env, "migrate", "status")
			if err != nil || !strings.Contains(out, "version 0") || !strings.Contains(out, "0001_") || !strings.Contains(out, "run licensor migrate") {
				t.Fatalf("status before: %v\n%s", err, out)
			}
			out, _, err = cli(t, env, "migrate")
			if err != nil || !strings.Contains(out, "applied ") || !strings.Contains(out, "0001_") {
				t.Fatalf("first migrate: %v\n%s", err, out)
			}
			if !strings.Contains(out, "schema at version "+itoa(latest)) {
				t.Errorf("first migrate: %s", out)
			}
			out, _, err = cli(t, env, "migrate")
			if err != nil || !strings.Contains(out, "already at version "+itoa(latest)+", nothing to apply") {
				t.Fatalf("second migrate: %v\n%s", err, out)
			}
			out, _, err = cli(t, env, "migrate", "status")
			if err != nil || !strings.Contains(out, "pending:   none") {
				t.Fatalf("status after: %v\n%s", err, out)
			}
		})
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func itoa(n int) string { return strconv.Itoa(n) }

// TestHelpExitsZero: every -h, --help and help prints to standard output
// and succeeds, for the program, each command and each subcommand.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"help"},
		{"serve", "-h"}, {"serve", "--help"}, {"migrate", "-h"}, {"migrate", "status", "-h"},
		{"keys", "-h"}, {"keys", "--help"}, {"keys", "help"}, {"keys", "create", "-h"}, {"keys", "list", "--help"}, {"keys", "revoke", "-h"},
		{"webhooks", "-h"}, {"webhooks", "create", "-h"}, {"webhooks", "list", "-h"}, {"webhooks", "delete", "-h"},
		{"import", "-h"}, {"import", "--help"}, {"import", "legacy", "-h"},
		{"doctor", "-h"}, {"completion", "-h"}, {"config-reference", "-h"}, {"keys", "rotate", "-h"},
	} {
		out, errOut, err := cli(t, nil, args...)
		if err != nil {
			t.Errorf("%v: %v (exit %d)", args, err, exitCode(err))
			continue
		}
		if !strings.Contains(out, "sage") || errOut != "" {
			t.Errorf("%v: stdout %q, stderr %q; want the usage on stdout alone", args, out, errOut)
		}
	}
}

// TestFlagTypoIsOneLine: a mistyped flag is one line of error pointing to
// -h, not the whole flag list.
func TestFlagTypoIsOneLine(t *testing.T) {
	for _, args := range [][]string{{"serve", "--lisen", ":8080"}, {"keys", "list", "--jsn"}, {"migrate", "--dbb", "x"}} {
		out, errOut, err := cli(t, nil, args...)
		if err == nil || exitCode(err) != 2 {
			t.Fatalf("%v: err = %v", args, err)
		}
		if out != "" || errOut != "" {
			t.Errorf("%v printed more than the error:\nstdout %q\nstderr %q", args, out, errOut)
		}
		msg := err.Error()
		if strings.Count(msg, "\n") > 0 || !strings.Contains(msg, "flag provided but not defined") || !strings.Contains(msg, " -h\" for the flags") {
			t.Errorf("%v: error %q", args, msg)
		}
	}
}

// TestConfigReference: docs/configuration.md is the output of
// config-reference, and every serve flag is set by its variable.
func TestConfigReference(t *testing.T) {
	out, _, err := cli(t, nil, "config-reference")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != out {
		t.Errorf("docs/configuration.md differs from the flags: run go run ./cmd/licensor config-reference > docs/configuration.md")
	}

	fs := newFlagSet("serve", nil)
	var cfg serveConfig
	cfg.flags(fs)
	env := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		v := f.DefValue
		if v == "" || v == "[]" {
			v = map[string]string{"trusted-proxy": "10.0.0.0/8", "webhook-allow-cidr": "10.0.0.0/8,192.0.2.0/24", "cors-origin": "https://app.example.com"}[f.Name]
		}
		if v == "" {
			v = "x"
		}
		env[serveEnv(f.Name)] = v
		if !strings.Contains(out, "`"+serveEnv(f.Name)+"`") || !strings.HasPrefix(serveEnv(f.Name), "LICENSOR_") && f.Name != "db" {
			t.Errorf("--%s: variable %s not in the reference", f.Name, serveEnv(f.Name))
		}
	})
	fs2 := newFlagSet("serve", nil)
	var cfg2 serveConfig
	cfg2.flags(fs2)
	if err := parseWithEnv(fs2, nil, func(k string) string { return env[k] }, serveEnv); err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	fs2.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs2.VisitAll(func(f *flag.Flag) {
		if !set[f.Name] {
			t.Errorf("--%s is not set by %s", f.Name, serveEnv(f.Name))
		}
	})
	if len(cfg2.outbox.allowCIDRs) != 2 || len(cfg2.trustedProxies) != 1 {
		t.Errorf("comma-separated variables: %v %v", cfg2.outbox.allowCIDRs, cfg2.trustedProxies)
	}
	// The command line wins over the environment.
	fs3 := newFlagSet("serve", nil)
	var cfg3 serveConfig
	cfg3.flags(fs3)
	if err := parseWithEnv(fs3, []string{"--listen", ":1"}, func(k string) string {
		return map[string]string{"LICENSOR_LISTEN": ":2", "LICENSOR_RATE_LIMIT": "5"}[k]
	}, serveEnv); err != nil {
		t.Fatal(err)
	}
	if cfg3.listen != ":1" || cfg3.rateLimit != 5 {
		t.Errorf("listen %q rate %v", cfg3.listen, cfg3.rateLimit)
	}
	_, _, err = cli(t, map[string]string{"LICENSOR_RATE_LIMIT": "fast"}, "serve")
	if err == nil || !strings.Contains(err.Error(), "LICENSOR_RATE_LIMIT") || exitCode(err) != 2 {
		t.Errorf("a bad variable: %v", err)
	}
}

// TestKeysRotateRevokeReuse: keys rotate prints a new secret and keeps the
// old one working for the grace period (both listed), a second revoke says
// nothing changed, and a revoked name can be used again; checked against
// a running server on each engine.
func TestKeysRotateRevokeReuse(t *testing.T) {
	dbs := map[string]string{"sqlite": filepath.Join(t.TempDir(), "keys.db")}
	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		dbs["postgres"] = testdb.PostgresURL(t)
	}
	for name, db := range dbs {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{"DATABASE_URL": db}
			oldKey := createKey(t, db, "bss", "read")
			p := startServer(t, db)
			status := func(key string) int {
				t.Helper()
				req, _ := http.NewRequest("GET", p.url+"/api/license/management/v4/products", nil)
				req.Header.Set("Authorization", "Apikey "+key)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := status(oldKey); got != 200 {
				t.Fatalf("old key before rotation: %d", got)
			}
			out, errOut, err := cli(t, env, "keys", "rotate", "bss", "--grace", "3s")
			if err != nil {
				t.Fatalf("keys rotate: %v\n%s", err, errOut)
			}
			newKey := strings.TrimSpace(out)
			if !keyPattern.MatchString(newKey) || newKey == oldKey || !strings.Contains(errOut, "works until") {
				t.Fatalf("keys rotate printed %q / %q", out, errOut)
			}
			if a, b := status(oldKey), status(newKey); a != 200 || b != 200 {
				t.Errorf("during the grace period: old %d, new %d; want both 200", a, b)
			}
			out, _, err = cli(t, env, "keys", "list")
			if err != nil || strings.Count(out, "bss ") != 2 || !strings.Contains(out, "rotating") || !strings.Contains(out, "active") {
				t.Errorf("keys list during the grace period: %v\n%s", err, out)
			}
			waitUntil(t, "the old key refused", func() bool { return status(oldKey) == 401 })
			if got := status(newKey); got != 200 {
				t.Errorf("new key after the grace period: %d", got)
			}

			out, _, err = cli(t, env, "keys", "revoke", "bss")
			if err != nil || !strings.HasPrefix(out, "revoked bss") {
				t.Fatalf("revoke: %v %q", err, out)
			}
			out, _, err = cli(t, env, "keys", "revoke", "bss")
			if err != nil || !strings.Contains(out, "already revoked; nothing changed") {
				t.Errorf("second revoke: %v %q", err, out)
			}
			// The name is free again.
			reused := createKey(t, db, "bss", "write")
			waitUntil(t, "the revoked key refused", func() bool { return status(newKey) == 401 })
			if got := status(reused); got != 200 {
				t.Errorf("a new key with a revoked name: %d", got)
			}
			_, _, err = cli(t, env, "keys", "rotate", "nobody")
			if err == nil || !strings.Contains(err.Error(), "no current key named") {
				t.Errorf("rotate unknown: %v", err)
			}
		})
	}
}

// TestDoctor: one line per check, OK/WARN/FAIL, exit status 1 on a FAIL.
func TestDoctor(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "doctor.db")
	out, _, err := cli(t, nil, "doctor", "--db", db)
	if err == nil || exitCode(err) != 1 || !strings.Contains(out, "FAIL  database  no database at") {
		t.Errorf("doctor without a database: %v\n%s", err, out)
	}
	if _, serr := os.Stat(db); !errors.Is(serr, os.ErrNotExist) {
		t.Fatal("doctor created the database")
	}
	migrateDB(t, db)
	out, _, err = cli(t, nil, "doctor", "--db", db)
	if err != nil {
		t.Fatalf("doctor: %v\n%s", err, out)
	}
	for _, want := range []string{"OK    database  SQLite reachable", "OK    schema    version ", "OK    clock", "OK    tls       not configured", "OK    jwt       not configured", "  disk      "} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor lacks %q:\n%s", want, out)
		}
	}

	// A TLS pair that is no pair, and a JWT secret too short, fail.
	cert, key := writeCertPair(t, dir)
	_, otherKey := writeCertPair(t, t.TempDir())
	secret := filepath.Join(dir, "hs256")
	if err := os.WriteFile(secret, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": db, "LICENSOR_TLS_CERT": cert, "LICENSOR_TLS_KEY": otherKey, "LICENSOR_JWT_HS256_SECRET_FILE": secret}
	out, _, err = cli(t, env, "doctor")
	if err == nil || !strings.Contains(err.Error(), "2 checks failed") || !strings.Contains(out, "FAIL  tls") || !strings.Contains(out, "FAIL  jwt") {
		t.Errorf("doctor with a bad pair and secret: %v\n%s", err, out)
	}
	env["LICENSOR_TLS_KEY"] = key
	delete(env, "LICENSOR_JWT_HS256_SECRET_FILE")
	out, _, err = cli(t, env, "doctor")
	if err != nil || !strings.Contains(out, "OK    tls       a valid pair") {
		t.Errorf("doctor with a good pair: %v\n%s", err, out)
	}

	if raw := os.Getenv("LICENSOR_POSTGRES_URL"); raw != "" {
		pg := testdb.PostgresURL(t)
		out, _, err := cli(t, nil, "doctor", "--db", pg)
		if err == nil || !strings.Contains(out, "OK    database  PostgreSQL reachable") || !strings.Contains(out, "FAIL  schema    no licensor schema") {
			t.Errorf("doctor on an empty PostgreSQL schema: %v\n%s", err, out)
		}
		migrateDB(t, pg)
		out, _, err = cli(t, nil, "doctor", "--db", pg)
		if err != nil || !strings.Contains(out, "OK    clock     within ") {
			t.Errorf("doctor on PostgreSQL: %v\n%s", err, out)
		}
	}
}

// writeCertPair writes a self-signed certificate and its key in dir.
func writeCertPair(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "licensor.test"},
		DNSNames: []string{"licensor.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestCompletion: the bash script parses, registers itself, and completes
// commands, subcommands and each command's own flags; zsh gets the same
// through bashcompinit.
func TestCompletion(t *testing.T) {
	bashPath, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	out, _, err := cli(t, nil, "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "licensor.bash")
	if err := os.WriteFile(script, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(bashPath, "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, b)
	}
	complete := func(line ...string) string {
		t.Helper()
		words := make([]string, len(line))
		for i, w := range line {
			words[i] = strconv.Quote(w)
		}
		prog := "source " + script + "\ncomplete -p licensor\nCOMP_WORDS=(" + strings.Join(words, " ") + ")\nCOMP_CWORD=" + strconv.Itoa(len(line)-1) + "\n_licensor\necho \"${COMPREPLY[*]}\""
		b, err := exec.Command(bashPath, "-c", prog).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", line, err, b)
		}
		return string(b)
	}
	for _, c := range []struct {
		line []string
		want []string
	}{
		{[]string{"licensor", ""}, []string{"complete -o default -F _licensor licensor", "serve", "doctor", "keys", "completion"}},
		{[]string{"licensor", "keys", "r"}, []string{"rotate revoke"}},
		{[]string{"licensor", "keys", "rotate", "--"}, []string{"--db --grace"}},
		{[]string{"licensor", "keys", "--db", "x.db", "create", "--sc"}, []string{"--scope"}},
		{[]string{"licensor", "serve", "--tls-"}, []string{"--tls-cert --tls-key"}},
		{[]string{"licensor", "migrate", ""}, []string{"status --db"}},
		{[]string{"licensor", "completion", ""}, []string{"bash zsh"}},
	} {
		got := complete(c.line...)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("completing %q: %q lacks %q", c.line, got, w)
			}
		}
	}
	zsh, _, err := cli(t, nil, "completion", "zsh")
	if err != nil || !strings.HasPrefix(zsh, "#compdef licensor\n") || !strings.Contains(zsh, "bashcompinit") || !strings.Contains(zsh, out) {
		t.Errorf("completion zsh: %v\n%.200s", err, zsh)
	}
	if _, _, err := cli(t, nil, "completion", "fish"); err == nil || exitCode(err) != 2 {
		t.Errorf("completion fish: %v", err)
	}
}
