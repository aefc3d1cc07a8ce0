package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleReport() *Report {
	rep := &Report{
		Date: "2026-01-02T03:04:05Z", Command: "go run ./cmd/licensorbench --scale 1m", Revision: "abc123-dirty",
		Machine: Machine{CPUs: 2, CPUModel: "AMD EPYC", GoVersion: "go1.26"},
		Engine:  "sqlite", EngineVersion: "SQLite 3.50", Licenses: 1_000_000, Users: 250_000, Products: 300,
		Warmup: "2s", Duration: "10s",
	}
	ref := Result{Scenario: refHTTP, Kind: "reference", Concurrency: 64, Unit: "req/s", Rate: 20000, P50Ms: 2, P99Ms: 9, P999Ms: 20}
	one := Result{Scenario: refInsertOne, Kind: "reference", Concurrency: 1, Unit: "tx/s", Rate: 500}
	batch := Result{Scenario: refInsertBatch, Kind: "reference", Concurrency: 1, Unit: "rows/s", Rate: 50000}
	byID := Result{Scenario: scGetByID, Kind: "api", Concurrency: 64, Unit: "req/s", Rate: 12000, P50Ms: 4, P99Ms: 8.5, P999Ms: 15,
		ServerCPU: 1.5, RSSMB: 40, PeakRSSMB: 45}
	byUser := Result{Scenario: scByUser, Kind: "api", Concurrency: 4, Unit: "req/s", Rate: 3000, P99Ms: 12, PeakRSSMB: 60}
	create := Result{Scenario: scCreate, Kind: "api", Concurrency: 64, Unit: "req/s", Rate: 450, Errors: 3,
		ErrorSamples: []string{"POST /licenses: status 500, want 201"}, PeakRSSMB: 250}
	bc := Result{Scenario: scBatchCreate, Kind: "api", Concurrency: 4, Unit: "rows/s", Rate: 30000}
	skipped := Result{Scenario: scEntitlements, Kind: "api", Concurrency: 64, Skipped: true, Note: "route missing"}
	for _, p := range []struct{ res, ref *Result }{{&byID, &ref}, {&create, &one}, {&bc, &batch}} {
		p.res.Reference, p.res.RefRate, p.res.Ratio = p.ref.Scenario, p.ref.Rate, p.res.Rate/p.ref.Rate
	}
	byID.setCPUPerOp()
	rep.Results = []Result{ref, one, batch, byID, byUser, create, bc, skipped}
	return rep
}

