package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	thousand := make([]time.Duration, 1000)
	for i := range thousand {
		thousand[i] = time.Duration(i+1) * time.Microsecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", []time.Duration{7}, 99.9, 7},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p99.9 of 1..100 is the maximum", hundred, 99.9, 100 * time.Millisecond},
		{"p100 is the maximum", hundred, 100, 100 * time.Millisecond},
		{"tiny p is the minimum", hundred, 0.001, time.Millisecond},
		{"p99.9 of 1..1000", thousand, 99.9, 999 * time.Microsecond},
		{"p50 of two rounds down", []time.Duration{1, 2}, 50, 1},
		{"p51 of two rounds up", []time.Duration{1, 2}, 51, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestMergeSortsAndDeduplicates(t *testing.T) {
	a := &recorder{ops: 2, rows: 2, latencies: []time.Duration{5, 1}}
	a.fail("boom")
	a.fail("boom")
	b := &recorder{ops: 1, rows: 1000, latencies: []time.Duration{3}}
	b.fail("boom")
	b.fail("bang")
	s := merge([]*recorder{a, b})
	if s.ops != 3 || s.rows != 1002 || s.errors != 4 {
		t.Errorf("ops, rows, errors = %d, %d, %d; want 3, 1002, 4", s.ops, s.rows, s.errors)
	}
	if want := []time.Duration{1, 3, 5}; len(s.latencies) != 3 || s.latencies[0] != want[0] || s.latencies[2] != want[2] {
		t.Errorf("latencies = %v, want %v", s.latencies, want)
	}
	if strings.Join(s.errorSamples, ",") != "boom,bang" {
		t.Errorf("error samples = %q", s.errorSamples)
	}
	s.elapsed = 2 * time.Second
	if s.rate(false) != 1.5 || s.rate(true) != 501 {
		t.Errorf("rates = %v, %v", s.rate(false), s.rate(true))
	}
}

// TestRunLoad drives a loopback server: requests in the warm-up are not
// counted, unexpected statuses are errors, the window hooks run once each.
func TestRunLoad(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.Header.Get("Authorization") != "Apikey k" {
			w.WriteHeader(401)
			return
		}
		if r.URL.Path == "/bad" {
			w.WriteHeader(500)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	client := newHTTPClient(4)
	defer client.CloseIdleConnections()
	var starts, stops atomic.Int64
	win := window{start: func() { starts.Add(1) }, stop: func(bool) { stops.Add(1) }}
	s := runLoad(context.Background(), client, http.Header{"Authorization": {"Apikey k"}}, loadSpec{
		concurrency: 4, warmup: 50 * time.Millisecond, duration: 200 * time.Millisecond,
		next: func(w *worker) (call, bool) {
			if w.seq%10 == 9 {
				return call{method: "GET", url: srv.URL + "/bad", want: 200}, true
			}
			return call{method: "POST", url: srv.URL + "/ok", body: []byte(`{}`), want: 200, rows: 10}, true
		},
	}, win)
	if starts.Load() != 1 || stops.Load() != 1 {
		t.Errorf("window hooks ran %d and %d times, want once each", starts.Load(), stops.Load())
	}
	if s.ops == 0 || s.errors == 0 {
		t.Fatalf("ops %d, errors %d: want both > 0", s.ops, s.errors)
	}
	if s.rows != 10*s.ops {
		t.Errorf("rows = %d, want 10 x %d ops", s.rows, s.ops)
	}
	if int64(len(s.latencies)) != s.ops {
		t.Errorf("%d latencies for %d ops", len(s.latencies), s.ops)
	}
	if s.ops+s.errors >= served.Load() {
		t.Errorf("counted %d of %d requests: the warm-up was counted", s.ops+s.errors, served.Load())
	}
	if len(s.errorSamples) != 1 || !strings.Contains(s.errorSamples[0], "status 500, want 200") {
		t.Errorf("error samples = %q", s.errorSamples)
	}
	// The window's length is measured, not assumed: on a loaded machine
	// its start may come late, so only "measured and not cut short" is
	// asserted.
	if s.exhausted || s.elapsed <= 0 {
		t.Errorf("exhausted %v, elapsed %v", s.exhausted, s.elapsed)
	}
}

// TestRunLoadExhausted: when the work runs out, the window closes early
// and says so.
func TestRunLoadExhausted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	pool := &idPool{next: 1, last: 30}
	var exhaustedHook atomic.Bool
	s := runLoad(context.Background(), newHTTPClient(2), nil, loadSpec{
		concurrency: 2, warmup: 0, duration: 10 * time.Second,
		next: func(w *worker) (call, bool) {
			ids := pool.take(7)
			if ids == nil {
				return call{}, false
			}
			return call{method: "GET", url: srv.URL, want: 200, rows: len(ids)}, true
		},
	}, window{stop: func(exhausted bool) { exhaustedHook.Store(exhausted) }})
	if !s.exhausted || !exhaustedHook.Load() {
		t.Errorf("exhausted = %v (hook %v), want true", s.exhausted, exhaustedHook.Load())
	}
	if s.rows != 30 || s.ops != 5 {
		t.Errorf("rows %d ops %d, want 30 rows in 5 requests", s.rows, s.ops)
	}
	if s.elapsed >= 10*time.Second {
		t.Errorf("elapsed %v: the window did not close when the work ran out", s.elapsed)
	}
}

func TestOpLoop(t *testing.T) {
	n := 0
	s := opLoop(context.Background(), 20*time.Millisecond, 100*time.Millisecond, window{}, func() (int, bool, error) {
		n++
		time.Sleep(time.Millisecond)
		return 1000, true, nil
	})
	if s.ops == 0 || s.rows != 1000*s.ops || s.ops >= int64(n) {
		t.Errorf("ops %d rows %d of %d calls", s.ops, s.rows, n)
	}
}

func TestIDPool(t *testing.T) {
	p := &idPool{next: 11, last: 25}
	if got := p.take(10); len(got) != 10 || got[0] != 11 || got[9] != 20 {
		t.Errorf("first take = %v", got)
	}
	if got := p.take(10); len(got) != 5 || got[0] != 21 || got[4] != 25 {
		t.Errorf("second take = %v", got)
	}
	if got := p.take(10); got != nil {
		t.Errorf("take from an empty pool = %v", got)
	}
}

func TestParseProc(t *testing.T) {
	stat := []byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0\n")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3.25 {
		t.Errorf("parseStatCPU = %v, %v; want 3.25 s", cpu, err)
	}
	status := []byte("Name:\tlicensor\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t9\n")
	m, err := parseStatusMemory(status)
	if err != nil || m.rss != 100<<20 || m.hwm != 200<<20 {
		t.Errorf("parseStatusMemory = %+v, %v", m, err)
	}
	if _, err := cpuSeconds("self"); err != nil {
		t.Errorf("cpuSeconds(self): %v", err)
	}
	if _, err := hostBusySeconds(); err != nil {
		t.Errorf("hostBusySeconds: %v", err)
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int64{"100k": 100_000, "1m": 1_000_000, "10M": 10_000_000, "2500": 2500} {
		if got, err := parseCount(in); err != nil || got != want {
			t.Errorf("parseCount(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-5", "1.5m"} {
		if _, err := parseCount(in); err == nil {
			t.Errorf("parseCount(%q) succeeded", in)
		}
	}
}

func TestFileSafe(t *testing.T) {
	if got := fileSafe("GetLicenses status+stop_date, deep page"); got != "GetLicenses-status-stop-date-deep-page" {
		t.Errorf("fileSafe = %q", got)
	}
}
