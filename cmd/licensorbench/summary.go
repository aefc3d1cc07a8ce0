package main

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// runSummary renders several --out files side by side: each target of the
// issue as measured in each run, and how the cost of each read scenario
// grows with the data (the tables at the top of BENCHMARKS.md).
func runSummary(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"usage: licensorbench summary RUN.json..."}
	}
	var reps []*Report
	for _, path := range args {
		rep, err := readJSONFile(path)
		if err != nil {
			return err
		}
		reps = append(reps, rep)
	}
	// SQLite (the default engine) first, then PostgreSQL, sizes
	// ascending within each, whatever the order of the files.
	order := map[string]int{"sqlite": 0, "postgres": 1}
	slices.SortStableFunc(reps, func(a, b *Report) int {
		if a.Engine != b.Engine {
			return order[a.Engine] - order[b.Engine]
		}
		return int(a.Licenses - b.Licenses)
	})
	writeTargetSummary(stdout, reps)
	writeGrowth(stdout, reps)
	return nil
}

// atScale is the part of a target's name that names the run's size.
var atScale = regexp.MustCompile(` at [0-9.]+[kM]? licenses`)

func runTitle(r *Report) string {
	name := "SQLite"
	if r.Engine == "postgres" {
		name = "PostgreSQL"
	}
	return name + " " + humanCount(r.Licenses)
}

func writeTargetSummary(w io.Writer, reps []*Report) {
	// A row per target; its want may depend on the size (the lists'
	// latency bound is looser at 10M), so the wants seen are listed.
	var rows []string
	wants := map[string][]string{}
	cells := map[string][]string{}
	for i, r := range reps {
		for _, t := range r.Targets {
			k := atScale.ReplaceAllString(t.Name, "")
			if _, ok := cells[k]; !ok {
				rows = append(rows, k)
				cells[k] = make([]string, len(reps))
			}
			if !slices.Contains(wants[k], t.Want) {
				wants[k] = append(wants[k], t.Want)
			}
			measured, _, _ := strings.Cut(t.Measured, " (")
			mark := "❌"
			if t.Met {
				mark = "✅"
			}
			cells[k][i] = mark + " " + measured
		}
	}
	fmt.Fprint(w, "| target | want |")
	for _, r := range reps {
		fmt.Fprintf(w, " %s |", runTitle(r))
	}
	fmt.Fprint(w, "\n|---|---|")
	fmt.Fprint(w, strings.Repeat("---|", len(reps)))
	fmt.Fprintln(w)
	for _, k := range rows {
		fmt.Fprintf(w, "| %s | %s |", k, strings.Join(wants[k], "; "))
		for _, c := range cells[k] {
			fmt.Fprintf(w, " %s |", orDash(c))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// writeGrowth lists, per engine, the server CPU per operation and the p99
// of every API scenario measured at more than one size.
func writeGrowth(w io.Writer, reps []*Report) {
	byEngine := map[string][]*Report{}
	var engines []string
	for _, r := range reps {
		if _, ok := byEngine[r.Engine]; !ok {
			engines = append(engines, r.Engine)
		}
		byEngine[r.Engine] = append(byEngine[r.Engine], r)
	}
	for _, e := range engines {
		runs := byEngine[e]
		if len(runs) < 2 {
			continue
		}
		type key struct {
			scenario string
			conc     int
		}
		var keys []key
		val := map[key][]*Result{}
		for i, r := range runs {
			for j := range r.Results {
				res := &r.Results[j]
				if res.Skipped || res.Kind != "api" {
					continue
				}
				k := key{res.Scenario, res.Concurrency}
				if _, ok := val[k]; !ok {
					keys = append(keys, k)
					val[k] = make([]*Result, len(runs))
				}
				val[k][i] = res
			}
		}
		fmt.Fprintf(w, "%s: server CPU µs per operation and p99 ms, by size\n\n", strings.TrimSuffix(runTitle(runs[0]), " "+humanCount(runs[0].Licenses)))
		fmt.Fprint(w, "| scenario | conc |")
		for _, r := range runs {
			fmt.Fprintf(w, " µs/op %s |", humanCount(r.Licenses))
		}
		fmt.Fprint(w, " last / first |")
		for _, r := range runs {
			fmt.Fprintf(w, " p99 %s |", humanCount(r.Licenses))
		}
		fmt.Fprint(w, "\n|---|--:|")
		fmt.Fprint(w, strings.Repeat("--:|", 2*len(runs)+1))
		fmt.Fprintln(w)
		for _, k := range keys {
			vs := val[k]
			var first, last *Result
			n := 0
			for _, v := range vs {
				if v == nil {
					continue
				}
				n++
				if first == nil {
					first = v
				}
				last = v
			}
			if n < 2 {
				continue
			}
			fmt.Fprintf(w, "| %s | %d |", k.scenario, k.conc)
			for _, v := range vs {
				if v == nil {
					fmt.Fprint(w, " – |")
					continue
				}
				fmt.Fprintf(w, " %s |", fmtRate(v.ServerCPUPerOp))
			}
			fmt.Fprintf(w, " %s |", quotient(last.ServerCPUPerOp, first.ServerCPUPerOp))
			for _, v := range vs {
				if v == nil {
					fmt.Fprint(w, " – |")
					continue
				}
				fmt.Fprintf(w, " %s |", fmtMs(v.P99Ms))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintln(w)
	}
}
