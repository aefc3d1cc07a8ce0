package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"path/filepath"
	"time"
)

// doctor's verdicts.
const (
	checkOK   = "OK"
	checkWarn = "WARN"
	checkFail = "FAIL"
)

// errDoctorFailed is doctor's exit status 1 when a check failed.
type doctorFailed struct{ n int }

func (e doctorFailed) Error() string {
	return fmt.Sprintf("%d check%s failed", e.n, plural(e.n))
}

// runDoctor checks what an operator checks first, with serve's own
// configuration (the same flags and environment): the database, its
// schema, the clocks, the TLS pair, the JWT keys and the disk. One line
// per check; exit status 1 when one fails.
func runDoctor(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	var cfg serveConfig
	cfg.flags(fs)
	if err := parseWithEnv(fs, args, getenv, serveEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("doctor takes serve's flags, no arguments; got %q", fs.Args())}
	}
	failed := 0
	report := func(verdict, what, format string, a ...any) {
		if verdict == checkFail {
			failed++
		}
		fmt.Fprintf(stdout, "%-4s  %-8s  %s\n", verdict, what, redact(fmt.Sprintf(format, a...)))
	}

	doctorDatabase(ctx, cfg, stderr, report)
	doctorTLS(cfg, report)
	if cfg.endUser.secretFile == "" && cfg.endUser.jwksFile == "" && getenv("LICENSOR_JWT_HS256_SECRET") == "" {
		report(checkOK, "jwt", "not configured (the end-user routes answer 404)")
	} else if err := cfg.endUser.load(getenv); err != nil {
		report(checkFail, "jwt", "%v", err)
	} else {
		report(checkOK, "jwt", "end-user token keys load")
	}
	if failed > 0 {
		return doctorFailed{failed}
	}
	return nil
}

func doctorDatabase(ctx context.Context, cfg serveConfig, stderr io.Writer, report func(verdict, what, format string, a ...any)) {
	t, err := parseDB(cfg.db)
	if err != nil {
		report(checkFail, "database", "%v", err)
		return
	}
	if f := t.file(); f != "" {
		if err := fileExists(f); err != nil {
			report(checkFail, "database", "%v", err)
			doctorDisk(f, report)
			return
		}
		defer doctorDisk(f, report)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	d, err := t.open(ctx, quietLogger(stderr), true)
	if err != nil {
		report(checkFail, "database", "%v", err)
		return
	}
	defer d.Close()
	engine := "SQLite"
	if t.postgres {
		engine = "PostgreSQL"
	}
	report(checkOK, "database", "%s reachable: %s", engine, t.dsn)

	current, latest, err := d.SchemaVersion(ctx)
	pending, perr := d.PendingMigrations(ctx)
	switch {
	case err != nil || perr != nil:
		report(checkFail, "schema", "cannot read the schema version: %v", err)
	case current == 0:
		report(checkFail, "schema", "no licensor schema: run licensor migrate (or start licensor serve, which migrates)")
	case current > latest:
		report(checkWarn, "schema", "version %d is newer than this licensor (%d): upgrade licensor", current, latest)
	case len(pending) > 0:
		verdict := checkWarn
		if !cfg.migrate {
			verdict = checkFail // serve --migrate=false refuses to start
		}
		report(verdict, "schema", "version %d, %d migration%s pending: run licensor migrate (serve applies them unless --migrate=false)", current, len(pending), plural(len(pending)))
	default:
		report(checkOK, "schema", "version %d, current", current)
	}

	type clocked interface {
		Clock(ctx context.Context) (time.Time, error)
	}
	now := time.Now()
	if now.Year() < 2024 {
		report(checkFail, "clock", "this machine's clock says %s: set it (NTP)", now.UTC().Format(time.RFC3339))
		return
	}
	c, ok := d.(clocked)
	if !ok {
		report(checkOK, "clock", "%s (SQLite uses this machine's clock)", now.UTC().Format(time.RFC3339))
		return
	}
	before := time.Now()
	dbNow, err := c.Clock(ctx)
	after := time.Now()
	if err != nil {
		report(checkFail, "clock", "cannot read the database's clock: %v", err)
		return
	}
	skew := dbNow.Sub(before.Add(after.Sub(before) / 2))
	abs := skew.Abs().Round(time.Millisecond)
	switch {
	case abs > time.Minute:
		report(checkFail, "clock", "this machine and the database differ by %v: expiry and last-use times disagree between instances; fix NTP", abs)
	case abs > 2*time.Second:
		report(checkWarn, "clock", "this machine and the database differ by %v (more than 2s): check NTP", abs)
	default:
		report(checkOK, "clock", "within %v of the database's", max(abs, time.Millisecond))
	}
}

func doctorTLS(cfg serveConfig, report func(verdict, what, format string, a ...any)) {
	switch {
	case cfg.tlsCert == "" && cfg.tlsKey == "":
		report(checkOK, "tls", "not configured (plain HTTP; terminate TLS at a proxy)")
		return
	case cfg.tlsCert == "" || cfg.tlsKey == "":
		report(checkFail, "tls", "--tls-cert and --tls-key go together")
		return
	}
	pair, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
	if err != nil {
		report(checkFail, "tls", "%s and %s: %v", cfg.tlsCert, cfg.tlsKey, err)
		return
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		report(checkFail, "tls", "%s: %v", cfg.tlsCert, err)
		return
	}
	left := time.Until(leaf.NotAfter)
	switch {
	case left <= 0:
		report(checkFail, "tls", "the certificate expired on %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case time.Now().Before(leaf.NotBefore):
		report(checkFail, "tls", "the certificate is not valid before %s", leaf.NotBefore.UTC().Format(time.RFC3339))
	case left < 14*24*time.Hour:
		report(checkWarn, "tls", "the certificate expires on %s, in less than 14 days", leaf.NotAfter.UTC().Format(time.RFC3339))
	default:
		report(checkOK, "tls", "a valid pair, certificate for %v until %s", append(leaf.DNSNames, leaf.Subject.CommonName)[0], leaf.NotAfter.UTC().Format(time.DateOnly))
	}
}

func doctorDisk(file string, report func(verdict, what, format string, a ...any)) {
	dir := filepath.Dir(file)
	free, total, err := diskFree(dir)
	if err != nil {
		report(checkWarn, "disk", "free space of %s: %v", dir, err)
		return
	}
	mib := func(n uint64) string {
		if n >= 1<<30 {
			return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
		}
		return fmt.Sprintf("%d MiB", n>>20)
	}
	switch {
	case free < 100<<20:
		report(checkFail, "disk", "%s free of %s in %s: SQLite fails its writes when the disk fills (503)", mib(free), mib(total), dir)
	case free < 1<<30 || free < total/10:
		report(checkWarn, "disk", "%s free of %s in %s", mib(free), mib(total), dir)
	default:
		report(checkOK, "disk", "%s free of %s in %s", mib(free), mib(total), dir)
	}
}
