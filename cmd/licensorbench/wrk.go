package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The independent load generator (issue 17): wrk, a C program from Debian
// (apt-get install wrk), driven with wrk.lua. It costs a fraction of the
// CPU the Go generator costs per request, and where the machine has two
// CPUs or more it runs pinned to its own CPU (taskset), away from the
// servers.

//go:embed wrk.lua
var wrkScript []byte

// wrkSpec is one wrk invocation.
type wrkSpec struct {
	url         string // scheme://host:port; the path comes from the script's args
	concurrency int
	threads     int
	duration    time.Duration
	header      http.Header
	args        []string // the script's: MODE ARGS...
	cpus        string   // taskset -c list; "" not pinned
}

// wrkResult is what wrk.lua's done() prints.
type wrkResult struct {
	Requests   int64 `json:"requests"`
	DurationUS int64 `json:"duration_us"`
	Bytes      int64 `json:"bytes"`
	Errors     struct {
		Connect int64 `json:"connect"`
		Read    int64 `json:"read"`
		Write   int64 `json:"write"`
		Status  int64 `json:"status"`
		Timeout int64 `json:"timeout"`
	} `json:"errors"`
	P50US  int64   `json:"p50_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p999_us"`
	MaxUS  int64   `json:"max_us"`
	MeanUS float64 `json:"mean_us"`
	// cpu is the cores wrk used over its run (its rusage).
	cpu float64
}

func (w *wrkResult) errorCount() int64 {
	e := w.Errors
	return e.Connect + e.Read + e.Write + e.Status + e.Timeout
}

// errorSamples describes the error counts that are not zero.
func (w *wrkResult) errorSamples() []string {
	e := w.Errors
	var out []string
	for _, c := range []struct {
		name string
		n    int64
	}{{"connect", e.Connect}, {"read", e.Read}, {"write", e.Write}, {"status >= 400", e.Status}, {"timeout", e.Timeout}} {
		if c.n > 0 {
			out = append(out, fmt.Sprintf("wrk: %d %s errors", c.n, c.name))
		}
	}
	return out
}

// wrkMarker starts the line wrk.lua's done() prints.
const wrkMarker = "licensorbench-wrk "

// parseWrkOutput finds done()'s line in wrk's standard output.
func parseWrkOutput(out []byte) (*wrkResult, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if s, ok := strings.CutPrefix(line, wrkMarker); ok {
			var r wrkResult
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				return nil, fmt.Errorf("wrk: malformed summary %q: %w", s, err)
			}
			return &r, nil
		}
	}
	return nil, fmt.Errorf("wrk printed no summary: %s", truncate(strings.TrimSpace(string(out)), 500))
}

// wrkRunner runs wrk with the script written once into dir.
type wrkRunner struct {
	bin    string // wrk
	script string // path of wrk.lua
}

func newWrkRunner(dir string) (*wrkRunner, error) {
	bin, err := exec.LookPath("wrk")
	if err != nil {
		return nil, errors.New("wrk not found on PATH (apt-get install -y wrk), or use --generator go")
	}
	script := filepath.Join(dir, "wrk.lua")
	if err := os.WriteFile(script, wrkScript, 0o644); err != nil {
		return nil, err
	}
	return &wrkRunner{bin: bin, script: script}, nil
}

// command is the command line of one run (taskset first when pinned).
func (w *wrkRunner) command(s wrkSpec) []string {
	var argv []string
	if s.cpus != "" {
		argv = append(argv, "taskset", "-c", s.cpus)
	}
	secs := max(1, int(s.duration.Round(time.Second)/time.Second))
	argv = append(argv, w.bin, "-t", strconv.Itoa(max(1, s.threads)), "-c", strconv.Itoa(s.concurrency),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "10s", "-s", w.script)
	for k, vs := range s.header {
		for _, v := range vs {
			argv = append(argv, "-H", k+": "+v)
		}
	}
	argv = append(argv, s.url, "--")
	return append(argv, s.args...)
}

// run runs wrk once and parses its summary.
func (w *wrkRunner) run(ctx context.Context, s wrkSpec) (*wrkResult, error) {
	argv := w.command(s)
	ctx, cancel := context.WithTimeout(ctx, s.duration+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("wrk: %w: %s%s", err, truncate(stderr.String(), 300), truncate(stdout.String(), 300))
	}
	res, err := parseWrkOutput(stdout.Bytes())
	if err == nil && res.DurationUS > 0 {
		st := cmd.ProcessState
		res.cpu = (st.UserTime() + st.SystemTime()).Seconds() / (float64(res.DurationUS) / 1e6)
	}
	return res, err
}

// fillFromWrk sets a result's measurements from wrk's summary.
func (r *Result) fillFromWrk(w *wrkResult, rows int) {
	r.Seconds = float64(w.DurationUS) / 1e6
	r.Ops = w.Requests - w.errorCount()
	r.Rows = r.Ops * int64(max(rows, 1))
	r.Errors = w.errorCount()
	r.ErrorSamples = w.errorSamples()
	if r.Seconds > 0 {
		r.Rate = float64(r.Rows) / r.Seconds
		if r.Unit != "rows/s" {
			r.Rate = float64(r.Ops) / r.Seconds
		}
	}
	r.P50Ms = float64(w.P50US) / 1000
	r.P99Ms = float64(w.P99US) / 1000
	r.P999Ms = float64(w.P999US) / 1000
}
