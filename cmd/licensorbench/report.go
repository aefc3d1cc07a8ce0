package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is one row of the table: a scenario or a reference.
type Result struct {
	Scenario    string  `json:"scenario"`
	Kind        string  `json:"kind"` // "api", "reference"
	Concurrency int     `json:"concurrency"`
	Unit        string  `json:"unit"` // req/s, rows/s, tx/s
	Rate        float64 `json:"rate"`
	Ops         int64   `json:"ops"`  // requests or transactions in the window
	Rows        int64   `json:"rows"` // rows they stand for
	Seconds     float64 `json:"seconds"`
	Errors      int64   `json:"errors"`
	// ErrorSamples are the first distinct errors; a row with errors is
	// flagged in the table.
	ErrorSamples []string `json:"error_samples,omitempty"`
	P50Ms        float64  `json:"p50_ms"`
	P99Ms        float64  `json:"p99_ms"`
	P999Ms       float64  `json:"p999_ms"`
	// ServerCPU is the cores the server process used during the window
	// (utime+stime deltas from /proc); for the storage references, which
	// run inside the harness, the harness's own.
	ServerCPU float64 `json:"server_cpu_cores"`
	// ServerCPUPerOp is the server's CPU time per unit of Rate (request,
	// transaction or row), in microseconds: a cost that depends much less
	// on how busy the machine is than the rate does.
	ServerCPUPerOp float64 `json:"server_cpu_us_per_op"`
	ClientCPU      float64 `json:"client_cpu_cores"` // the harness (load generator)
	HostCPU        float64 `json:"host_cpu_cores"`   // the whole machine, other tenants included
	// RSSMB and PeakRSSMB are the server's VmRSS and VmHWM after the
	// window; VmHWM is the peak over the process's whole life so far.
	RSSMB     float64 `json:"rss_mb"`
	PeakRSSMB float64 `json:"peak_rss_mb"`
	Reference string  `json:"reference,omitempty"`
	RefRate   float64 `json:"reference_rate,omitempty"`
	Ratio     float64 `json:"ratio,omitempty"`
	Note      string  `json:"note,omitempty"`
	Skipped   bool    `json:"skipped,omitempty"`
	Profile   string  `json:"profile,omitempty"`
	// Generator is what drove the scenario: "wrk", or "" for the harness's
	// own Go generator (and the in-process storage references).
	Generator string `json:"generator,omitempty"`
	// Round is the round of a scenario measured alternately with its
	// reference (A B A B), from 1.
	Round int `json:"round,omitempty"`
}

// Target is one target of the issue checked against this run.
type Target struct {
	Name     string `json:"name"`
	Want     string `json:"want"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int     `json:"cpus"`
	CPUModel  string  `json:"cpu_model"`
	MemoryMB  int64   `json:"memory_mb"`
	Kernel    string  `json:"kernel"`
	GoVersion string  `json:"go_version"`
	LoadAvg1  float64 `json:"loadavg_1m_at_start"`
}

// Report is the whole run, as printed and as written to --out.
type Report struct {
	Date          string   `json:"date"`
	Command       string   `json:"command"`
	Revision      string   `json:"revision"` // git describe of the code measured
	Machine       Machine  `json:"machine"`
	Engine        string   `json:"engine"`
	EngineVersion string   `json:"engine_version"`
	Licenses      int64    `json:"licenses"`
	Users         int64    `json:"users"`
	Products      int64    `json:"products"`
	SeedSeconds   float64  `json:"seed_seconds"`
	DatabaseMB    float64  `json:"database_mb"`
	Warmup        string   `json:"warmup"`
	Duration      string   `json:"duration"`
	Results       []Result `json:"results"`
	Targets       []Target `json:"targets"`
	// Generator is the run's HTTP load generator: "wrk" or "go".
	Generator string `json:"generator,omitempty"`
	// Pinning says which CPUs the servers and wrk ran on.
	Pinning string `json:"pinning,omitempty"`
	Pairs   []Pair `json:"pairs,omitempty"`
	// ColdStart is the cold-start scenario's timeline, when it ran.
	ColdStart *ColdStart `json:"cold_start,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
}

func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				m.MemoryMB = kb >> 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			m.LoadAvg1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return m
}

