package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Two instances on one PostgreSQL (issue 17): a second licensor serve on
// the run's database, on its own port and with its workers, as a second
// production instance runs. Each scenario is measured on one instance and
// on two at the same total concurrency, alternately one two one two
// (--rounds times), always with two wrk processes of c/2 connections each:
// on one instance both send to it, on two each sends to its own. So both
// sides pay the same generator, and the ratio is two / one.

const (
	scTwoPrefix = "Two instances: "
	oneInstance = "One instance: "

	scTwoEntHot = scTwoPrefix + "Entitlements (single user, 10k watching)"
	scTwoGet    = scTwoPrefix + "GetLicenseById"
	scTwoCreate = scTwoPrefix + "CreateLicense"
)

// twoInstanceTargets are the ratios two / one the issue asks for.
var twoInstanceTargets = []struct {
	scenario string
	want     float64
}{
	{scTwoEntHot, 1.6},
	{scTwoGet, 1.0}, // not a target of the issue: reads are not slower
	{scTwoCreate, 1.0},
}

// wrkTarget is one of the wrk processes of a split measurement.
type wrkTarget struct {
	url  string
	proc *process
	args []string
}

// measureWrkSplit runs one wrk process per target in parallel, conc
// connections each (a warm-up, then the window), and sums them into one
// result: the rates summed, the worst latency percentiles, the server CPU
// of the distinct processes summed.
//
// watch, if not nil, is called as the window starts; what the function it
// returns gives back at the window's end becomes a note.
func (r *runner) measureWrkSplit(ctx context.Context, name string, round, conc int, targets []wrkTarget, watch func() func() string) *Result {
	res := &Result{Scenario: name, Kind: "api", Concurrency: conc * len(targets), Unit: "req/s", Generator: "wrk", Round: round}
	runAll := func(d time.Duration) ([]*wrkResult, error) {
		outs := make([]*wrkResult, len(targets))
		errs := make([]error, len(targets))
		var wg sync.WaitGroup
		for i, t := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				outs[i], errs[i] = r.wrk.run(ctx, wrkSpec{url: t.url, concurrency: conc, threads: r.cfg.wrkThreads,
					header: r.header, args: t.args, cpus: r.wrkCPUs, duration: d})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return nil, err
			}
		}
		return outs, nil
	}
	if r.cfg.warmup > 0 {
		if _, err := runAll(r.cfg.warmup); err != nil {
			res.Errors, res.ErrorSamples = 1, []string{"warm-up: " + err.Error()}
			return res
		}
	}
	var procs []*process
	for _, t := range targets {
		if !containsProc(procs, t.proc) {
			procs = append(procs, t.proc)
		}
	}
	meters := make([]*cpuMeter, len(procs))
	host := &cpuMeter{}
	host.start()
	for i, p := range procs {
		meters[i] = &cpuMeter{pid: p.pid()}
		meters[i].start()
	}
	var watched func() string
	if watch != nil {
		watched = watch()
	}
	outs, err := runAll(r.cfg.duration)
	for _, m := range meters {
		m.stop()
		res.ServerCPU += m.proc
	}
	host.stop()
	res.HostCPU = host.host
	if err != nil {
		res.Errors, res.ErrorSamples = 1, []string{err.Error()}
	} else {
		res.fillFromWrkSplit(outs)
	}
	res.setCPUPerOp()
	for _, p := range procs {
		if m, err := readMemory(p.pid()); err == nil {
			res.RSSMB, res.PeakRSSMB = max(res.RSSMB, float64(m.rss)/(1<<20)), max(res.PeakRSSMB, float64(m.hwm)/(1<<20))
		}
	}
	res.addNote(fmt.Sprintf("%d wrk processes x c=%d, %d instance(s)", len(targets), conc, len(procs)))
	if watched != nil {
		if n := watched(); n != "" {
			res.addNote(n)
		}
	}
	return res
}

