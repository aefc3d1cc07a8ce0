package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBuildPair(t *testing.T) {
	xs := []*Result{{Rate: 1600, P999Ms: 9}, {Rate: 2000, P999Ms: 12}}
	ys := []*Result{{Rate: 1000, P999Ms: 10}, {Rate: 1000, P999Ms: 8, Errors: 2}}
	p := buildPair(scTwoEntHot, oneInstance+"x", 64, xs, ys)
	if p.Ratio != 1.8 || p.RatioMin != 1.6 || p.RatioMax != 2 || p.P999Ms != 12 || p.RefP999Ms != 10 || p.P999Ratio != 1.2 || p.Errors != 2 {
		t.Fatalf("got %+v", p)
	}
	if len(p.Rates) != 2 || p.Rates[1] != 2000 || p.RefRates[0] != 1000 {
		t.Fatalf("rates %v %v", p.Rates, p.RefRates)
	}
	// A round whose reference measured nothing does not set the extremes.
	p = buildPair("a", "b", 1, []*Result{{Rate: 5}, {Rate: 3}}, []*Result{{}, {Rate: 6}})
	if p.RatioMin != 0.5 || p.RatioMax != 0.5 || p.Ratio != 8.0/6 {
		t.Fatalf("got %+v", p)
	}
}

func TestFillFromWrkSplit(t *testing.T) {
	a := &wrkResult{Requests: 1000, DurationUS: 1_000_000, P50US: 100, P99US: 900, P999US: 2000, cpu: 0.2}
	b := &wrkResult{Requests: 1000, DurationUS: 2_000_000, P50US: 300, P99US: 700, P999US: 5000, cpu: 0.3}
	b.Errors.Status = 10
	res := &Result{Unit: "req/s"}
	res.fillFromWrkSplit([]*wrkResult{a, b})
	// 1000/1 s + 990/2 s: rates add, each over its own window.
	if res.Rate != 1495 || res.Ops != 1990 || res.Errors != 10 || res.Seconds != 2 {
		t.Fatalf("got %+v", res)
	}
	if res.P50Ms != 0.3 || res.P99Ms != 0.9 || res.P999Ms != 5 || res.ClientCPU != 0.5 || len(res.ErrorSamples) != 1 {
		t.Fatalf("percentiles/cpu %+v", res)
	}
}

func TestTwoInstanceTargets(t *testing.T) {
	rep := &Report{Pairs: []Pair{
		{Scenario: scTwoEntHot, Concurrency: 64, Ratio: 1.2, Rates: []int64{1}, RefRates: []int64{1}},
		{Scenario: scTwoCreate, Concurrency: 64, Ratio: 1.05},
		{Scenario: scTwoGet, Concurrency: 64, Ratio: 1.1, Errors: 1},
		{Scenario: scGetByID, Concurrency: 64, Ratio: 2},
	}}
	got := map[string]bool{}
	for _, tg := range twoInstanceTargetsOf(rep) {
		got[tg.Name] = tg.Met
		if !strings.HasSuffix(tg.Name, "at c=64, two / one") || !strings.HasPrefix(tg.Want, ">= ") {
			t.Errorf("target %+v", tg)
		}
	}
	want := map[string]bool{
		scTwoEntHot + " at c=64, two / one": false, // 1.2 < 1.6
		scTwoCreate + " at c=64, two / one": true,
		scTwoGet + " at c=64, two / one":    false, // errors
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: met %v, want %v", k, got[k], v)
		}
	}
}

func TestMetricValue(t *testing.T) {
	body := []byte(`# HELP licensor_entitlement_cache_loads_total Database loads.
# TYPE licensor_entitlement_cache_loads_total counter
licensor_entitlement_cache_loads_total 1234
licensor_entitlement_cache_loads_total_other 5
licensor_http_requests_total{code="200",route="a"} 3
licensor_http_requests_total{code="500",route="b"} 4.5
`)
	if v, ok := metricValue(body, "licensor_entitlement_cache_loads_total"); !ok || v != 1234 {
		t.Fatalf("got %v %v", v, ok)
	}
	if v, ok := metricValue(body, "licensor_http_requests_total"); !ok || v != 7.5 {
		t.Fatalf("labelled: got %v %v", v, ok)
	}
	if _, ok := metricValue(body, "nope"); ok {
		t.Fatal("found a metric that is not there")
	}
}

