package main

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"time"
)

// The wrk generator's run (issue 17, the default when wrk is installed):
// each scenario is measured against its reference A B A B (--rounds
// times), both driven by wrk, so that a ratio is taken between
// measurements minutes apart at most and the spread of the rounds shows
// how much the neighbours moved it.

const (
	refPoint = "ref: driver point read + encoding/json"
	refList  = "ref: driver list page of 100 + encoding/json"
)

// Pair is a scenario and its reference measured alternately.
type Pair struct {
	Scenario    string  `json:"scenario"`
	Reference   string  `json:"reference"`
	Concurrency int     `json:"concurrency"`
	Rates       []int64 `json:"rates"`     // per round
	RefRates    []int64 `json:"ref_rates"` // per round
	// Ratio is the sum of the scenario's rates over the sum of the
	// reference's; RatioMin and RatioMax are the rounds' extremes.
	Ratio    float64 `json:"ratio"`
	RatioMin float64 `json:"ratio_min"`
	RatioMax float64 `json:"ratio_max"`
	// P999Ms and RefP999Ms are the worst p99.9 of the rounds, and
	// P999Ratio their quotient.
	P999Ms    float64 `json:"p999_ms"`
	RefP999Ms float64 `json:"ref_p999_ms"`
	P999Ratio float64 `json:"p999_ratio"`
	Errors    int64   `json:"errors"`
}

// wrkRun is one scenario or reference driven by wrk.
type wrkRun struct {
	name        string
	kind        string // "api" or "reference"
	concurrency int
	proc        *process
	url         string
	args        []string // wrk.lua's
	round       int
}

// pinning returns the CPUs of the servers and of wrk: with two CPUs or
// more, wrk gets the last one and the servers the others.
func pinning(enabled bool) (servers, generator string) {
	n := runtime.NumCPU()
	if !enabled || n < 2 {
		return "", ""
	}
	if n == 2 {
		return "0", "1"
	}
	return fmt.Sprintf("0-%d", n-2), strconv.Itoa(n - 1)
}

func (r *runner) measureWrk(ctx context.Context, h wrkRun) *Result {
	res := &Result{Scenario: h.name, Kind: h.kind, Concurrency: h.concurrency, Unit: "req/s", Generator: "wrk", Round: h.round}
	spec := wrkSpec{url: h.url, concurrency: h.concurrency, threads: r.cfg.wrkThreads, header: r.header, args: h.args, cpus: r.wrkCPUs}
	if r.cfg.warmup > 0 {
		spec.duration = r.cfg.warmup
		if _, err := r.wrk.run(ctx, spec); err != nil {
			res.Errors, res.ErrorSamples = 1, []string{"warm-up: " + err.Error()}
			r.report(res)
			return res
		}
	}
	spec.duration = r.cfg.duration
	meter := &cpuMeter{pid: h.proc.pid()}
	prof := r.profiler(httpRun{name: h.name, concurrency: h.concurrency, proc: h.proc})
	if h.round > 1 {
		prof = &profiler{} // one profile per scenario: the first round's
	}
	meter.start()
	prof.start(ctx)
	out, err := r.wrk.run(ctx, spec)
	meter.stop()
	if err != nil {
		res.Errors, res.ErrorSamples = 1, []string{err.Error()}
	} else {
		res.fillFromWrk(out, 1)
		res.ClientCPU = out.cpu
	}
	res.ServerCPU, res.HostCPU = meter.proc, meter.host
	res.setCPUPerOp()
	if m, err := readMemory(h.proc.pid()); err == nil {
		res.RSSMB, res.PeakRSSMB = float64(m.rss)/(1<<20), float64(m.hwm)/(1<<20)
	}
	res.Profile = prof.wait()
	r.report(res)
	return res
}

// pair measures a and ref alternately, --rounds times each, and records
// the pair.
func (r *runner) pair(ctx context.Context, a, ref wrkRun) {
	if ctx.Err() != nil || !r.want(a.name) {
		return
	}
	var xs, ys []*Result
	for round := 1; round <= r.cfg.rounds && ctx.Err() == nil; round++ {
		a.round, ref.round = round, round
		x := r.measureWrk(ctx, a)
		y := r.measureWrk(ctx, ref)
		r.relate(x, y)
		r.rep.Results[len(r.rep.Results)-2] = *x
		xs, ys = append(xs, x), append(ys, y)
	}
	r.addPair(buildPair(a.name, ref.name, a.concurrency, xs, ys))
}