func containsProc(ps []*process, p *process) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// fillFromWrkSplit sets a result from wrk processes that ran side by side:
// the rate is the sum of their rates (each its requests over its own
// duration), the percentiles the worst of theirs, the window the longest.
func (r *Result) fillFromWrkSplit(ws []*wrkResult) {
	r.Rate, r.Ops, r.Rows, r.Errors, r.ErrorSamples, r.ClientCPU = 0, 0, 0, 0, nil, 0
	r.P50Ms, r.P99Ms, r.P999Ms, r.Seconds = 0, 0, 0, 0
	for _, w := range ws {
		var one Result
		one.Unit = r.Unit
		one.fillFromWrk(w, 1)
		r.Rate += one.Rate
		r.Ops += one.Ops
		r.Rows += one.Rows
		r.Errors += one.Errors
		r.ErrorSamples = append(r.ErrorSamples, one.ErrorSamples...)
		r.Seconds = max(r.Seconds, one.Seconds)
		r.P50Ms, r.P99Ms, r.P999Ms = max(r.P50Ms, one.P50Ms), max(r.P99Ms, one.P99Ms), max(r.P999Ms, one.P999Ms)
		r.ClientCPU += w.cpu
	}
}

// twoInstances runs the two-instance pairs (PostgreSQL only: SQLite has one
// writer per file, and a second process on the file is not a deployment
// licensor supports for scaling).
func (r *runner) twoInstances(ctx context.Context) {
	if ctx.Err() != nil || !r.wantAny(scTwoEntHot, scTwoGet, scTwoCreate) {
		return
	}
	c := r.cfg.concurrency
	if r.eng.kind != "postgres" {
		for _, n := range []string{scTwoEntHot, scTwoGet, scTwoCreate} {
			if r.want(n) {
				r.skip(n, c, "PostgreSQL only (--postgres): instances share a database there")
			}
		}
		return
	}
	if c < 2 {
		r.skip(scTwoEntHot, c, "--concurrency must be at least 2 to split it over two instances")
		return
	}
	addr, err := freePort()
	if err != nil {
		r.skip(scTwoEntHot, c, err.Error())
		return
	}
	second, err := r.startServer(ctx, "server-second", addr, "")
	if err != nil {
		r.skip(scTwoEntHot, c, "start the second instance: "+err.Error())
		return
	}
	defer second.stop(40 * time.Second)
	r.logf("second licensor instance on %s, pid %s", addr, second.pid())
	var watch func() func() string
	if admin, err := pgx.Connect(ctx, r.eng.adminURL); err == nil {
		defer admin.Close(context.WithoutCancel(ctx))
		watch = pgWatch(ctx, admin, "licensor_bench_"+r.eng.tag+"_main")
	}
	wl := r.wl
	baseB := "http://" + addr
	hot := min(wl.users, hotUsers)
	users, products := strconv.FormatInt(wl.users, 10), strconv.FormatInt(wl.products, 10)
	type scenario struct {
		name string
		args func(round int, which string) []string
	}
	for _, sc := range []scenario{
		{scTwoEntHot, func(int, string) []string {
			return []string{"stride", apiPath + "/users/", strconv.FormatInt(hot, 10), strconv.FormatInt(wl.users/hot, 10), "/entitlements"}
		}},
		{scTwoGet, func(int, string) []string {
			return []string{"random", apiPath + "/licenses/", strconv.FormatInt(wl.licenses, 10)}
		}},
		{scTwoCreate, func(round int, which string) []string {
			// a tag per process and round: order ids stay unique
			return []string{"create", apiPath + "/licenses", users, products,
				fmt.Sprintf("%s%d-r%d%s", wl.tag, time.Now().Unix()%100000, round, which)}
		}},
	} {
		if ctx.Err() != nil || !r.want(sc.name) {
			continue
		}
		refName := oneInstance + sc.name[len(scTwoPrefix):]
		if sc.name == scTwoEntHot {
			// Both caches warm first: the second instance starts cold.
			client := &http.Client{Timeout: time.Second}
			for _, base := range []string{wl.base, baseB} {
				d, per, warm, err := r.warmCache(ctx, wrkSpec{url: base, concurrency: c, threads: r.cfg.wrkThreads, header: r.header,
					cpus: r.wrkCPUs, args: sc.args(0, "")}, client)
				if err != nil || !warm {
					r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("%s: the cache of %s still loaded %.3f times per request after %.0f s of warm-up (%v)", sc.name, base, per, d.Seconds(), err))
				}
			}
		}
		var xs, ys []*Result
		for round := 1; round <= r.cfg.rounds && ctx.Err() == nil; round++ {
			y := r.measureWrkSplit(ctx, refName, round, c/2, []wrkTarget{
				{wl.base, r.server, sc.args(round, "a1")}, {wl.base, r.server, sc.args(round, "b1")}}, watch)
			y.Kind = "reference"
			r.report(y)
			x := r.measureWrkSplit(ctx, sc.name, round, c/2, []wrkTarget{
				{wl.base, r.server, sc.args(round, "a2")}, {baseB, second, sc.args(round, "b2")}}, watch)
			r.relate(x, y)
			r.report(x)
			xs, ys = append(xs, x), append(ys, y)
		}
		r.addPair(buildPair(sc.name, refName, 2*(c/2), xs, ys))
	}
}

