package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The cold-start scenario (issue 17): the entitlement check under full
// load (users drawn from 10k, c=--concurrency), the instance stopped with
// SIGTERM and started again on the same port while the load goes on.
//
// wrk reports only when it ends, so the load is a train of back-to-back
// wrk runs of 1 s (the shortest wrk takes), each reporting its own
// requests, errors and duration: the timeline has a point a second. While
// the port is closed, wrk refuses to start ("unable to connect"): those
// tries are recorded as slices with no requests, 50 ms apart. Between two
// slices wrk reconnects its connections, a few milliseconds; the steady
// rate is measured with the same slices, so the 90 % threshold compares
// like with like. A per-request Lua hook (response()) would give a finer
// timeline but makes wrk parse every response in Lua, which costs the
// generator far more CPU than the requests do.
//
// The database's load is sampled at every slice boundary: on PostgreSQL
// pg_stat_database's xact_commit + xact_rollback and tup_returned of the
// run's database, read over a connection to the admin database so that
// the sampling is not counted (pg_stat_statements needs
// shared_preload_libraries, off on a stock server); on both engines the
// server's licensor_entitlement_cache_loads_total (/metrics), the loads the
// entitlement cache makes, which is what a cold cache adds. PostgreSQL
// backends publish their counters at most once a second, so the rates are
// compared over windows of several seconds, not slice by slice.

const scColdStart = "Cold start: Entitlements (single user, 10k watching)"

// ColdStart is the cold-start scenario's timeline and summary.
type ColdStart struct {
	Concurrency  int     `json:"concurrency"`
	SteadyRate   float64 `json:"steady_rate"`   // mean req/s of the slices before the stop
	StopSeconds  float64 `json:"stop_seconds"`  // SIGTERM to exit
	ReadySeconds float64 `json:"ready_seconds"` // restart (exec) to /readyz answering 200
	// RecoverySeconds is from the restart to the end of the first slice
	// after it at >= 90 % of the steady rate: an upper bound, to a slice
	// (1 s); -1 if the window ended first.
	RecoverySeconds float64 `json:"recovery_seconds"`
	// The database's rates: in the steady slices, and from the restart to
	// 5 s after it (or to the recovery, if later).
	DBUnit            string  `json:"db_unit"`
	RestartWindowS    float64 `json:"restart_window_s"` // the window after the restart the rates are over
	SteadyDBRate      float64 `json:"steady_db_rate"`
	RestartDBRate     float64 `json:"restart_db_rate"`
	DBRateRatio       float64 `json:"db_rate_ratio"`
	SteadyRowsRate    float64 `json:"steady_rows_rate,omitempty"` // PostgreSQL tup_returned/s
	RestartRowsRate   float64 `json:"restart_rows_rate,omitempty"`
	SteadyCacheLoads  float64 `json:"steady_cache_loads_rate"` // licensor_entitlement_cache_loads_total /s
	RestartCacheLoads float64 `json:"restart_cache_loads_rate"`
	// The entitlement path's database reads
	// (licensor_entitlement_cache_queries_total /s: the loads' queries,
	// the warm-up's pages, the feed watcher's reads); 0 when the server
	// does not export it.
	SteadyCacheQueries  float64 `json:"steady_cache_queries_rate,omitempty"`
	RestartCacheQueries float64 `json:"restart_cache_queries_rate,omitempty"`
	Errors              int64   `json:"errors"`
	// The warm-up before the steady slices: how long, the cache's loads
	// per request in its last slice, and whether that fell under 1 %.
	WarmupSeconds       float64 `json:"warmup_seconds"`
	WarmLoadsPerRequest float64 `json:"warm_loads_per_request"`
	Warm                bool    `json:"warm"`
	Slices              []Slice `json:"slices"`
}