func TestSummarizeColdStart(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	sl := func(from, to float64, phase string, rate float64) Slice {
		return Slice{Start: unixSeconds(at(from)), End: unixSeconds(at(to)), Phase: phase, Rate: rate, Requests: int64(rate * (to - from))}
	}
	// Restart at t0+10: three steady slices, one while stopping, failed
	// starts while down, then slices on the new process.
	tl := coldTimeline{
		steady:    []Slice{sl(0, 1, "steady", 1000), sl(1, 2, "steady", 1100), sl(2, 3, "steady", 900)},
		after:     []Slice{sl(3, 4, "stopping", 500), sl(9.5, 9.6, "down", 0), sl(10.2, 11.2, "restarted", 700), sl(11.2, 12.2, "restarted", 950), sl(12.2, 16, "restarted", 1000)},
		restartAt: at(10), stop: 6 * time.Second, ready: 200 * time.Millisecond,
	}
	// A sample before the first slice and after each.
	xact := []int64{0, 100, 200, 300, 400, 400, 1400, 1600, 1800}
	loads := []float64{10, 11, 12, 13, 13, 0, 50, 60, 70}
	times := []float64{0, 1, 2, 3, 4, 9.6, 11.2, 12.2, 16}
	for i := range xact {
		ep := 0
		if times[i] > 10 {
			ep = 1
		}
		tl.samples = append(tl.samples, dbSample{t: at(times[i]), xact: xact[i], pgOK: true, loads: loads[i], loadsOK: times[i] < 9 || times[i] > 10, epoch: ep})
	}
	cs := summarizeColdStart(tl, 64)
	if cs.SteadyRate != 1000 {
		t.Errorf("steady %v", cs.SteadyRate)
	}
	// 950 >= 900: the slice ending 2.2 s after the restart.
	if d := cs.RecoverySeconds - 2.2; d > 1e-6 || d < -1e-6 {
		t.Errorf("recovery %v", cs.RecoverySeconds)
	}
	if cs.SteadyDBRate != 100 || cs.SteadyCacheLoads != 1 {
		t.Errorf("steady db %v loads %v", cs.SteadyDBRate, cs.SteadyCacheLoads)
	}
	// From the sample at 9.6 (1400-400 ... to the first at or after 15: 16):
	// (1800-400)/6.4 s.
	if d := cs.RestartDBRate - 1400/6.4; d > 1e-6 || d < -1e-6 {
		t.Errorf("restart db %v", cs.RestartDBRate)
	}
	if d := cs.RestartCacheLoads - 70.0/6; d > 1e-6 || d < -1e-6 {
		t.Errorf("restart loads %v", cs.RestartCacheLoads)
	}
	if d := cs.Slices[5].DBRate - 1000/1.6; cs.Slices[0].Start != -10 || cs.Slices[5].Phase != "restarted" || d > 1e-3 || d < -1e-3 {
		t.Errorf("slices %+v", cs.Slices)
	}
	if cs.Slices[4].CacheLoads != -1 { // the down slice: /metrics unanswered
		t.Errorf("down slice loads %v", cs.Slices[4].CacheLoads)
	}
	// A /metrics scrape that timed out at the steady window's end: the
	// window shrinks to the good samples.
	tl.samples[3].loadsOK = false
	if got := summarizeColdStart(tl, 64).SteadyCacheLoads; got != 1 {
		t.Errorf("steady loads without the last sample: %v", got)
	}
	tl.samples[3].loadsOK = true
	tg := coldStartTargets(cs)
	if len(tg) != 2 || !tg[0].Met || tg[1].Met {
		t.Errorf("targets %+v", tg)
	}
	var b bytes.Buffer
	writeColdStartMarkdown(&b, cs)
	if !strings.Contains(b.String(), "| 0.20 | 1.20 | restarted | 700 |") {
		t.Errorf("markdown:\n%s", b.String())
	}
	// Never back: -1, not met.
	tl.after = tl.after[:3]
	cs = summarizeColdStart(tl, 64)
	if cs.RecoverySeconds != -1 || coldStartTargets(cs)[0].Met {
		t.Errorf("no recovery: %+v", cs)
	}
}

func TestFormatWaits(t *testing.T) {
	got := formatWaits(map[string]int{"Lock:tuple": 6, "CPU": 2, "IO:WALSync": 2})
	if got != "Lock:tuple 60 %, CPU 20 %, IO:WALSync 20 %" {
		t.Fatalf("got %q", got)
	}
	if formatWaits(nil) != "" {
		t.Fatal("no samples: want nothing")
	}
}

func TestSliceFromWrk(t *testing.T) {
	// Around a restart: connections refused by the thousand, and answers.
	w := &wrkResult{Requests: 2000, DurationUS: 1_000_000, P99US: 1500}
	w.Errors.Connect, w.Errors.Status = 5000, 100
	var s Slice
	s.fillFromWrk(w)
	if s.Requests != 1900 || s.Errors != 5100 || s.Rate != 1900 || s.P99Ms != 1.5 {
		t.Fatalf("got %+v", s)
	}
}
