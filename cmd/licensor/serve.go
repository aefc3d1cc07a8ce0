package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"time"

	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/api"
)

// serveConfig is everything serve can be told.
type serveConfig struct {
	db             string
	listen         string
	migrate        bool
	maxBody        int64
	maxBatch       int
	trustedProxies prefixList
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
	idempotencyTTL time.Duration
	tlsCert        string
	tlsKey         string
	metricsListen  string
	pprofListen    string
	endUser        endUserConfig
	outbox         outboxConfig
}

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var cfg serveConfig
	fs.StringVar(&cfg.listen, "listen", envOr(getenv, "LICENSOR_LISTEN", ":8080"), "address to listen on (env LICENSOR_LISTEN)")
	db := dbFlag(fs, getenv)
	fs.BoolVar(&cfg.migrate, "migrate", true, "apply pending migrations at start-up (with false, refuse to start on an old schema)")
	fs.Int64Var(&cfg.maxBody, "max-body", api.DefaultMaxBodyBytes, "largest request body in bytes (413 beyond)")
	fs.IntVar(&cfg.maxBatch, "max-batch", licensor.DefaultMaxBatch, "most items in one batch request (400 beyond)")
	fs.Var(&cfg.trustedProxies, "trusted-proxy", "CIDR of a proxy whose X-Forwarded-For is honoured (repeatable; env LICENSOR_TRUSTED_PROXIES, comma-separated)")
	fs.DurationVar(&cfg.readHeader, "read-header-timeout", 5*time.Second, "time to read request headers")
	fs.DurationVar(&cfg.read, "read-timeout", 30*time.Second, "time to read a whole request")
	fs.DurationVar(&cfg.write, "write-timeout", 60*time.Second, "time to write a response")
	fs.DurationVar(&cfg.idle, "idle-timeout", 120*time.Second, "how long an idle keep-alive connection stays open")
	fs.DurationVar(&cfg.shutdown, "shutdown-timeout", 30*time.Second, "how long in-flight requests may take to finish on SIGINT/SIGTERM")
	fs.StringVar(&cfg.logFormat, "log-format", envOr(getenv, "LICENSOR_LOG_FORMAT", "json"), "log format: json or text (env LICENSOR_LOG_FORMAT)")
	fs.TextVar(&cfg.logLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&cfg.logFlush, "log-flush", 100*time.Millisecond, "longest time an access log line waits in memory before it is written (0: each at once; errors and server messages are always written at once)")
	fs.Var(&cfg.memoryLimit, "memory-limit", "soft limit of the Go runtime's memory, as GOMEMLIMIT (150MiB, 1GiB, bytes; 0 or off: none); default 150MiB on PostgreSQL, 100MiB on SQLite (whose page caches Go does not count), unless GOMEMLIMIT is set")
	fs.Float64Var(&cfg.rateLimit, "rate-limit", 0, "requests per second allowed per API key on this instance (0: no limit)")
	fs.IntVar(&cfg.rateBurst, "rate-burst", 0, "token bucket size of the rate limit (default: the rate, rounded up)")
	fs.DurationVar(&cfg.idempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long responses to Idempotency-Key requests are kept for replay")
	fs.StringVar(&cfg.tlsCert, "tls-cert", getenv("LICENSOR_TLS_CERT"), "PEM certificate (chain) to serve HTTPS directly (env LICENSOR_TLS_CERT)")
	fs.StringVar(&cfg.tlsKey, "tls-key", getenv("LICENSOR_TLS_KEY"), "PEM private key for --tls-cert (env LICENSOR_TLS_KEY)")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", getenv("LICENSOR_METRICS_LISTEN"), "serve /metrics on this address instead of on --listen (env LICENSOR_METRICS_LISTEN)")
	fs.StringVar(&cfg.pprofListen, "pprof-listen", "", "serve net/http/pprof on this address (keep it private; off by default)")
	cfg.endUser.register(fs, getenv)
	cfg.outbox.register(fs)
	if v := getenv("LICENSOR_TRUSTED_PROXIES"); v != "" {
		for _, p := range strings.Split(v, ",") {
			if err := cfg.trustedProxies.Set(strings.TrimSpace(p)); err != nil {
				return usageError{"LICENSOR_TRUSTED_PROXIES: " + err.Error()}
			}
		}
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("serve takes no arguments, got %q", fs.Args())}
	}
	cfg.db = *db
	if err := cfg.endUser.load(getenv); err != nil {
		return err
	}
	if err := cfg.outbox.check(); err != nil {
		return err
	}
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		return usageError{"--tls-cert and --tls-key go together"}
	}
	if cfg.rateLimit < 0 || cfg.rateBurst < 0 {
		return usageError{"--rate-limit and --rate-burst must not be negative"}
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
	logs.server.Info("memory limit", "limit", limit.String())
	return serve(ctx, cfg, logs, nil)
}

