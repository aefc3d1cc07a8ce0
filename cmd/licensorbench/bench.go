package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// runner is one benchmark run: the servers, the workload and the report.
type runner struct {
	cfg     *config
	rep     *Report
	stderr  io.Writer
	dir     string // temporary directory
	eng     *engine
	bin     string // the licensor binary
	dsn     string // the main database
	header  http.Header
	wl      *workload
	server  *process
	pprof   string // the server's pprof listener
	ref     *process
	refURL  string
	refBase string // http://host:port of the reference server
	// The wrk generator, and the CPUs wrk and the servers are pinned to
	// ("" not pinned).
	wrk        *wrkRunner
	wrkCPUs    string
	serverCPUs string
	// seq is the last license sequence number seeded; pools seeded later
	// continue from it so that order ids stay unique.
	seq int64
}

func (r *runner) logf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// want reports whether the scenario called name was selected.
func (r *runner) want(name string) bool {
	return r.cfg.scenarios == nil || r.cfg.scenarios.MatchString(name)
}

func (r *runner) wantAny(names ...string) bool {
	for _, n := range names {
		if r.want(n) {
			return true
		}
	}
	return false
}

func bench(ctx context.Context, cfg *config, stdout, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp(cfg.tmp, "licensorbench-")
	if err != nil {
		return err
	}
	r := &runner{cfg: cfg, stderr: stderr, dir: dir}
	cleanupCtx := context.WithoutCancel(ctx)
	defer func() {
		if r.server != nil {
			r.server.stop(40 * time.Second)
		}
		if r.ref != nil {
			r.ref.stop(10 * time.Second)
		}
		if cfg.keep {
			if r.eng != nil {
				r.logf("kept %s and databases %v", dir, r.eng.created)
			}
			return
		}
		if r.eng != nil {
			if derr := r.eng.dropAll(cleanupCtx); derr != nil && err == nil {
				err = derr
			}
		}
		os.RemoveAll(dir)
	}()
	if r.eng, err = newEngine(dir, cfg.postgres); err != nil {
		return err
	}
	r.rep = &Report{
		Date:     time.Now().UTC().Format(time.RFC3339),
		Command:  "go run ./cmd/licensorbench " + strings.Join(cfg.args, " "),
		Machine:  machineInfo(),
		Engine:   r.eng.kind,
		Licenses: cfg.scale,
		Users:    cfg.users,
		Products: cfg.products,
		Warmup:   cfg.warmup.String(),
		Duration: cfg.duration.String(),
	}
	r.rep.Revision = revision(ctx)
	r.rep.Generator = cfg.generator
	if cfg.generator == "wrk" {
		if r.wrk, err = newWrkRunner(dir); err != nil {
			return err
		}
		r.serverCPUs, r.wrkCPUs = pinning(cfg.pin)
		r.rep.Pinning = "not pinned"
		if r.wrkCPUs != "" {
			r.rep.Pinning = fmt.Sprintf("servers (licensor, reference) on CPU %s, wrk on CPU %s (taskset); PostgreSQL not pinned", r.serverCPUs, r.wrkCPUs)
		}
	}
	if err := r.setUp(ctx); err != nil {
		return err
	}
	if cfg.generator == "wrk" {
		r.runScenariosWrk(ctx)
	} else {
		r.runScenarios(ctx)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if cfg.generator == "wrk" {
		r.rep.Targets = evaluateWrkTargets(r.rep)
	} else {
		r.rep.Targets = evaluateTargets(r.rep, cfg.concurrency, cfg.listConcurrency)
	}
	if err := writeTable(stdout, r.rep); err != nil {
		return err
	}
	if cfg.out != "" {
		if err := writeJSONFile(cfg.out, r.rep); err != nil {
			return err
		}
		r.logf("wrote %s", cfg.out)
	}
	return nil
}

// setUp builds licensor, creates, migrates and seeds the database, and
// starts licensor and the reference server.
func (r *runner) setUp(ctx context.Context) error {
	cfg := r.cfg
	r.bin = cfg.licensor
	if r.bin == "" {
		r.bin = filepath.Join(r.dir, "licensor")
		r.logf("building licensor")
		if err := buildLicensor(ctx, r.bin); err != nil {
			return err
		}
	}
	var err error
	if r.dsn, err = r.eng.create(ctx, "main"); err != nil {
		return err
	}
	if _, err := r.licensor(ctx, "migrate", "--db", r.dsn); err != nil {
		return err
	}
	key, err := r.licensor(ctx, "keys", "create", "--name", "bench", "--scope", "write", "--db", r.dsn)
	if err != nil {
		return err
	}
	r.header = http.Header{"Authorization": {"Apikey " + strings.TrimSpace(key)}}

	r.logf("seeding %s products and %s licenses for %s users (%s)", humanCount(cfg.products), humanCount(cfg.scale), humanCount(cfg.users), r.eng.kind)
	t0 := time.Now()
	db, err := openBenchDB(ctx, r.eng.kind, r.dsn, true)
	if err != nil {
		return err
	}
	defer db.close()
	now := nowUnix()
	if err := db.seedProducts(ctx, seedCatalogue(int(cfg.products))); err != nil {
		return err
	}
	const threeYears = 3 * 365 * 86400
	if err := db.seedLicenses(ctx, licenseSeed{from: 0, count: cfg.scale, users: cfg.users, products: cfg.products,
		createdBase: now - threeYears, createdSpan: threeYears, now: now, bulk: true}); err != nil {
		return err
	}
	r.seq = cfg.scale
	if maxID, err := db.maxLicenseID(ctx); err != nil || maxID != cfg.scale {
		return fmt.Errorf("seed: expected license ids 1..%d, found max id %d (%v)", cfg.scale, maxID, err)
	}
	if err := db.settle(ctx); err != nil {
		return fmt.Errorf("seed: settle: %w", err)
	}
	r.rep.SeedSeconds = time.Since(t0).Seconds()
	if n, err := db.size(ctx); err == nil {
		r.rep.DatabaseMB = float64(n) / (1 << 20)
	}
	r.rep.EngineVersion = engineVersion(ctx, r.eng.kind, db)
	r.logf("seeded in %.1fs, database %.0f MB", r.rep.SeedSeconds, r.rep.DatabaseMB)

	addr, err := freePort()
	if err != nil {
		return err
	}
	if r.pprof, err = freePort(); err != nil {
		return err
	}
	if r.server, err = r.startServer(ctx, "server", addr, r.pprof); err != nil {
		return err
	}
	r.wl = &workload{base: "http://" + addr, api: "http://" + addr + apiPath, users: cfg.users,
		products: cfg.products, licenses: cfg.scale, now: now, tag: r.eng.tag}
	r.logf("licensor serving on %s (pprof on %s), pid %s", addr, r.pprof, r.server.pid())

	self, err := os.Executable()
	if err != nil {
		return err
	}
	refAddr, err := freePort()
	if err != nil {
		return err
	}
	r.ref, err = startProcess("refserver", filepath.Join(r.dir, "refserver.log"), nil,
		r.pinned(self, "refserver", "--listen", refAddr, "--engine", r.eng.kind, "--db", r.dsn)...)
	if err != nil {
		return err
	}
	if err := r.ref.waitReady(ctx, "http://"+refAddr+"/healthz", 30*time.Second); err != nil {
		return err
	}
	r.refURL = "http://" + refAddr + "/ref/"
	r.refBase = "http://" + refAddr
	return nil
}

// startServer starts licensor serve on the run's database (pinned like
// the reference server) and waits until it is ready; name names its log.
func (r *runner) startServer(ctx context.Context, name, addr, pprof string) (*process, error) {
	p, log, err := r.launchServer(name, addr, pprof)
	if err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		p.stop(10 * time.Second)
		return nil, fmt.Errorf("%w (log: %s)", err, tail(log))
	}
	return p, nil
}

