package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
	"github.com/licensor/licensor/internal/console"
)

// serveConfig is everything serve can be told.
type serveConfig struct {
	db             string
	listen         string
	migrate        bool
	maxBody        int64
	maxBatch       int
	trustedProxies prefixList
	corsOrigins    originList
	readHeader     time.Duration
	read           time.Duration
	write          time.Duration
	idle           time.Duration
	shutdown       time.Duration
	logFormat      string
	logLevel       slog.Level
	logFlush       time.Duration
	memoryLimit    memoryLimit
	rateLimit      float64
	rateBurst      int
	userRateLimit  float64
	userRateBurst  int
	idempotencyTTL time.Duration
	tlsCert        string
	tlsKey         string
	metricsListen  string
	pprofListen    string
	endUser        endUserConfig
	outbox         outboxConfig
}

// flags registers serve's flags on fs. Each also has an environment
// variable (serveEnv), applied after the command line.
func (cfg *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&cfg.listen, "listen", ":8080", "address to listen on")
	fs.StringVar(&cfg.db, "db", DefaultDatabase, "database: a SQLite file path or sqlite: URI, or a postgres:// URL")
	fs.BoolVar(&cfg.migrate, "migrate", true, "apply pending migrations at start-up (with false, refuse to start on an old schema)")
	fs.Int64Var(&cfg.maxBody, "max-body", api.DefaultMaxBodyBytes, "largest request body in bytes (413 beyond)")
	fs.IntVar(&cfg.maxBatch, "max-batch", licensor.DefaultMaxBatch, "most items in one batch request (400 beyond)")
	fs.Var(&cfg.trustedProxies, "trusted-proxy", "CIDR of a proxy whose X-Forwarded-For is honoured (repeatable)")
	fs.Var(&cfg.corsOrigins, "cors-origin", "origin (https://app.example.com) whose web apps may call the end-user API from a browser (CORS; repeatable; none: off; never *)")
	fs.DurationVar(&cfg.readHeader, "read-header-timeout", 5*time.Second, "time to read request headers")
	fs.DurationVar(&cfg.read, "read-timeout", 30*time.Second, "time to read a whole request")
	fs.DurationVar(&cfg.write, "write-timeout", 60*time.Second, "time to write a response")
	fs.DurationVar(&cfg.idle, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&cfg.shutdown, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGINT/SIGTERM")
	fs.StringVar(&cfg.logFormat, "log-format", "json", "log format: json or text")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&cfg.logFlush, "log-flush", 100*time.Millisecond, "longest time an access log line waits in memory before it is written (0: each at once; errors and server messages are always written at once)")
	fs.Var(&cfg.memoryLimit, "memory-limit", "soft limit of the Go runtime's memory, as GOMEMLIMIT (150MiB, 1GiB, bytes; 0 or off: none); default 150MiB on PostgreSQL, 100MiB on SQLite (whose page caches Go does not count), unless GOMEMLIMIT is set")
	fs.Float64Var(&cfg.rateLimit, "rate-limit", 0, "requests per second allowed per API key on this instance (0: no limit)")
	fs.IntVar(&cfg.rateBurst, "rate-burst", 0, "token bucket size of the rate limit (default: the rate, rounded up)")
	fs.Float64Var(&cfg.userRateLimit, "user-rate-limit", api.DefaultUserRateLimit, "requests per second allowed per end user (token subject) on the end-user API, on this instance (0: no limit)")
	fs.IntVar(&cfg.userRateBurst, "user-rate-burst", api.DefaultUserRateBurst, "token bucket size of the per-user rate limit (0: twice the rate, rounded up)")
	fs.DurationVar(&cfg.idempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long responses to Idempotency-Key requests are kept for replay")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS directly")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "PEM private key for --tls-cert")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", "", "serve /metrics on this address instead of on --listen")
	fs.StringVar(&cfg.pprofListen, "pprof-listen", "", "serve net/http/pprof on this address (keep it private; off by default)")
	cfg.endUser.register(fs)
	cfg.outbox.register(fs)
	fs.VisitAll(func(f *flag.Flag) {
		env := serveEnv(f.Name)
		if strings.Contains(f.Usage, env) {
			return
		}
		if _, ok := f.Value.(repeatable); ok {
			env += ", comma-separated"
		}
		f.Usage += " (env " + env + ")"
	})
}