// Slice is one wrk run of the cold-start timeline; times are seconds from
// the restart (negative before it). Phases: steady; stopping (SIGTERM
// sent, the old process not yet gone); restarting (the new process
// started, /readyz not yet seen by the harness); restarted.
type Slice struct {
	Start    float64 `json:"start"`
	End      float64 `json:"end"`
	Phase    string  `json:"phase"` // steady, stopping, down, restarted
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Rate     float64 `json:"rate"`
	P99Ms    float64 `json:"p99_ms,omitempty"`
	// DBRate is the database's rate over the slice (transactions/s on
	// PostgreSQL; -1 unknown), CacheLoads the cache's loads/s (-1 when
	// /metrics did not answer at either end).
	DBRate       float64 `json:"db_rate"`
	CacheLoads   float64 `json:"cache_loads_rate"`
	CacheQueries float64 `json:"cache_queries_rate"` // -1 unknown
	// FeedLagS is licensor_entitlement_feed_lag_seconds at the slice's
	// end (-1 unknown): how far the cache's feed watcher is behind; past
	// the cache's TTL (500 ms) entries age out and are reloaded.
	FeedLagS float64 `json:"feed_lag_s"`
}

// dbSample is the counters at one instant.
type dbSample struct {
	t          time.Time
	xact, rows int64
	pgOK       bool
	loads      float64
	loadsOK    bool
	queries    float64 // licensor_entitlement_cache_queries_total (queriesOK)
	queriesOK  bool
	lag        float64 // feed lag, -1 unknown
	epoch      int     // which server process the loads counter belongs to
}

// coldTimeline is the raw timeline the summary is computed from.
type coldTimeline struct {
	steady      []Slice
	after       []Slice // from the stop on
	samples     []dbSample
	restartAt   time.Time
	stop, ready time.Duration
}

