package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// A call is one HTTP request of a scenario, built afresh for every request.
type call struct {
	method string
	url    string
	body   []byte
	want   int // the expected status; any other counts as an error
	// rows is how many rows the call stands for (1000 for a batch of 1000);
	// 0 means 1.
	rows int
	// done, if set, sees every response with the expected status, and its
	// body when keepBody is set.
	done     func(resp *http.Response, body []byte)
	keepBody bool
}

// worker is the state of one load goroutine: its own random source, so
// that request generation never contends on a lock.
type worker struct {
	id  int
	rng *rand.Rand
	seq int64 // requests built so far by this worker
}

// loadSpec is one closed-loop run: concurrency workers each send a request,
// wait for its response, and send the next, for warmup+duration.
type loadSpec struct {
	concurrency int
	warmup      time.Duration
	duration    time.Duration
	// next builds the next request of a worker; false means there is
	// nothing left to send (a pool of ids ran out) and the worker stops.
	next func(w *worker) (call, bool)
}

// window is the measured part of a run, between the warm-up and the end.
// start and stop are called at its edges (to read CPU counters, start a
// profile); stop gets whether the run ended early because the work ran out.
type window struct {
	start func()
	stop  func(exhausted bool)
}

// sample is what the generator (or a driver loop) measured.
type sample struct {
	ops          int64           // requests or transactions completed in the window
	rows         int64           // rows they stand for
	errors       int64           // unexpected statuses and transport errors in the window
	errorSamples []string        // the first few errors, for the report
	latencies    []time.Duration // of the successful ops completed in the window, sorted
	elapsed      time.Duration   // length of the window
	exhausted    bool            // the work ran out before the window ended
}

// rate is ops (or rows, when byRows) per second of the window.
func (s *sample) rate(byRows bool) float64 {
	if s.elapsed <= 0 {
		return 0
	}
	n := s.ops
	if byRows {
		n = s.rows
	}
	return float64(n) / s.elapsed.Seconds()
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample such that at least p % of the
// samples are less than or equal to it. It is exact: every latency is kept.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The epsilon keeps float rounding (99.9/100*1000 = 999.0000000000001)
	// from moving the rank up by one.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// newRand returns a random source for one goroutine.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(time.Now().UnixNano())))
}

// maxErrorSamples is how many distinct error descriptions a sample keeps.
const maxErrorSamples = 5

// recorder collects one worker's measurements without locking.
type recorder struct {
	ops, rows, errors int64
	latencies         []time.Duration
	errorSamples      []string
}

func (r *recorder) fail(msg string) {
	r.errors++
	if len(r.errorSamples) < maxErrorSamples && !slices.Contains(r.errorSamples, msg) {
		r.errorSamples = append(r.errorSamples, msg)
	}
}

// merge combines the workers' recorders into a sample with sorted latencies.
func merge(recs []*recorder) sample {
	var s sample
	n := 0
	for _, r := range recs {
		n += len(r.latencies)
	}
	s.latencies = make([]time.Duration, 0, n)
	for _, r := range recs {
		s.ops += r.ops
		s.rows += r.rows
		s.errors += r.errors
		s.latencies = append(s.latencies, r.latencies...)
		for _, e := range r.errorSamples {
			if len(s.errorSamples) < maxErrorSamples && !slices.Contains(s.errorSamples, e) {
				s.errorSamples = append(s.errorSamples, e)
			}
		}
	}
	slices.Sort(s.latencies)
	return s
}

// newHTTPClient returns a client for closed-loop load at the given
// concurrency: keep-alive connections, enough idle ones kept per host that
// no worker ever dials after the warm-up, no compression, no proxy.
func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        2 * concurrency,
			MaxIdleConnsPerHost: 2 * concurrency,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
			WriteBufferSize:     64 << 10,
			ReadBufferSize:      64 << 10,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// requestTimeout bounds one request; a request that takes longer is an error.
const requestTimeout = 60 * time.Second