func TestEvaluateTargets(t *testing.T) {
	rep := sampleReport()
	got := map[string]bool{}
	for _, tg := range evaluateTargets(rep, 64, 4) {
		got[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"GetLicenseById req/s at c=64":                  true,  // 0.6 >= 0.5
		"GetLicenseById latency at c=64":                true,  // 8.5 < 10
		"CreateLicense tx/s at c=64 (group commit)":     false, // 0.9, and errors
		"BatchCreateLicenses rows/s":                    true,  // 0.6
		"GetLicensesByUser latency at 1M licenses, c=4": false, // 12 ms
		"server RSS under load":                         false, // 250 MB
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("targets:\n got %v\nwant %v", got, want)
	}
	// At 10M the list limit is 20 ms.
	rep.Licenses = 10_000_000
	for _, tg := range evaluateTargets(rep, 64, 4) {
		if strings.HasPrefix(tg.Name, scByUser) && (!tg.Met || tg.Want != "p99 < 20 ms") {
			t.Errorf("at 10M: %+v", tg)
		}
	}
}

func TestWriteTable(t *testing.T) {
	rep := sampleReport()
	rep.Targets = evaluateTargets(rep, 64, 4)
	var b bytes.Buffer
	if err := writeTable(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"licensor abc123-dirty",
		"SQLite 3.50: 1000000 licenses",
		"scenario", "p99.9 ms", "ratio",
		"!! CreateLicense", // a scenario with errors is flagged
		"0.60",             // GetLicenseById / reference
		"skipped",
		"error: POST /licenses: status 500",
		"NOT MET  server RSS under load",
		"met      GetLicenseById req/s at c=64",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// One line per result between the header and the notes.
	lines := strings.Split(out, "\n")
	var header int
	for i, l := range lines {
		if strings.Contains(l, "p99.9 ms") {
			header = i
		}
	}
	if !strings.Contains(lines[header+len(rep.Results)], "Entitlements") || !strings.HasPrefix(lines[header+len(rep.Results)+1], "notes:") {
		t.Errorf("rows are not one per result:\n%s", out)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	rep := sampleReport()
	rep.Targets = evaluateTargets(rep, 64, 4)
	path := filepath.Join(t.TempDir(), "run.json")
	if err := writeJSONFile(path, rep); err != nil {
		t.Fatal(err)
	}
	back, err := readJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rep) {
		t.Errorf("round trip changed the report:\n got %+v\nwant %+v", back, rep)
	}
}

func TestComparison(t *testing.T) {
	a, b := sampleReport(), sampleReport()
	b.Licenses = 10_000_000
	b.Results[3].P99Ms *= 1.5
	b.Results[3].PeakRSSMB = 54
	var out bytes.Buffer
	if err := writeComparison(&out, a, b); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{"1M licenses", "10M licenses", "GetLicenseById", "1.50", "1.20"} {
		if !strings.Contains(s, want) {
			t.Errorf("comparison lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, scEntitlements) {
		t.Errorf("a skipped scenario is compared:\n%s", s)
	}
}

func TestResultFill(t *testing.T) {
	lat := make([]time.Duration, 1000)
	for i := range lat {
		lat[i] = time.Duration(i+1) * time.Millisecond
	}
	var r Result
	r.fill(sample{ops: 1000, rows: 1000, latencies: lat, elapsed: 10 * time.Second, exhausted: true}, false)
	if r.Rate != 100 || r.P50Ms != 500 || r.P99Ms != 990 || r.P999Ms != 999 {
		t.Errorf("fill = %+v", r)
	}
	if !strings.Contains(r.Note, "ran out") {
		t.Errorf("note = %q", r.Note)
	}
}

func TestWriteMarkdown(t *testing.T) {
	rep := sampleReport()
	rep.Targets = evaluateTargets(rep, 64, 4)
	var b bytes.Buffer
	if err := writeMarkdown(&b, rep); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"#### SQLite 3.50, 1M licenses",
		"`go run ./cmd/licensorbench --scale 1m`",
		"| GetLicenseById | 64 | 12000 | req/s | 4.00 | 8.50 | 15.0 | 0 | 1.50 | 125 | 40 | 45 | ref: net/http JSON handler | 20000 | 0.60 |",
		"| **CreateLicense (errors)** | 64 |",
		"| Entitlements (single user) | 64 | skipped: route missing |",
		"| server RSS under load | < 200 MB | peak 250 MB | **not met** |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
	// Every table row has the header's number of columns.
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "| scenario") || (strings.HasPrefix(line, "| ") && strings.Count(line, "|") > 5) {
			if n := strings.Count(line, "|"); n != 16 {
				t.Errorf("%d pipes in %q", n, line)
			}
		}
	}
}

// TestRefHandler: the reference answers with a license-shaped document.
func TestRefHandler(t *testing.T) {
	rec := httptest.NewRecorder()
	refHandler(nil).ServeHTTP(rec, httptest.NewRequest("GET", "/ref/42", nil))
	var doc struct {
		Data struct {
			ID            string
			Relationships struct {
				User struct {
					Data struct{ ID string } `json:"data"`
				} `json:"user"`
			} `json:"relationships"`
		} `json:"data"`
	}
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc.Data.ID != "42" || doc.Data.Relationships.User.Data.ID != "41" {
		t.Errorf("GET /ref/42: %d %s", rec.Code, rec.Body)
	}
	if n := rec.Body.Len(); n < 400 || n > 700 {
		t.Errorf("the reference document is %d bytes, not the size of a license", n)
	}
}