// serveEnv names the environment variable of a serve flag: LICENSOR_ and
// the flag's name in upper case, but for the two older names.
func serveEnv(flagName string) string {
	switch flagName {
	case "db":
		return "DATABASE_URL"
	case "trusted-proxy":
		return "LICENSOR_TRUSTED_PROXIES"
	case "cors-origin":
		return "LICENSOR_CORS_ORIGINS"
	}
	return "LICENSOR_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cfg serveConfig
	cfg.flags(fs)
	if err := parseWithEnv(fs, args, getenv, serveEnv); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	if _, err := parseDB(cfg.db); err != nil {
		return err
	}
	if err := cfg.endUser.load(getenv); err != nil {
		return err
	}
	if err := cfg.outbox.check(); err != nil {
		return err
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return usageError{"--tls-cert and --tls-key go together"}
	}
	if cfg.tlsCert != "" {
		if _, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey); err != nil {
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	}
	if cfg.rateLimit < 0 || cfg.rateBurst < 0 {
		return usageError{"--rate-limit and --rate-burst must not be negative"}
	}
	if cfg.userRateLimit < 0 || cfg.userRateBurst < 0 {
		return usageError{"--user-rate-limit and --user-rate-burst must not be negative"}
	}
	if cfg.logFlush < 0 {
		return usageError{"--log-flush must not be negative"}
	}
	logs, err := newLogs(stderr, cfg.logFormat, cfg.logLevel, cfg.logFlush)
	if err != nil {
		return err
	}
	defer logs.close()
	limit := cfg.memoryLimit.apply(fs, getenv, defaultMemoryLimit(cfg.db))
	defer limit.restore()
	gc := applyGCPercent(getenv, defaultGCPercent(cfg.db, limit.bytes))
	defer gc.restore()
	logs.server.Info("memory limit", "limit", limit.String(), "gogc", gc.String())
	return serve(ctx, cfg, logs, nil)
}

// serve runs the server until ctx ends, then shuts down gracefully. ready,
// if not nil, receives the listening address.
func serve(ctx context.Context, cfg serveConfig, logs *logs, ready chan<- string) error {
	logger := logs.server
	// Bind every address before touching the database: a bad or busy
	// address fails before any migration runs.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	defer ln.Close()
	sideLns, err := sideListeners(cfg)
	if err != nil {
		return err
	}
	defer func() {
		for _, l := range sideLns {
			l.ln.Close()
		}
	}()
	var db database
	if cfg.migrate {
		db, err = openMigrated(ctx, cfg.db, logger)
	} else {
		db, err = openExisting(ctx, cfg.db, logger)
	}
	if err != nil {
		return err
	}
	defer db.Close()

	srv := api.New(db, api.Options{
		Logger:          logger,
		AccessLog:       logs.access,
		MaxBodyBytes:    cfg.maxBody,
		MaxBatch:        cfg.maxBatch,
		TrustedProxies:  cfg.trustedProxies,
		CORSOrigins:     cfg.corsOrigins,
		IdempotencyTTL:  cfg.idempotencyTTL,
		RateLimit:       cfg.rateLimit,
		RateBurst:       cfg.rateBurst,
		UserRateLimit:   cfg.userRateLimit,
		UserRateBurst:   cfg.userRateBurst,
		MetricsOnAPI:    cfg.metricsListen == "",
		EndUser:         cfg.endUser.options,
		Engine:          db.Engine(),
		CheckWebhookURL: cfg.outbox.policy().CheckURL,
	})
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	background := make(chan struct{})
	go func() {
		defer close(background)
		srv.Run(bgCtx, 10*time.Second)
	}()
	waitOutbox := cfg.outbox.start(bgCtx, db, srv.Store(), logger) // idempotency keys, webhooks, expiry, renewal, retention, bulk jobs
	waitFeed := cfg.endUser.follow(bgCtx, srv, db, logger)         // the entitlement cache follows the change feed
	waitWarm := cfg.endUser.warm(bgCtx, srv)                       // and is filled ahead of the checks
	defer func() {
		stopBackground()
		<-background
		waitOutbox()
		waitFeed()
		waitWarm()
	}()

	root := http.NewServeMux() // the API, and the operator console beside it
	root.Handle("/", srv)
	root.Handle(console.Prefix+"/", console.New(db, console.Options{Logger: logger, Version: currentBuild().Version, CheckWebhookURL: cfg.outbox.policy().CheckURL}))
	root.Handle(console.Prefix, http.RedirectHandler(console.Prefix+"/", http.StatusSeeOther))
	hs := &http.Server{
		Handler:           root,
		ReadHeaderTimeout: cfg.readHeader,
		ReadTimeout:       cfg.read,
		WriteTimeout:      cfg.write,
		IdleTimeout:       cfg.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 3)
	side := sideServers(cfg, sideLns, srv, logger, served)
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	b := currentBuild()
	logger.Info("licensor listening", "addr", ln.Addr().String(), "scheme", scheme, "database", redact(cfg.db), "version", b.Version, "commit", b.Commit, "built", b.Date)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	go func() {
		if cfg.tlsCert != "" {
			served <- hs.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
			return
		}
		served <- hs.Serve(ln)
	}()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "timeout", cfg.shutdown)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.shutdown)
	defer cancel()
	for _, s := range side {
		_ = s.Shutdown(shutdownCtx)
	}
	if err := hs.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	cfg.endUser.saveHot(shutdownCtx, srv, logger) // for the next instance's warm-up
	logger.Info("stopped")
	return nil
}

