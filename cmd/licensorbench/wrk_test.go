package main

import (
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseWrkOutput(t *testing.T) {
	out := []byte("Running 1s test @ http://127.0.0.1:1\n" + wrkMarker +
		`{"requests":1000,"duration_us":2000000,"bytes":5,"errors":{"connect":0,"read":1,"write":0,"status":9,"timeout":0},` +
		`"p50_us":100,"p99_us":900,"p999_us":1500,"max_us":2000,"mean_us":120.5}` + "\n")
	w, err := parseWrkOutput(out)
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Unit: "req/s"}
	res.fillFromWrk(w, 1)
	if res.Ops != 990 || res.Errors != 10 || res.Rate != 495 || res.P999Ms != 1.5 || len(res.ErrorSamples) != 2 {
		t.Fatalf("got %+v", res)
	}
	if _, err := parseWrkOutput([]byte("no summary")); err == nil {
		t.Fatal("want an error without a summary line")
	}
}

// TestWrkScriptAgainstRefServer runs wrk.lua for a second against the
// empty-work reference (skipped when wrk is not installed).
func TestWrkScriptAgainstRefServer(t *testing.T) {
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk not installed (apt-get install -y wrk)")
	}
	srv := newTestRefServer(t)
	w, err := newWrkRunner(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	res, err := w.run(t.Context(), wrkSpec{url: srv, concurrency: 2, threads: 1, duration: time.Second, args: []string{"random", "/ref/", "100"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.errorCount() != 0 || res.P999US < res.P50US {
		t.Fatalf("got %+v", res)
	}
	argv := w.command(wrkSpec{url: srv, concurrency: 2, duration: time.Second, cpus: "1", args: []string{"random", "/x/", "5"}})
	if got := strings.Join(argv[:3], " "); got != "taskset -c 1" {
		t.Fatalf("pinned command starts %q", got)
	}
}

func newTestRefServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(refHandler(nil))
	t.Cleanup(srv.Close)
	return srv.URL
}