// addPair records a pair and logs it.
func (r *runner) addPair(p Pair) {
	r.rep.Pairs = append(r.rep.Pairs, p)
	r.logf("pair %s / %s c=%d: %.2f x (rounds %.2f-%.2f), p99.9 %.1f / %.1f ms (%.2f x)",
		p.Scenario, p.Reference, p.Concurrency, p.Ratio, p.RatioMin, p.RatioMax, p.P999Ms, p.RefP999Ms, p.P999Ratio)
}

// buildPair sums the rounds of a scenario (xs) and of its reference (ys,
// the same rounds in the same order): the ratio of the sums, the rounds'
// extreme ratios, the worst p99.9 of each side.
func buildPair(scenario, reference string, conc int, xs, ys []*Result) Pair {
	p := Pair{Scenario: scenario, Reference: reference, Concurrency: conc}
	var sumA, sumB float64
	first := true
	for i := range min(len(xs), len(ys)) {
		x, y := xs[i], ys[i]
		p.Rates = append(p.Rates, int64(x.Rate))
		p.RefRates = append(p.RefRates, int64(y.Rate))
		sumA += x.Rate
		sumB += y.Rate
		p.P999Ms = max(p.P999Ms, x.P999Ms)
		p.RefP999Ms = max(p.RefP999Ms, y.P999Ms)
		p.Errors += x.Errors + y.Errors
		if y.Rate > 0 {
			q := x.Rate / y.Rate
			if first || q < p.RatioMin {
				p.RatioMin = q
			}
			first = false
			p.RatioMax = max(p.RatioMax, q)
		}
	}
	if sumB > 0 {
		p.Ratio = sumA / sumB
	}
	if p.RefP999Ms > 0 {
		p.P999Ratio = p.P999Ms / p.RefP999Ms
	}
	return p
}

// runScenariosWrk is the wrk generator's run: the pairs, then the creates
// against the driver's single-row inserts (measured in the harness's own
// process: wrk cannot drive a database).
func (r *runner) runScenariosWrk(ctx context.Context) {
	cfg, wl := r.cfg, r.wl
	c := cfg.concurrency
	n := strconv.FormatInt(wl.licenses, 10)
	users := strconv.FormatInt(wl.users, 10)
	products := strconv.FormatInt(wl.products, 10)
	srv := func(name string, conc int, args ...string) wrkRun {
		return wrkRun{name: name, kind: "api", concurrency: conc, proc: r.server, url: wl.base, args: args}
	}
	ref := func(name string, conc int, args ...string) wrkRun {
		return wrkRun{name: name, kind: "reference", concurrency: conc, proc: r.ref, url: r.refBase, args: args}
	}
	empty := ref(refHTTP, c, "random", "/ref/", n)
	hot := min(wl.users, hotUsers)

	r.pair(ctx, srv(scGetByID, c, "random", apiPath+"/licenses/", n), ref(refPoint, c, "random", "/ref/license/", n))
	r.pair(ctx, srv(scGetByID+" (vs HTTP limit)", c, "random", apiPath+"/licenses/", n), empty)
	entHot := srv(scEntHot, c, "stride", apiPath+"/users/", strconv.FormatInt(hot, 10), strconv.FormatInt(wl.users/hot, 10), "/entitlements")
	if ctx.Err() == nil && r.want(entHot.name) {
		// The watched users' entitlements cached first: the pair measures
		// repeated checks, not the loads of its first seconds (with a
		// short --warmup its first round was mostly loads).
		d, per, warm, err := r.warmCache(ctx, wrkSpec{url: wl.base, concurrency: c, threads: r.cfg.wrkThreads, header: r.header,
			cpus: r.wrkCPUs, args: entHot.args}, &http.Client{Timeout: time.Second})
		if err != nil || !warm {
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%s: the cache still loaded %.3f times per request after %.0f s of warm-up (%v)", entHot.name, per, d.Seconds(), err))
		}
	}
	r.pair(ctx, entHot, empty)
	r.pair(ctx, srv(scEntitlements, c, "random", apiPath+"/users/", users, "/entitlements"), empty)
	for _, conc := range []int{c, cfg.listConcurrency} {
		r.pair(ctx, srv(scListProduct+" (page of 100)", conc, "random", apiPath+"/licenses?filter[product_id]=", products),
			ref(refList, conc, "random", "/ref/licenses?product=", products))
		if cfg.listConcurrency == c {
			break
		}
	}

	// The cold start before the writes: its steady state is the read
	// path's, not a cache still catching up with a burst of creates (the
	// scenarios after it have their own warm-ups).
	r.coldStart(ctx)

	if ctx.Err() == nil && r.want(scCreate) {
		one, _, _, err := r.storageRefsOnly(ctx)
		if err != nil {
			r.rep.Notes = append(r.rep.Notes, "storage references failed: "+err.Error())
		}
		res := r.measureWrk(ctx, wrkRun{name: scCreate, kind: "api", concurrency: c, proc: r.server, url: wl.base,
			args: []string{"create", apiPath + "/licenses", users, products, wl.tag + strconv.FormatInt(time.Now().Unix()%100000, 10)}, round: 1})
		if one != nil {
			r.relate(res, one)
			r.rep.Results[len(r.rep.Results)-1] = *res
		}
	}
	r.twoInstances(ctx)
}