// fill sets a result's measurements from a sample.
func (r *Result) fill(s sample, byRows bool) {
	r.Rate = s.rate(byRows)
	r.Ops, r.Rows, r.Errors = s.ops, s.rows, s.errors
	r.ErrorSamples = s.errorSamples
	r.Seconds = s.elapsed.Seconds()
	r.P50Ms = ms(percentile(s.latencies, 50))
	r.P99Ms = ms(percentile(s.latencies, 99))
	r.P999Ms = ms(percentile(s.latencies, 99.9))
	if s.exhausted {
		r.addNote(fmt.Sprintf("work ran out after %.1fs of the window", r.Seconds))
	}
}

func (r *Result) setCPUPerOp() {
	if r.Rate > 0 {
		r.ServerCPUPerOp = r.ServerCPU / r.Rate * 1e6
	}
}

func (r *Result) addNote(n string) {
	if r.Note == "" {
		r.Note = n
		return
	}
	r.Note += "; " + n
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeTable prints the report as one aligned table, then the targets.
func writeTable(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "licensorbench %s, licensor %s\n%s: %d licenses, %d users, %d products (seeded in %.0fs, %.0f MB)\n"+
		"%d CPUs (%s), %d MB, Linux %s, %s, load %.2f at start; warm-up %s, window %s per scenario\n",
		rep.Date, rep.Revision, orDash(rep.EngineVersion), rep.Licenses, rep.Users, rep.Products, rep.SeedSeconds, rep.DatabaseMB,
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.MemoryMB, rep.Machine.Kernel, rep.Machine.GoVersion,
		rep.Machine.LoadAvg1, rep.Warmup, rep.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\trate\tunit\tp50 ms\tp99 ms\tp99.9 ms\terrors\tsrv cpu\tµs/op\thost cpu\trss MB\tpeak MB\treference\tref rate\tratio\t")
	for _, r := range rep.Results {
		name := r.Scenario
		if r.Errors > 0 {
			name = "!! " + name
		}
		if r.Skipped {
			fmt.Fprintf(tw, "%s\t%d\t-\t\t\t\t\t\t\t\t\t\t\t%s\t\t\t\n", name, r.Concurrency, "skipped")
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			name, r.Concurrency, fmtRate(r.Rate), r.Unit, fmtMs(r.P50Ms), fmtMs(r.P99Ms), fmtMs(r.P999Ms), r.Errors,
			fmtFloat(r.ServerCPU, 2), fmtRate(r.ServerCPUPerOp), fmtFloat(r.HostCPU, 2), fmtFloat(r.RSSMB, 0), fmtFloat(r.PeakRSSMB, 0),
			orDash(r.Reference), fmtRate(r.RefRate), fmtFloat(r.Ratio, 2))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, r := range rep.Results {
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("  %s (c=%d): %s", r.Scenario, r.Concurrency, r.Note))
		}
		for _, e := range r.ErrorSamples {
			notes = append(notes, fmt.Sprintf("  %s (c=%d) error: %s", r.Scenario, r.Concurrency, e))
		}
	}
	for _, n := range rep.Notes {
		notes = append(notes, "  "+n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(w, "notes:")
		for _, n := range notes {
			fmt.Fprintln(w, n)
		}
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "targets:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range rep.Targets {
			met := "NOT MET"
			if t.Met {
				met = "met"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", met, t.Name, t.Want, t.Measured)
		}
		return tw.Flush()
	}
	return nil
}

func fmtRate(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
}

func fmtMs(v float64) string {
	switch {
	case v == 0:
		return "-"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func fmtFloat(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', prec, 64)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// writeJSON writes the report to path, indented.
func writeJSONFile(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func readJSONFile(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &rep, nil
}

// Scenario names, shared by the scenarios, the targets and compare.
const (
	refHTTP        = "ref: net/http JSON handler"
	refInsertOne   = "ref: driver single-row insert"
	refInsertBatch = "ref: driver batched insert x1000"
	refDeleteBatch = "ref: driver batched delete x1000"

	scGetByID      = "GetLicenseById"
	scByUser       = "GetLicensesByUser"
	scListUser     = "GetLicenses user+status"
	scListProduct  = "GetLicenses product"
	scListRange    = "GetLicenses status+stop_date range"
	scDeepProduct  = "GetLicenses product, deep page"
	scDeepRange    = "GetLicenses status+stop_date, deep page"
	scCreate       = "CreateLicense"
	scBatchCreate  = "BatchCreateLicenses x1000"
	scBatchDelete  = "BatchDeleteLicenses x1000"
	scMixed        = "Mixed BSS (90% reads)"
	scEntitlements = "Entitlements (single user)"
	scEntHot       = "Entitlements (single user, 10k watching)"
	scCheckBatch   = "Entitlements check batch"
)

// listScenarios carry the latency targets of the list endpoints.
var listScenarios = []string{scByUser, scListUser, scListProduct, scListRange, scDeepProduct, scDeepRange}

// evaluateTargets checks the targets of the issue that a single run can
// decide. RSS flatness across data sizes needs two runs: see compare.
func evaluateTargets(rep *Report, concurrency, listConcurrency int) []Target {
	find := func(name string, c int) *Result {
		for i := range rep.Results {
			r := &rep.Results[i]
			if r.Scenario == name && (c == 0 || r.Concurrency == c) && !r.Skipped && r.Rate > 0 {
				return r
			}
		}
		return nil
	}
	var out []Target
	ratio := func(name string, c int, want float64, label string) {
		r := find(name, c)
		if r == nil || r.RefRate == 0 {
			return
		}
		out = append(out, Target{
			Name:     label,
			Want:     fmt.Sprintf(">= %.1f x %s", want, r.Reference),
			Measured: fmt.Sprintf("%.2f x (%s vs %s %s)%s", r.Ratio, fmtRate(r.Rate), fmtRate(r.RefRate), r.Unit, errNote(r)),
			Met:      r.Ratio >= want && r.Errors == 0,
		})
	}
	p99 := func(name string, c int, limit float64, label string) {
		r := find(name, c)
		if r == nil {
			return
		}
		out = append(out, Target{
			Name:     label,
			Want:     fmt.Sprintf("p99 < %.0f ms", limit),
			Measured: fmt.Sprintf("p99 %s ms%s", fmtMs(r.P99Ms), errNote(r)),
			Met:      r.P99Ms < limit && r.Errors == 0,
		})
	}
	ratio(scGetByID, concurrency, 0.5, fmt.Sprintf("%s req/s at c=%d", scGetByID, concurrency))
	p99(scGetByID, concurrency, 10, fmt.Sprintf("%s latency at c=%d", scGetByID, concurrency))
	ratio(scCreate, 64, 1.0, "CreateLicense tx/s at c=64 (group commit)")
	ratio(scBatchCreate, 0, 0.5, "BatchCreateLicenses rows/s")
	limit := 10.0
	if rep.Licenses > 5_000_000 {
		limit = 20
	}
	for _, name := range listScenarios {
		p99(name, listConcurrency, limit, fmt.Sprintf("%s latency at %s licenses, c=%d", name, humanCount(rep.Licenses), listConcurrency))
	}
	ratio(scEntitlements, concurrency, 0.7, fmt.Sprintf("Entitlement check req/s at c=%d, random users", concurrency))
	ratio(scEntHot, concurrency, 0.7, fmt.Sprintf("Entitlement check req/s at c=%d, 10k users watching", concurrency))
	var peak float64
	for _, r := range rep.Results {
		if r.Kind == "api" {
			peak = max(peak, r.PeakRSSMB)
		}
	}
	if peak > 0 {
		out = append(out, Target{Name: "server RSS under load", Want: "< 200 MB", Measured: fmt.Sprintf("peak %.0f MB", peak), Met: peak < 200})
	}
	return out
}

func errNote(r *Result) string {
	if r.Errors == 0 {
		return ""
	}
	return fmt.Sprintf(", %d errors", r.Errors)
}

// humanCount writes 100000 as 100k and 1000000 as 1M.
func humanCount(n int64) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return strconv.FormatInt(n/1_000_000, 10) + "M"
	case n >= 1000 && n%1000 == 0:
		return strconv.FormatInt(n/1000, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// writeComparison prints, for every scenario in both reports, the change
// from a to b: rates, p99, server CPU per operation and peak RSS, as
// ratios b/a. It shows the growth
// of latency with the data size and whether the memory stays flat.
func writeComparison(w io.Writer, a, b *Report) error {
	fmt.Fprintf(w, "a: %s %s %s licenses (%s)\nb: %s %s %s licenses (%s)\n",
		a.Date, a.Engine, humanCount(a.Licenses), a.Command, b.Date, b.Engine, humanCount(b.Licenses), b.Command)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tconc\trate a\trate b\tb/a\tp99 a\tp99 b\tb/a\tµs/op a\tµs/op b\tb/a\tpeak MB a\tpeak MB b\tb/a\t")
	for _, rb := range b.Results {
		for _, ra := range a.Results {
			if ra.Scenario != rb.Scenario || ra.Concurrency != rb.Concurrency || ra.Skipped || rb.Skipped {
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", rb.Scenario, rb.Concurrency,
				fmtRate(ra.Rate), fmtRate(rb.Rate), quotient(rb.Rate, ra.Rate),
				fmtMs(ra.P99Ms), fmtMs(rb.P99Ms), quotient(rb.P99Ms, ra.P99Ms),
				fmtRate(ra.ServerCPUPerOp), fmtRate(rb.ServerCPUPerOp), quotient(rb.ServerCPUPerOp, ra.ServerCPUPerOp),
				fmtFloat(ra.PeakRSSMB, 0), fmtFloat(rb.PeakRSSMB, 0), quotient(rb.PeakRSSMB, ra.PeakRSSMB))
		}
	}
	return tw.Flush()
}

func quotient(b, a float64) string {
	if a == 0 || b == 0 {
		return "-"
	}
	return strconv.FormatFloat(b/a, 'f', 2, 64)
}

// writeMarkdown renders a report as the Markdown that BENCHMARKS.md holds:
// the run's header, the table and the targets.
func writeMarkdown(w io.Writer, rep *Report) error {
	fmt.Fprintf(w, "#### %s, %s licenses\n\n", orDash(rep.EngineVersion), humanCount(rep.Licenses))
	fmt.Fprintf(w, "%s; licensor %s; %d licenses, %d users, %d products (seeded in %.0f s, %.0f MB); "+
		"%d CPUs (%s), Linux %s, %s; load average %.1f at start; warm-up %s, window %s per scenario.\n\n",
		rep.Date, rep.Revision, rep.Licenses, rep.Users, rep.Products, rep.SeedSeconds, rep.DatabaseMB,
		rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.Kernel, rep.Machine.GoVersion, rep.Machine.LoadAvg1,
		rep.Warmup, rep.Duration)
	fmt.Fprintf(w, "`%s`\n\n", rep.Command)
	fmt.Fprintln(w, "| scenario | conc | rate | unit | p50 ms | p99 ms | p99.9 ms | errors | server cpu | cpu µs/op | rss MB | peak MB | reference | ref rate | ratio |")
	fmt.Fprintln(w, "|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|")
	for _, r := range rep.Results {
		if r.Skipped {
			fmt.Fprintf(w, "| %s | %d | skipped: %s |||||||||||||\n", r.Scenario, r.Concurrency, r.Note)
			continue
		}
		name := r.Scenario
		if r.Errors > 0 {
			name = "**" + name + " (errors)**"
		}
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			name, r.Concurrency, fmtRate(r.Rate), r.Unit, fmtMs(r.P50Ms), fmtMs(r.P99Ms), fmtMs(r.P999Ms), r.Errors,
			fmtFloat(r.ServerCPU, 2), fmtRate(r.ServerCPUPerOp), fmtFloat(r.RSSMB, 0), fmtFloat(r.PeakRSSMB, 0),
			orDash(r.Reference), fmtRate(r.RefRate), fmtFloat(r.Ratio, 2))
	}
	var notes []string
	for _, r := range rep.Results {
		if r.Note != "" && !r.Skipped {
			notes = append(notes, fmt.Sprintf("%s (c=%d): %s", r.Scenario, r.Concurrency, r.Note))
		}
		for _, e := range r.ErrorSamples {
			notes = append(notes, fmt.Sprintf("%s (c=%d) error: `%s`", r.Scenario, r.Concurrency, e))
		}
	}
	notes = append(notes, rep.Notes...)
	if len(notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range notes {
			fmt.Fprintf(w, "- %s\n", n)
		}
	}
	if rep.ColdStart != nil {
		writeColdStartMarkdown(w, rep.ColdStart)
	}
	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\n| target | want | measured | |")
		fmt.Fprintln(w, "|---|---|---|---|")
		for _, t := range rep.Targets {
			met := "**not met**"
			if t.Met {
				met = "met"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Want, t.Measured, met)
		}
	}
	fmt.Fprintln(w)
	return nil
}