// sideListener is the bound address of an optional side server.
type sideListener struct {
	name string
	ln   net.Listener
}

// sideListeners binds the optional metrics and pprof addresses.
func sideListeners(cfg serveConfig) ([]sideListener, error) {
	var out []sideListener
	for _, s := range []struct{ name, addr string }{{"metrics", cfg.metricsListen}, {"pprof", cfg.pprofListen}} {
		if s.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			for _, l := range out {
				l.ln.Close()
			}
			return nil, fmt.Errorf("listen for %s on %s: %w", s.name, s.addr, err)
		}
		out = append(out, sideListener{s.name, ln})
	}
	return out, nil
}

// sideServers serves the optional metrics and pprof listeners, which are
// never behind the API's keys and so belong on private addresses.
func sideServers(cfg serveConfig, lns []sideListener, srv *api.Server, logger *slog.Logger, served chan<- error) []*http.Server {
	var out []*http.Server
	for _, l := range lns {
		mux := http.NewServeMux()
		switch l.name {
		case "metrics":
			mux.Handle("GET /metrics", srv.MetricsHandler())
		case "pprof":
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/cmdline", redactedCmdline)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: cfg.idle}
		out = append(out, hs)
		logger.Info(l.name+" listening", "addr", l.ln.Addr().String())
		go func() {
			if err := hs.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	return out
}

// redactedCmdline is pprof.Cmdline with every password of the command
// line hidden (--db postgres://user:PASSWORD@...).
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, strings.Join(redactArgs(os.Args), "\x00"))
}

// logs are serve's two loggers on one output: the server's messages,
// written at once, and the access log, whose lines wait in memory for up to
// the flush interval (5xx lines, at Error, are written at once with what
// waits before them). Lines keep their order. What waits is lost if the
// process dies without a graceful shutdown (a crash, SIGKILL, the OOM
// killer): at most the flush interval's access lines.
type logs struct {
	server, access *slog.Logger
	close          func() // flushes and stops the flusher
}

func newLogs(w io.Writer, format string, level slog.Level, flush time.Duration) (*logs, error) {
	opts := &slog.HandlerOptions{Level: level}
	newHandler := func(w io.Writer) (slog.Handler, error) {
		switch format {
		case "json":
			return slog.NewJSONHandler(w, opts), nil
		case "text":
			return slog.NewTextHandler(w, opts), nil
		}
		return nil, usageError{fmt.Sprintf("unknown log format %q: use json or text", format)}
	}
	if flush == 0 {
		h, err := newHandler(w)
		if err != nil {
			return nil, err
		}
		l := slog.New(h)
		return &logs{server: l, access: l, close: func() {}}, nil
	}
	buf := newLogBuffer(w)
	h, err := newHandler(buf)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf.run(ctx, flush)
	}()
	return &logs{
		server: slog.New(flushingHandler{h, buf, math.MinInt32, format == "json"}),
		access: slog.New(flushingHandler{h, buf, slog.LevelWarn, format == "json"}),
		close: func() {
			stop()
			<-done
		},
	}, nil
}

func envOr(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// originList is a repeatable flag of CORS origins, each checked and
// written as browsers send it (api.ParseOrigin).
type originList []string

func (l *originList) String() string { return strings.Join(*l, ",") }

func (l *originList) Set(s string) error {
	o, err := api.ParseOrigin(strings.TrimSpace(s))
	if err != nil {
		return err
	}
	*l = append(*l, o)
	return nil
}

// prefixList is a repeatable CIDR flag.
type prefixList []netip.Prefix

func (l *prefixList) String() string {
	parts := make([]string, len(*l))
	for i, p := range *l {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

func (l *prefixList) Set(s string) error {
	p, err := parsePrefix(s)
	if err != nil {
		return err
	}
	*l = append(*l, p)
	return nil
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a CIDR like 10.0.0.0/8 or 2001:db8::/32", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q: write IPv4 networks in IPv4 form", s)
	}
	return p.Masked(), nil
}