// serve runs the server until ctx ends, then shuts down gracefully. ready,
// if not nil, receives the listening address.
func serve(ctx context.Context, cfg serveConfig, logs *logs, ready chan<- string) error {
	logger := logs.server
	var (
		db  database
		err error
	)
	if cfg.migrate {
		db, err = openMigrated(ctx, cfg.db, logger)
	} else {
		db, err = openDatabase(ctx, cfg.db, logger)
		if err == nil {
			err = checkSchema(ctx, db)
		}
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
		IdempotencyTTL:  cfg.idempotencyTTL,
		RateLimit:       cfg.rateLimit,
		RateBurst:       cfg.rateBurst,
		MetricsOnAPI:    cfg.metricsListen == "",
		EndUser:         cfg.endUser.options,
		CheckWebhookURL: cfg.outbox.policy().CheckURL,
	})
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	background := make(chan struct{})
	go func() {
		defer close(background)
		srv.Run(bgCtx, 10*time.Second)
	}()
	waitOutbox := cfg.outbox.start(bgCtx, db, logger)      // webhooks, expiry, retention
	waitFeed := cfg.endUser.follow(bgCtx, srv, db, logger) // the entitlement cache follows the change feed
	defer func() {
		stopBackground()
		<-background
		waitOutbox()
		waitFeed()
	}()

	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: cfg.readHeader,
		ReadTimeout:       cfg.read,
		WriteTimeout:      cfg.write,
		IdleTimeout:       cfg.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	served := make(chan error, 3)
	side, err := sideServers(cfg, srv, logger, served)
	if err != nil {
		ln.Close()
		return err
	}
	scheme := "http"
	if cfg.tlsCert != "" {
		scheme = "https"
	}
	logger.Info("licensor listening", "addr", ln.Addr().String(), "scheme", scheme, "database", redact(cfg.db), "version", version())
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
	logger.Info("stopped")
	return nil
}

// sideServers starts the optional metrics and pprof listeners, which are
// never behind the API's keys and so belong on private addresses.
func sideServers(cfg serveConfig, srv *api.Server, logger *slog.Logger, served chan<- error) ([]*http.Server, error) {
	var out []*http.Server
	start := func(name, addr string, h http.Handler) error {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen for %s on %s: %w", name, addr, err)
		}
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: cfg.idle}
		out = append(out, hs)
		logger.Info(name+" listening", "addr", ln.Addr().String())
		go func() {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("%s: %w", name, err)
			}
		}()
		return nil
	}
	if cfg.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", srv.MetricsHandler())
		if err := start("metrics", cfg.metricsListen, mux); err != nil {
			return nil, err
		}
	}
	if cfg.pprofListen != "" {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		if err := start("pprof", cfg.pprofListen, mux); err != nil {
			for _, s := range out {
				s.Close()
			}
			return nil, err
		}
	}
	return out, nil
}

// checkSchema refuses a database whose schema is behind this binary.
func checkSchema(ctx context.Context, db database) error {
	current, latest, err := db.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current < latest {
		return fmt.Errorf("the database schema is at version %d but this licensor needs %d: run licensor migrate (or serve without --migrate=false)", current, latest)
	}
	return nil
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
		server: slog.New(flushingHandler{h, buf, math.MinInt32}),
		access: slog.New(flushingHandler{h, buf, slog.LevelWarn}),
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
