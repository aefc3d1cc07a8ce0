package main

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestSummary(t *testing.T) {
	dir := t.TempDir()
	report := func(licenses int64, cpu, p99 float64, met bool) string {
		rep := &Report{Engine: "sqlite", Licenses: licenses, Results: []Result{
			{Scenario: "GetLicenseById", Kind: "api", Concurrency: 64, ServerCPUPerOp: cpu, P99Ms: p99},
			{Scenario: "ref: net/http JSON handler", Kind: "reference", Concurrency: 64, ServerCPUPerOp: 20},
		}, Targets: []Target{{Name: "GetLicensesByUser latency at " + humanCount(licenses) + " licenses, c=4",
			Want: "p99 < " + strconv.FormatInt(licenses/100_000, 10) + " ms", Measured: "p99 3 ms", Met: met}}}
		path := filepath.Join(dir, humanCount(licenses)+".json")
		if err := writeJSONFile(path, rep); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Given out of order: the summary sorts by size.
	big, small := report(1_000_000, 100, 12, false), report(100_000, 50, 3, true)
	var out strings.Builder
	if err := run(t.Context(), []string{"summary", big, small}, &out, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| target | want | SQLite 100k | SQLite 1M |",
		"| GetLicensesByUser latency, c=4 | p99 < 1 ms; p99 < 10 ms | ✅ p99 3 ms | ❌ p99 3 ms |",
		"| GetLicenseById | 64 | 50.0 | 100 | 2.00 | 3.00 | 12.0 |",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "ref: net/http") {
		t.Errorf("the growth table lists a reference:\n%s", out.String())
	}
}