// runLoad drives spec against the server with client, adding header to
// every request. Requests completed during the warm-up are not counted;
// requests still in flight when the window closes are not counted either.
func runLoad(ctx context.Context, client *http.Client, header http.Header, spec loadSpec, win window) sample {
	begin := time.Now()
	from := begin.Add(spec.warmup)
	to := from.Add(spec.duration)
	var stopped atomic.Bool
	recs := make([]*recorder, spec.concurrency)
	var wg sync.WaitGroup
	for i := range spec.concurrency {
		rec := &recorder{}
		recs[i] = rec
		w := &worker{id: i, rng: rand.New(rand.NewPCG(uint64(begin.UnixNano()), uint64(i)))}
		wg.Go(func() {
			for !stopped.Load() && ctx.Err() == nil {
				c, ok := spec.next(w)
				if !ok {
					return
				}
				w.seq++
				t0 := time.Now()
				errMsg := do(ctx, client, header, c)
				t1 := time.Now()
				if ctx.Err() != nil {
					return
				}
				if t1.Before(from) {
					continue
				}
				if t1.After(to) || stopped.Load() {
					return
				}
				if errMsg != "" {
					rec.fail(errMsg)
					continue
				}
				rec.ops++
				rec.rows += int64(max(c.rows, 1))
				rec.latencies = append(rec.latencies, t1.Sub(t0))
			}
		})
	}
	return measureWindow(ctx, &wg, &stopped, from, to, win, func() sample { return merge(recs) })
}

// measureWindow waits for the window [from, to) while workers run, calls
// the window's hooks at its edges, stops the workers and merges their
// measurements. If every worker returns early (the work ran out), the
// window closes then.
func measureWindow(ctx context.Context, wg *sync.WaitGroup, stopped *atomic.Bool, from, to time.Time, win window, collect func() sample) sample {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	exhausted := false
	started := false
	select {
	case <-time.After(time.Until(from)):
		started = true
	case <-done:
		exhausted = true
	case <-ctx.Done():
	}
	var start, end time.Time
	if started {
		start = time.Now()
		if win.start != nil {
			win.start()
		}
		select {
		case <-time.After(time.Until(to)):
		case <-done:
			// Workers also return once past the end; only an earlier
			// return means the work ran out.
			exhausted = time.Now().Before(to)
		case <-ctx.Done():
		}
		end = time.Now()
		if win.stop != nil {
			win.stop(exhausted)
		}
	}
	stopped.Store(true)
	<-done
	s := collect()
	s.exhausted = exhausted
	if started {
		s.elapsed = end.Sub(start)
	}
	return s
}

// do sends one call and reports what went wrong, if anything.
func do(ctx context.Context, client *http.Client, header http.Header, c call) string {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, body)
	if err != nil {
		return "build request: " + err.Error()
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if c.body != nil {
		req.Header.Set("Content-Type", "application/vnd.api+json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return "transport: " + err.Error()
	}
	defer resp.Body.Close()
	var b []byte
	if c.keepBody || resp.StatusCode != c.want {
		b, err = io.ReadAll(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return "read body: " + err.Error()
	}
	if resp.StatusCode != c.want {
		return fmt.Sprintf("%s %s: status %d, want %d: %s", c.method, trimURL(c.url), resp.StatusCode, c.want, truncate(string(b), 200))
	}
	if c.done != nil {
		c.done(resp, b)
	}
	return ""
}

// opLoop is the in-process counterpart of runLoad for the storage
// references: one goroutine runs op back to back for warmup+duration. op
// returns how many rows it wrote; ok false means the work ran out.
func opLoop(ctx context.Context, warmup, duration time.Duration, win window, op func() (rows int, ok bool, err error)) sample {
	begin := time.Now()
	from := begin.Add(warmup)
	to := from.Add(duration)
	var stopped atomic.Bool
	rec := &recorder{}
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stopped.Load() && ctx.Err() == nil {
			t0 := time.Now()
			rows, ok, err := op()
			t1 := time.Now()
			if !ok {
				return
			}
			if t1.Before(from) {
				continue
			}
			if t1.After(to) || stopped.Load() {
				return
			}
			if err != nil {
				rec.fail(err.Error())
				continue
			}
			rec.ops++
			rec.rows += int64(rows)
			rec.latencies = append(rec.latencies, t1.Sub(t0))
		}
	})
	return measureWindow(ctx, &wg, &stopped, from, to, win, func() sample { return merge([]*recorder{rec}) })
}

func trimURL(u string) string {
	if i := indexPath(u); i >= 0 {
		u = u[i:]
	}
	return truncate(u, 120)
}

// indexPath finds the path in an absolute URL.
func indexPath(u string) int {
	n := 0
	for i, c := range u {
		if c == '/' {
			n++
			if n == 3 {
				return i
			}
		}
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