// launchServer starts licensor serve on the run's database without
// waiting for it: with its workers (--workers defaults to true), as a
// production instance runs. It returns the process and its log's path.
func (r *runner) launchServer(name, addr, pprof string) (*process, string, error) {
	args := []string{r.bin, "serve", "--db", r.dsn, "--listen", addr,
		"--log-format", "json", "--log-level", r.cfg.serverLogLevel}
	if pprof != "" {
		args = append(args, "--pprof-listen", pprof)
	}
	args = append(args, r.cfg.serverArgs...)
	log := filepath.Join(r.dir, name+".log")
	p, err := startProcess("licensor", log, r.cfg.serverEnv, r.pinned(args...)...)
	return p, log, err
}

// pinned prefixes a command line with taskset when the servers are pinned.
func (r *runner) pinned(args ...string) []string {
	if r.serverCPUs == "" {
		return args
	}
	return append([]string{"taskset", "-c", r.serverCPUs}, args...)
}

// buildLicensor builds ./cmd/licensor of the module the harness runs in.
func buildLicensor(ctx context.Context, out string) error {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(gomod))
	if mod == "" || mod == os.DevNull {
		return fmt.Errorf("run licensorbench inside the licensor module (or pass --licensor)")
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/licensor")
	cmd.Dir = filepath.Dir(mod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/licensor: %w\n%s", err, b)
	}
	return nil
}

