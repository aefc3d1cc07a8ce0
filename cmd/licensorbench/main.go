// Command licensorbench measures licensor against the limits of the machine
// it runs on: it builds licensor, starts it on a fresh, seeded database,
// drives it over loopback with a closed-loop HTTP load generator, and in
// the same run measures the references every figure is a ratio to (a
// minimal net/http JSON server; the raw driver's single-row and batched
// inserts into the same schema). See BENCHMARKS.md.
//
// Usage:
//
//	go run ./cmd/licensorbench [flags]                     SQLite
//	go run ./cmd/licensorbench --postgres URL [flags]      PostgreSQL
//	go run ./cmd/licensorbench compare A.json B.json       growth from run A to run B
//	go run ./cmd/licensorbench markdown A.json...          the tables of BENCHMARKS.md
//
// It is a separate command, not a subcommand of licensor, so that no load
// generation code ships in the production binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "licensorbench:", err)
		}
		var u usageError
		if errors.As(err, &u) || errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "refserver": // hidden: the reference HTTP server the harness starts
			return runRefServer(ctx, args[1:], stderr)
		case "compare":
			return runCompare(args[1:], stdout)
		case "markdown":
			return runMarkdown(args[1:], stdout)
		case "summary":
			return runSummary(args[1:], stdout)
		}
	}
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	return bench(ctx, cfg, stdout, stderr)
}

// config is everything the harness can be told.
type config struct {
	postgres         string
	scale            int64
	products         int64
	users            int64
	duration         time.Duration
	warmup           time.Duration
	concurrency      int
	listConcurrency  int
	batchConcurrency int
	deepPages        int
	checkBatch       int
	scenarios        *regexp.Regexp
	out              string
	profileDir       string
	profileScenarios *regexp.Regexp
	licensor         string
	keep             bool
	serverLogLevel   string
	serverArgs       listFlag // more licensor serve flags (--server-arg)
	serverEnv        listFlag // KEY=VALUE for the licensor server only (--server-env)
	tmp              string
	generator        string // "wrk" or "go"
	rounds           int
	wrkThreads       int
	pin              bool
	args             []string
}