// twoInstanceTargetsOf checks the two-instance ratios of a run.
func twoInstanceTargetsOf(rep *Report) []Target {
	var out []Target
	for _, t := range twoInstanceTargets {
		for _, p := range rep.Pairs {
			if p.Scenario != t.scenario || p.Ratio == 0 {
				continue
			}
			out = append(out, Target{Name: fmt.Sprintf("%s at c=%d, two / one", p.Scenario, p.Concurrency),
				Want: fmt.Sprintf(">= %.1f x one instance", t.want),
				Measured: fmt.Sprintf("%.2f x (rounds %.2f-%.2f; %v vs %v req/s; p99.9 %s vs %s ms)",
					p.Ratio, p.RatioMin, p.RatioMax, p.Rates, p.RefRates, fmtMs(p.P999Ms), fmtMs(p.RefP999Ms)),
				Met: p.Ratio >= t.want && p.Errors == 0})
		}
	}
	return out
}

// pgWatch returns a watch for measureWrkSplit that tells what the
// database did in the window: its commits per second (pg_stat_database)
// and what its backends were waiting on, sampled from pg_stat_activity
// every 100 ms (the share of backend samples per wait event, "CPU" for
// active backends waiting on nothing). It is what shows whether writes
// queue on a lock (Lock:tuple, Lock:transactionid: the feed's counter row)
// or on the WAL (IO:WALSync, LWLock:WALWrite).
func pgWatch(ctx context.Context, conn *pgx.Conn, db string) func() func() string {
	commits := func() (int64, bool) {
		var n int64
		err := conn.QueryRow(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = $1`, db).Scan(&n)
		return n, err == nil
	}
	return func() func() string {
		t0 := time.Now()
		c0, ok0 := commits()
		stop := make(chan struct{})
		done := make(chan map[string]int, 1)
		go func() {
			waits := map[string]int{}
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stop:
					done <- waits
					return
				case <-tick.C:
				}
				rows, err := conn.Query(ctx, `SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity
WHERE datname = $1 AND state = 'active' AND pid <> pg_backend_pid()`, db)
				if err != nil {
					continue
				}
				for rows.Next() {
					var w string
					if rows.Scan(&w) == nil {
						waits[w]++
					}
				}
				rows.Close()
			}
		}()
		return func() string {
			close(stop)
			waits := <-done
			c1, ok1 := commits()
			var parts []string
			if d := time.Since(t0).Seconds(); ok0 && ok1 && d > 0 {
				parts = append(parts, fmt.Sprintf("PostgreSQL %.0f commits/s", float64(c1-c0)/d))
			}
			if w := formatWaits(waits); w != "" {
				parts = append(parts, "active backends waiting on "+w)
			}
			return strings.Join(parts, "; ")
		}
	}
}

// formatWaits lists wait events by their share of the samples, largest
// first, the first five.
func formatWaits(waits map[string]int) string {
	total := 0
	keys := make([]string, 0, len(waits))
	for k, n := range waits {
		total += n
		keys = append(keys, k)
	}
	if total == 0 {
		return ""
	}
	slices.SortFunc(keys, func(a, b string) int {
		if waits[a] != waits[b] {
			return waits[b] - waits[a]
		}
		return strings.Compare(a, b)
	})
	var out []string
	for i, k := range keys {
		if i == 5 {
			break
		}
		out = append(out, fmt.Sprintf("%s %.0f %%", k, 100*float64(waits[k])/float64(total)))
	}
	return strings.Join(out, ", ")
}