// revision describes the checked-out code: commit, and "-dirty" when the
// working tree has changes.
func revision(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// licensor runs a licensor command and returns its standard output.
func (r *runner) licensor(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("licensor %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

func engineVersion(ctx context.Context, kind string, db benchDB) string {
	switch d := db.(type) {
	case *sqliteDB:
		var v string
		if d.db.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&v) == nil {
			return "SQLite " + v + " (modernc.org/sqlite)"
		}
	case *pgDB:
		var v string
		if d.conn.QueryRow(ctx, "SHOW server_version").Scan(&v) == nil {
			return "PostgreSQL " + v
		}
	}
	return kind
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

func nowUnix() int64 { return time.Now().Unix() }

// ----- running scenarios -----

// httpRun is one HTTP scenario to measure.
type httpRun struct {
	name        string
	kind        string // "api" or "reference"
	concurrency int
	unit        string // "req/s" or "rows/s"
	proc        *process
	next        func(w *worker) (call, bool)
	reference   *Result // what the ratio is taken to
}

func (r *runner) measureHTTP(ctx context.Context, h httpRun) *Result {
	res := &Result{Scenario: h.name, Kind: h.kind, Concurrency: h.concurrency, Unit: h.unit}
	client := newHTTPClient(h.concurrency)
	defer client.CloseIdleConnections()
	meter := &cpuMeter{pid: h.proc.pid()}
	prof := r.profiler(h)
	win := window{
		start: func() {
			meter.start()
			prof.start(ctx)
		},
		stop: func(bool) { meter.stop() },
	}
	s := runLoad(ctx, client, r.header, loadSpec{concurrency: h.concurrency, warmup: r.cfg.warmup, duration: r.cfg.duration, next: h.next}, win)
	res.fill(s, h.unit == "rows/s")
	res.ServerCPU, res.ClientCPU, res.HostCPU = meter.proc, meter.self, meter.host
	res.setCPUPerOp()
	if m, err := readMemory(h.proc.pid()); err == nil {
		res.RSSMB, res.PeakRSSMB = float64(m.rss)/(1<<20), float64(m.hwm)/(1<<20)
	}
	res.Profile = prof.wait()
	r.relate(res, h.reference)
	r.report(res)
	return res
}

// relate sets a result's reference and ratio.
func (r *runner) relate(res, ref *Result) {
	if ref == nil || ref.Rate == 0 {
		return
	}
	res.Reference, res.RefRate = ref.Scenario, ref.Rate
	if ref.Concurrency != res.Concurrency && ref.Kind == "reference" && ref.Unit == "req/s" {
		res.Reference = fmt.Sprintf("%s c=%d", ref.Scenario, ref.Concurrency)
	}
	res.Ratio = res.Rate / ref.Rate
}

func (r *runner) report(res *Result) {
	r.rep.Results = append(r.rep.Results, *res)
	flag := ""
	if res.Errors > 0 {
		flag = fmt.Sprintf(" !! %d errors: %s", res.Errors, strings.Join(res.ErrorSamples, " | "))
	}
	ratio := ""
	if res.Ratio > 0 {
		ratio = fmt.Sprintf(", %.2f x %s", res.Ratio, res.Reference)
	}
	r.logf("%-42s c=%-3d %10s %-6s p50 %s p99 %s p99.9 %s ms, cpu %.2f, rss %.0f MB%s%s",
		res.Scenario, res.Concurrency, fmtRate(res.Rate), res.Unit, fmtMs(res.P50Ms), fmtMs(res.P99Ms), fmtMs(res.P999Ms),
		res.ServerCPU, res.RSSMB, ratio, flag)
}

func (r *runner) skip(name string, c int, why string) {
	r.rep.Results = append(r.rep.Results, Result{Scenario: name, Kind: "api", Concurrency: c, Skipped: true, Note: why})
	r.logf("%-42s skipped: %s", name, why)
}

// profiler takes a CPU profile of the server during a scenario's window
// when --profile asks for it.
type profiler struct {
	url, path string
	done      chan struct{}
	err       error
}

func (r *runner) profiler(h httpRun) *profiler {
	cfg := r.cfg
	if cfg.profileDir == "" || h.proc != r.server || (cfg.profileScenarios != nil && !cfg.profileScenarios.MatchString(h.name)) {
		return &profiler{}
	}
	secs := max(1, int(math.Round(cfg.duration.Seconds())))
	name := fmt.Sprintf("%s-%s-%s-c%d.pprof", r.eng.kind, humanCount(cfg.scale), fileSafe(h.name), h.concurrency)
	return &profiler{
		url:  fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", r.pprof, secs),
		path: filepath.Join(cfg.profileDir, name),
	}
}

func (p *profiler) start(ctx context.Context) {
	if p.url == "" {
		return
	}
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = download(ctx, p.url, p.path)
	}()
}

// wait returns the profile's file name once it is written ("" if none).
func (p *profiler) wait() string {
	if p.done == nil {
		return ""
	}
	<-p.done
	if p.err != nil {
		return "failed: " + p.err.Error()
	}
	return p.path
}

func download(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fileSafe turns a scenario name into a file name: runs of anything but
// ASCII letters and digits become one dash.
func fileSafe(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range s {
		if c < 128 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}