func (r *runner) coldStart(ctx context.Context) {
	if ctx.Err() != nil || !r.want(scColdStart) {
		return
	}
	c := r.cfg.concurrency
	wl := r.wl
	hot := min(wl.users, hotUsers)
	spec := wrkSpec{url: wl.base, concurrency: c, threads: r.cfg.wrkThreads, header: r.header, cpus: r.wrkCPUs,
		args: []string{"stride", apiPath + "/users/", strconv.FormatInt(hot, 10), strconv.FormatInt(wl.users/hot, 10), "/entitlements"}}
	var admin *pgx.Conn
	dbName := ""
	if r.eng.kind == "postgres" {
		var err error
		if admin, err = pgx.Connect(ctx, r.eng.adminURL); err != nil {
			r.skip(scColdStart, c, "connect to the admin database: "+err.Error())
			return
		}
		defer admin.Close(context.WithoutCancel(ctx))
		dbName = "licensor_bench_" + r.eng.tag + "_main"
	}
	var epoch atomic.Int32
	client := &http.Client{Timeout: time.Second}
	sample := func() dbSample {
		s := dbSample{t: time.Now(), epoch: int(epoch.Load())}
		if admin != nil {
			s.pgOK = admin.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_returned FROM pg_stat_database WHERE datname = $1`, dbName).Scan(&s.xact, &s.rows) == nil
			s.t = time.Now()
		}
		var c cacheCounters
		c, s.loadsOK = scrapeCache(ctx, client, wl.base+"/metrics")
		s.loads, s.lag, s.queries, s.queriesOK = c.loads, c.lag, c.queries, s.loadsOK && c.queriesOK
		if int(epoch.Load()) != s.epoch { // which process answered is unknown
			s.loadsOK, s.queriesOK, s.lag = false, false, -1
		}
		return s
	}
	spec.duration = time.Second
	var tl coldTimeline
	slice := func(phase string) (Slice, bool) {
		t0 := time.Now()
		out, err := r.wrk.run(ctx, spec)
		s := Slice{Phase: phase, DBRate: -1, CacheLoads: -1}
		t1 := time.Now()
		s.Start, s.End = unixSeconds(t0), unixSeconds(t1) // made relative to the restart later
		if err != nil {
			s.Errors = 1
			return s, false
		}
		s.fillFromWrk(out)
		return s, true
	}
	// timed runs a slice with a sample taken as it starts (beside it, so
	// that sampling leaves no gap in the load).
	timed := func(phase string) (Slice, dbSample, bool) {
		ch := make(chan dbSample, 1)
		go func() { ch <- sample() }()
		s, ok := slice(phase)
		return s, <-ch, ok
	}

	// Warm-up: until the cache is warm, so that the steady state is a warm
	// cache's.
	warmup, perRequest, warm, err := r.warmCache(ctx, spec, client)
	if err != nil {
		r.skip(scColdStart, c, "warm-up: "+err.Error())
		return
	}
	// The steady slices: --duration of them, at least 3.
	n := max(3, int(r.cfg.duration/time.Second))
	for range n {
		s, smp, ok := timed("steady")
		if !ok {
			r.skip(scColdStart, c, "wrk failed in the steady slices")
			return
		}
		tl.steady = append(tl.steady, s)
		tl.samples = append(tl.samples, smp)
	}

	// Stop and restart in the background while the slices go on.
	type restarted struct {
		proc *process
		err  error
	}
	done := make(chan restarted, 1)
	restartAt := make(chan time.Time, 1)
	go func() {
		t0 := time.Now()
		r.server.stop(40 * time.Second)
		tl.stop = time.Since(t0)
		epoch.Add(1) // the next /metrics answers come from the new process
		t1 := time.Now()
		restartAt <- t1
		p, log, err := r.launchServer("server-restarted", strings.TrimPrefix(wl.base, "http://"), r.pprof)
		if err == nil {
			if err = p.waitReady(ctx, wl.base+"/readyz", 60*time.Second); err != nil {
				p.stop(10 * time.Second)
				err = fmt.Errorf("%w (log: %s)", err, tail(log))
				p = nil
			}
		}
		tl.ready = time.Since(t1)
		done <- restarted{p, err}
	}()
	window := max(15*time.Second, r.cfg.duration)
	var res *restarted
	phase := "stopping"
	for ctx.Err() == nil {
		select {
		case t := <-restartAt:
			tl.restartAt, phase = t, "restarting"
		default:
		}
		if res == nil {
			select {
			case x := <-done:
				res, phase = &x, "restarted"
			default:
			}
		}
		if res != nil && (res.err != nil || time.Since(tl.restartAt) >= window) {
			break
		}
		s, smp, ok := timed(phase)
		tl.after = append(tl.after, s)
		tl.samples = append(tl.samples, smp)
		if !ok {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if res == nil {
		res = &restarted{err: ctx.Err()}
		if x, ok := <-done; ok {
			res = &x
		}
	}
	tl.samples = append(tl.samples, sample()) // the end of the last slice
	if res.err != nil {
		r.skip(scColdStart, c, "restart: "+res.err.Error())
		r.rep.Notes = append(r.rep.Notes, "the cold-start scenario could not restart the server: later scenarios have none")
		return
	}
	r.server = res.proc
	r.logf("licensor restarted on %s, pid %s", wl.base, r.server.pid())
	cs := summarizeColdStart(tl, c)
	cs.WarmupSeconds, cs.WarmLoadsPerRequest, cs.Warm = warmup.Seconds(), perRequest, warm
	if !warm {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("cold start: the cache still loaded %.3f times per request after a %.0f s warm-up: the steady state was not a warm cache's", perRequest, warmup.Seconds()))
	}
	if admin != nil {
		cs.DBUnit = "transactions/s (pg_stat_database xact_commit + xact_rollback)"
	} else if cs.SteadyCacheQueries > 0 {
		// SQLite keeps no count of the statements it runs; the entitlement
		// path's own reads are what a restart changes (the rest of the
		// server's reads, by its background workers, go on the same).
		cs.DBUnit = "entitlement reads/s (licensor_entitlement_cache_queries_total: loads' queries, warm-up pages, feed reads)"
		cs.SteadyDBRate, cs.RestartDBRate = cs.SteadyCacheQueries, cs.RestartCacheQueries
		cs.DBRateRatio = ratioOrZero(cs.RestartDBRate, cs.SteadyDBRate)
		for i := range cs.Slices {
			cs.Slices[i].DBRate = cs.Slices[i].CacheQueries
		}
	} else {
		cs.DBUnit = "entitlement cache loads/s (licensor_entitlement_cache_loads_total)"
		cs.SteadyDBRate, cs.RestartDBRate = cs.SteadyCacheLoads, cs.RestartCacheLoads
		cs.DBRateRatio = ratioOrZero(cs.RestartDBRate, cs.SteadyDBRate)
		for i := range cs.Slices {
			cs.Slices[i].DBRate = cs.Slices[i].CacheLoads
		}
	}
	r.rep.ColdStart = cs
	row := &Result{Scenario: scColdStart, Kind: "api", Concurrency: c, Unit: "req/s", Generator: "wrk", Rate: cs.SteadyRate, Errors: 0}
	row.addNote(fmt.Sprintf("steady rate before SIGTERM (1 s wrk slices); stopped in %.2f s, ready %.2f s after the restart, back to 90 %% %s; database %s: %s steady, %s after the restart (%.2f x)",
		cs.StopSeconds, cs.ReadySeconds, fmtRecovery(cs.RecoverySeconds), cs.DBUnit, fmtRate(cs.SteadyDBRate), fmtRate(cs.RestartDBRate), cs.DBRateRatio))
	if m, err := readMemory(r.server.pid()); err == nil {
		row.RSSMB, row.PeakRSSMB = float64(m.rss)/(1<<20), float64(m.hwm)/(1<<20)
	}
	r.report(row)
	for _, s := range cs.Slices {
		r.logf("  cold start %6.2f..%6.2f s %-9s %8s req/s errors %d db %s/s cache loads %s/s queries %s/s feed lag %.2f s",
			s.Start, s.End, s.Phase, fmtRate(s.Rate), s.Errors, fmtUnknown(s.DBRate), fmtUnknown(s.CacheLoads), fmtUnknown(s.CacheQueries), s.FeedLagS)
	}
}

// warmCache runs spec's load in 1 s wrk slices against its server until
// the server's entitlement cache loads less than once per 100 requests
// (at least --warmup, at most 30 s). It returns how long that took, the
// loads per request of the last slice, and whether it got under 1 %.
func (r *runner) warmCache(ctx context.Context, spec wrkSpec, client *http.Client) (time.Duration, float64, bool, error) {
	spec.duration = time.Second
	t0 := time.Now()
	minEnd, deadline := t0.Add(r.cfg.warmup), t0.Add(30*time.Second)
	metrics := spec.url + "/metrics"
	pc, prevOK := scrapeCache(ctx, client, metrics)
	prev := pc.loads
	var perRequest float64
	for ctx.Err() == nil && time.Now().Before(deadline) {
		out, err := r.wrk.run(ctx, spec)
		if err != nil {
			return time.Since(t0), perRequest, false, err
		}
		cc, curOK := scrapeCache(ctx, client, metrics)
		cur := cc.loads
		if n := out.Requests - out.errorCount(); prevOK && curOK && n > 0 {
			perRequest = (cur - prev) / float64(n)
			if perRequest < 0.01 && !time.Now().Before(minEnd) {
				return time.Since(t0), perRequest, true, nil
			}
		}
		prev, prevOK = cur, curOK
	}
	return time.Since(t0), perRequest, false, ctx.Err()
}

// fillFromWrk sets a slice's counts from wrk's summary. Unlike
// Result.fillFromWrk it does not take socket errors off the requests:
// wrk's requests are the responses it read, which include those with a
// status >= 400 but not the connections refused while the server was down
// (which a slice around the restart has by the thousand).
func (s *Slice) fillFromWrk(w *wrkResult) {
	s.Requests = max(0, w.Requests-w.Errors.Status)
	s.Errors = w.errorCount()
	if w.DurationUS > 0 {
		s.Rate = float64(s.Requests) / (float64(w.DurationUS) / 1e6)
	}
	s.P99Ms = float64(w.P99US) / 1000
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func fmtRecovery(s float64) string {
	if s < 0 {
		return "not within the window"
	}
	return fmt.Sprintf("within %.2f s of the restart", s)
}

func ratioOrZero(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// summarizeColdStart turns the raw timeline into the summary: times made
// relative to the restart, the steady rate, the recovery, the rates of the
// database in the steady window and after the restart.
func summarizeColdStart(tl coldTimeline, conc int) *ColdStart {
	cs := &ColdStart{Concurrency: conc, StopSeconds: tl.stop.Seconds(), ReadySeconds: tl.ready.Seconds(), RecoverySeconds: -1}
	zero := unixSeconds(tl.restartAt)
	var sum float64
	for _, s := range tl.steady {
		sum += s.Rate
	}
	if len(tl.steady) > 0 {
		cs.SteadyRate = sum / float64(len(tl.steady))
	}
	all := append(append([]Slice{}, tl.steady...), tl.after...)
	// Per-slice database rates from the samples around each slice: sample
	// i was taken before slice i (steady: sample 0 before the first).
	for i := range all {
		s := &all[i]
		s.Start -= zero
		s.End -= zero
		s.DBRate, s.CacheLoads, s.CacheQueries, s.FeedLagS = -1, -1, -1, -1
		if i+1 < len(tl.samples) {
			a, b := tl.samples[i], tl.samples[i+1]
			if d := b.t.Sub(a.t).Seconds(); d > 0 {
				if a.pgOK && b.pgOK {
					s.DBRate = float64(b.xact-a.xact) / d
				}
				if a.loadsOK && b.loadsOK && a.epoch == b.epoch {
					s.CacheLoads = (b.loads - a.loads) / d
				}
				if a.queriesOK && b.queriesOK && a.epoch == b.epoch {
					s.CacheQueries = (b.queries - a.queries) / d
				}
				if b.loadsOK {
					s.FeedLagS = b.lag
				}
			}
		}
		cs.Errors += s.Errors
		if s.Phase == "steady" {
			continue
		}
		// The first slice that began after the restart, on the new
		// process, at 90 % of the steady rate.
		if cs.RecoverySeconds < 0 && s.Start >= 0 && cs.SteadyRate > 0 && s.Rate >= 0.9*cs.SteadyRate {
			cs.RecoverySeconds = s.End
		}
	}
	cs.Slices = all
	// The steady window: the first sample to the last steady one, each
	// counter between its first and last good samples there (a scrape of
	// /metrics may time out under the load).
	pgOK := func(x dbSample) bool { return x.pgOK }
	loadsOK := func(x dbSample) bool { return x.loadsOK && x.epoch == 0 }
	if n := len(tl.steady); n > 0 && len(tl.samples) > n {
		steady := tl.samples[:n+1]
		if a, b, d, ok := span(steady, pgOK); ok {
			cs.SteadyDBRate = float64(b.xact-a.xact) / d
			cs.SteadyRowsRate = float64(b.rows-a.rows) / d
		}
		if a, b, d, ok := span(steady, loadsOK); ok {
			cs.SteadyCacheLoads = (b.loads - a.loads) / d
		}
		if a, b, d, ok := span(steady, func(x dbSample) bool { return x.queriesOK && x.epoch == 0 }); ok {
			cs.SteadyCacheQueries = (b.queries - a.queries) / d
		}
	}
	// After the restart: from the last sample at or before it to the first
	// at or after max(5 s, recovery) past it.
	end := tl.restartAt.Add(5 * time.Second)
	if cs.RecoverySeconds > 5 {
		end = tl.restartAt.Add(time.Duration(cs.RecoverySeconds * float64(time.Second)))
	}
	cs.RestartWindowS = end.Sub(tl.restartAt).Seconds()
	from, to := -1, -1
	for i, x := range tl.samples {
		if x.pgOK && !x.t.After(tl.restartAt) {
			from = i
		}
		if to < 0 && x.pgOK && !x.t.Before(end) {
			to = i
		}
	}
	if from >= 0 && to > from {
		a, b := tl.samples[from], tl.samples[to]
		if d := b.t.Sub(a.t).Seconds(); d > 0 {
			cs.RestartDBRate = float64(b.xact-a.xact) / d
			cs.RestartRowsRate = float64(b.rows-a.rows) / d
		}
	}
	// The restarted process's counter starts at zero: its value at the end
	// of the window is all it loaded since the restart (the first good
	// sample at or after the end, or else the last good one).
	last := -1
	for i, x := range tl.samples {
		if x.loadsOK && x.epoch > 0 && x.t.After(tl.restartAt) {
			last = i
			if !x.t.Before(end) {
				break
			}
		}
	}
	if last >= 0 {
		x := tl.samples[last]
		if d := x.t.Sub(tl.restartAt).Seconds(); d > 0 {
			cs.RestartCacheLoads = x.loads / d
			if x.queriesOK {
				cs.RestartCacheQueries = x.queries / d
			}
		}
	}
	cs.DBRateRatio = ratioOrZero(cs.RestartDBRate, cs.SteadyDBRate)
	return cs
}

// span returns the first and last samples of xs that ok accepts, and the
// seconds between them.
func span(xs []dbSample, ok func(dbSample) bool) (a, b dbSample, d float64, found bool) {
	i, j := -1, -1
	for k, x := range xs {
		if ok(x) {
			if i < 0 {
				i = k
			}
			j = k
		}
	}
	if i < 0 || j <= i {
		return a, b, 0, false
	}
	a, b = xs[i], xs[j]
	d = b.t.Sub(a.t).Seconds()
	return a, b, d, d > 0
}

// cacheCounters is what scrapeCache reads.
type cacheCounters struct {
	loads     float64 // licensor_entitlement_cache_loads_total
	queries   float64 // licensor_entitlement_cache_queries_total (queriesOK)
	queriesOK bool    // the server exports it (not before 2026-12-04)
	lag       float64 // licensor_entitlement_feed_lag_seconds; -1 when absent
}

// scrapeCache reads the entitlement cache's counters from the server's
// /metrics; ok is whether it answered with the loads counter.
func scrapeCache(ctx context.Context, client *http.Client, url string) (c cacheCounters, ok bool) {
	c.lag = -1
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return c, false
	}
	resp, err := client.Do(req)
	if err != nil {
		return c, false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		return c, false
	}
	c.loads, ok = metricValue(b, "licensor_entitlement_cache_loads_total")
	c.queries, c.queriesOK = metricValue(b, "licensor_entitlement_cache_queries_total")
	if lag, found := metricValue(b, "licensor_entitlement_feed_lag_seconds"); found {
		c.lag = lag
	}
	return c, ok
}

func metricValue(b []byte, name string) (float64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	var sum float64
	found := false
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest != "" && rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum += v
		found = true
	}
	return sum, found
}

// coldStartTargets checks the cold-start targets of the issue.
func coldStartTargets(cs *ColdStart) []Target {
	if cs == nil || cs.SteadyRate == 0 {
		return nil
	}
	recovered := fmt.Sprintf("%.2f s", cs.RecoverySeconds)
	if cs.RecoverySeconds < 0 {
		recovered = "not within the window"
	}
	out := []Target{{Name: fmt.Sprintf("Cold start at c=%d: back to 90 %% of the steady rate", cs.Concurrency), Want: "<= 5 s after the restart",
		Measured: fmt.Sprintf("%s (steady %s req/s; ready %.2f s after the restart; stopped in %.2f s)", recovered, fmtRate(cs.SteadyRate), cs.ReadySeconds, cs.StopSeconds),
		Met:      cs.RecoverySeconds >= 0 && cs.RecoverySeconds <= 5}}
	if cs.SteadyDBRate > 0 || cs.RestartDBRate > 0 {
		out = append(out, Target{Name: fmt.Sprintf("Cold start at c=%d: database load after the restart", cs.Concurrency), Want: "<= 2 x the steady rate",
			Measured: fmt.Sprintf("%.2f x (%s vs %s %s, the first %.1f s after the restart vs steady)", cs.DBRateRatio, fmtRate(cs.RestartDBRate), fmtRate(cs.SteadyDBRate), cs.DBUnit, cs.RestartWindowS),
			Met:      cs.SteadyDBRate > 0 && cs.DBRateRatio <= 2})
	}
	return out
}

// writeColdStartMarkdown renders the timeline.
func writeColdStartMarkdown(w io.Writer, cs *ColdStart) {
	fmt.Fprintf(w, "\nCold start at c=%d: steady %s req/s; SIGTERM to exit %.2f s; restart to ready %.2f s; back to 90 %%: %s. Database (%s): %s steady, %s over the first %.1f s after the restart (%.2f x)",
		cs.Concurrency, fmtRate(cs.SteadyRate), cs.StopSeconds, cs.ReadySeconds, fmtRecovery(cs.RecoverySeconds), cs.DBUnit,
		fmtRate(cs.SteadyDBRate), fmtRate(cs.RestartDBRate), cs.RestartWindowS, cs.DBRateRatio)
	fmt.Fprintf(w, "; warm-up %.0f s (cache loads per request at its end %.4f)", cs.WarmupSeconds, cs.WarmLoadsPerRequest)
	if cs.SteadyRowsRate > 0 {
		fmt.Fprintf(w, "; rows read (tup_returned) %s/s steady, %s/s after", fmtRate(cs.SteadyRowsRate), fmtRate(cs.RestartRowsRate))
	}
	fmt.Fprintf(w, "; entitlement cache loads %s/s steady, %s/s after.\n\n", fmtRate(cs.SteadyCacheLoads), fmtRate(cs.RestartCacheLoads))
	fmt.Fprintln(w, "| from s | to s | phase | req/s | errors | p99 ms | db /s | cache loads /s | feed lag s |")
	fmt.Fprintln(w, "|--:|--:|---|--:|--:|--:|--:|--:|--:|")
	for _, s := range mergeDown(cs.Slices) {
		lag := "?"
		if s.FeedLagS >= 0 {
			lag = strconv.FormatFloat(s.FeedLagS, 'f', 2, 64)
		}
		fmt.Fprintf(w, "| %.2f | %.2f | %s | %s | %d | %s | %s | %s | %s |\n", s.Start, s.End, s.Phase, fmtRate(s.Rate), s.Errors,
			fmtMs(s.P99Ms), fmtUnknown(s.DBRate), fmtUnknown(s.CacheLoads), lag)
	}
}

func fmtUnknown(v float64) string {
	if v < 0 {
		return "?"
	}
	return fmtRate(v)
}

// mergeDown folds runs of consecutive failed wrk starts (no requests,
// same phase) into one row.
func mergeDown(in []Slice) []Slice {
	var out []Slice
	for _, s := range in {
		if n := len(out); n > 0 && s.Requests == 0 && out[n-1].Requests == 0 && out[n-1].Phase == s.Phase {
			p := &out[n-1]
			p.End = s.End
			p.Errors += s.Errors
			p.DBRate, p.CacheLoads, p.FeedLagS = -1, -1, s.FeedLagS
			continue
		}
		out = append(out, s)
	}
	return out
}