func parseConfig(args []string, stderr io.Writer) (*config, error) {
	fs := flag.NewFlagSet("licensorbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `licensorbench: measure licensor against the limits of this machine

Usage:
  go run ./cmd/licensorbench [flags]                 benchmark on SQLite (a file in a temporary directory)
  go run ./cmd/licensorbench --postgres URL [flags]  benchmark on PostgreSQL (a fresh database, dropped after)
  go run ./cmd/licensorbench compare A.json B.json   compare two --out files (growth from A to B)
  go run ./cmd/licensorbench markdown A.json...      render --out files as the Markdown of BENCHMARKS.md
  go run ./cmd/licensorbench summary A.json...       the targets of several runs side by side, and the growth with the data

Flags:
`)
		fs.PrintDefaults()
	}
	cfg := &config{args: args}
	var scale, scenarios, profileScenarios string
	fs.StringVar(&cfg.postgres, "postgres", "", "a PostgreSQL URL to an existing database the harness may CREATE DATABASE from (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable); empty: SQLite")
	fs.StringVar(&scale, "scale", "100k", "licenses to seed: a number, or with a k or m suffix (100k, 1m, 10m)")
	fs.Int64Var(&cfg.products, "products", 300, "products to seed")
	fs.Int64Var(&cfg.users, "users", 0, "distinct users to seed (0: a quarter of --scale, about four licenses per user)")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured time per scenario")
	fs.DurationVar(&cfg.warmup, "warmup", 2*time.Second, "warm-up per scenario, not measured")
	fs.IntVar(&cfg.concurrency, "concurrency", 64, "connections for the read, mixed and entitlement scenarios and the HTTP reference")
	fs.IntVar(&cfg.listConcurrency, "list-concurrency", 4, "the light-load concurrency at which the list scenarios also run (their latency targets are read there)")
	fs.IntVar(&cfg.batchConcurrency, "batch-concurrency", 4, "connections for the batch scenarios")
	fs.IntVar(&cfg.deepPages, "deep-pages", 50, "pages of 100 to follow through links.next before measuring the deep-page scenarios")
	fs.IntVar(&cfg.checkBatch, "check-batch", 100, "questions per entitlement check batch")
	fs.StringVar(&scenarios, "scenarios", "", "run only the scenarios whose name matches this regular expression (the references they need run too)")
	fs.StringVar(&cfg.out, "out", "", "write the results as JSON to this file")
	fs.StringVar(&cfg.profileDir, "profile", "", "save a CPU profile of the server during each profiled scenario's window to this directory")
	fs.StringVar(&profileScenarios, "profile-scenarios", "", "profile only the scenarios whose name matches this regular expression (default: all)")
	fs.StringVar(&cfg.licensor, "licensor", "", "a licensor binary to use instead of building ./cmd/licensor")
	fs.BoolVar(&cfg.keep, "keep", false, "keep the temporary directory (SQLite files, server logs) and the PostgreSQL databases")
	fs.StringVar(&cfg.serverLogLevel, "server-log-level", "info", "licensor serve --log-level (info, the default in production, logs every request)")
	fs.Var(&cfg.serverArgs, "server-arg", "a licensor serve flag to add, e.g. --server-arg=--entitlement-cache-bytes=134217728 (repeatable)")
	fs.Var(&cfg.serverEnv, "server-env", "an environment variable KEY=VALUE for the licensor server only, e.g. --server-env GOGC=200 (repeatable)")
	fs.StringVar(&cfg.tmp, "tmp", "", "parent directory of the temporary directory (default: the system's)")
	fs.StringVar(&cfg.generator, "generator", "", "the HTTP load generator: wrk (Debian's wrk with Lua scripts: the scenario/reference pairs of issue 17, A B A B) or go (the harness's own closed-loop generator: every scenario of the first rounds); default wrk when it is on PATH")
	fs.IntVar(&cfg.rounds, "rounds", 2, "with --generator wrk: how many times each scenario and its reference are measured, alternately")
	fs.IntVar(&cfg.wrkThreads, "wrk-threads", 1, "with --generator wrk: wrk's threads (-t)")
	fs.BoolVar(&cfg.pin, "pin", true, "with --generator wrk on 2 CPUs or more: run wrk on the last CPU and the servers on the others (taskset)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, usageError{fmt.Sprintf("unexpected arguments %q", fs.Args())}
	}
	for _, kv := range cfg.serverEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--server-env %q: want KEY=VALUE", kv)}
		}
	}
	for _, a := range cfg.serverArgs {
		if !strings.HasPrefix(a, "-") {
			return nil, usageError{fmt.Sprintf("--server-arg %q: want a flag of licensor serve, like --entitlement-cache-bytes=134217728", a)}
		}
	}
	var err error
	if cfg.scale, err = parseCount(scale); err != nil || cfg.scale < 1000 {
		return nil, usageError{fmt.Sprintf("--scale %q: want a count of at least 1000, like 100k, 1m or 10m", scale)}
	}
	if cfg.products < 1 || cfg.products > 100000 {
		return nil, usageError{"--products must be 1 to 100000"}
	}
	if cfg.users == 0 {
		cfg.users = max(1, cfg.scale/4)
	}
	if cfg.users < 1 {
		return nil, usageError{"--users must be positive"}
	}
	if cfg.duration <= 0 || cfg.warmup < 0 {
		return nil, usageError{"--duration must be positive and --warmup not negative"}
	}
	if cfg.concurrency < 1 || cfg.listConcurrency < 1 || cfg.batchConcurrency < 1 || cfg.deepPages < 1 || cfg.checkBatch < 1 || cfg.checkBatch > 1000 {
		return nil, usageError{"--concurrency, --list-concurrency, --batch-concurrency and --deep-pages must be positive; --check-batch 1 to 1000"}
	}
	switch cfg.generator {
	case "":
		cfg.generator = "go"
		if _, err := exec.LookPath("wrk"); err == nil {
			cfg.generator = "wrk"
		}
	case "wrk", "go":
	default:
		return nil, usageError{fmt.Sprintf("--generator %q: want wrk or go", cfg.generator)}
	}
	if cfg.rounds < 1 || cfg.wrkThreads < 1 {
		return nil, usageError{"--rounds and --wrk-threads must be positive"}
	}
	if cfg.scenarios, err = compileOptional(scenarios); err != nil {
		return nil, usageError{"--scenarios: " + err.Error()}
	}
	if cfg.profileScenarios, err = compileOptional(profileScenarios); err != nil {
		return nil, usageError{"--profile-scenarios: " + err.Error()}
	}
	return cfg, nil
}

func compileOptional(s string) (*regexp.Regexp, error) {
	if s == "" {
		return nil, nil
	}
	return regexp.Compile(s)
}

// parseCount reads 100000, 100k, 1m, 10M.
func parseCount(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "k"):
		mult, s = 1000, strings.TrimSuffix(s, "k")
	case strings.HasSuffix(s, "m"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "m")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a count: %q", s)
	}
	return n * mult, nil
}

func runCompare(args []string, stdout io.Writer) error {
	if len(args) != 2 {
		return usageError{"usage: licensorbench compare A.json B.json"}
	}
	a, err := readJSONFile(args[0])
	if err != nil {
		return err
	}
	b, err := readJSONFile(args[1])
	if err != nil {
		return err
	}
	return writeComparison(stdout, a, b)
}

func runMarkdown(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: licensorbench markdown RUN.json..."}
	}
	for _, path := range args {
		rep, err := readJSONFile(path)
		if err != nil {
			return err
		}
		if err := writeMarkdown(stdout, rep); err != nil {
			return err
		}
	}
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