// storageRefsOnly measures the single-row insert reference alone.
func (r *runner) storageRefsOnly(ctx context.Context) (*Result, *Result, *Result, error) {
	saved := r.cfg.scenarios
	defer func() { r.cfg.scenarios = saved }()
	r.cfg.scenarios = regexp.MustCompile("^" + regexp.QuoteMeta(refInsertOne) + "$")
	return r.storageRefs(ctx)
}

// evaluateWrkTargets checks the targets of issue 17 on the pairs.
func evaluateWrkTargets(rep *Report) []Target {
	var out []Target
	find := func(name string, c int) *Pair {
		for i := range rep.Pairs {
			if p := &rep.Pairs[i]; p.Scenario == name && p.Concurrency == c {
				return p
			}
		}
		return nil
	}
	ratio := func(p *Pair, want float64, label string) {
		if p == nil || p.Ratio == 0 {
			return
		}
		out = append(out, Target{Name: label, Want: fmt.Sprintf(">= %.1f x %s", want, p.Reference),
			Measured: fmt.Sprintf("%.2f x (rounds %.2f-%.2f; %v vs %v req/s)", p.Ratio, p.RatioMin, p.RatioMax, p.Rates, p.RefRates),
			Met:      p.Ratio >= want && p.Errors == 0})
		out = append(out, Target{Name: label + ", p99.9", Want: "<= 1.5 x the reference's p99.9",
			Measured: fmt.Sprintf("%.2f x (%s vs %s ms)", p.P999Ratio, fmtMs(p.P999Ms), fmtMs(p.RefP999Ms)),
			Met:      p.P999Ratio > 0 && p.P999Ratio <= 1.5})
	}
	var conc []int
	for _, p := range rep.Pairs {
		if !slices.Contains(conc, p.Concurrency) {
			conc = append(conc, p.Concurrency)
		}
	}
	for _, c := range conc {
		ratio(find(scGetByID, c), 0.8, fmt.Sprintf("%s at c=%d", scGetByID, c))
		ratio(find(scEntHot, c), 0.9, fmt.Sprintf("Entitlement GET at c=%d, 10k users watching", c))
		ratio(find(scEntitlements, c), 0.7, fmt.Sprintf("Entitlement GET at c=%d, users uniform over all", c))
		ratio(find(scListProduct+" (page of 100)", c), 0.7, fmt.Sprintf("List page of 100 at c=%d", c))
	}
	for _, r := range rep.Results {
		if r.Scenario == scCreate && r.RefRate > 0 {
			out = append(out, Target{Name: fmt.Sprintf("CreateLicense at c=%d (wrk)", r.Concurrency), Want: ">= 1.0 x " + r.Reference,
				Measured: fmt.Sprintf("%.2f x (%s vs %s)", r.Ratio, fmtRate(r.Rate), fmtRate(r.RefRate)), Met: r.Ratio >= 1 && r.Errors == 0})
		}
	}
	out = append(out, twoInstanceTargetsOf(rep)...)
	out = append(out, coldStartTargets(rep.ColdStart)...)
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
