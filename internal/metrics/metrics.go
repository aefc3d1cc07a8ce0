// Package metrics holds the Prometheus metrics licensor serve exposes, on a
// registry of its own (no global state): HTTP requests by route pattern,
// method and status, their latency and how many are in flight, batch sizes,
// idempotent replays and refusals by error code, counted by internal/api as
// it serves; and, read at scrape time, the store engine's pool and
// group-commit statistics, the entitlement cache's, and the Go runtime and
// process collectors. docs/monitoring.md describes each.
package metrics

import (
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/licensor/licensor"
)

// Metrics are one server's metrics.
type Metrics struct {
	registry          *prometheus.Registry
	requests          *prometheus.CounterVec
	duration          *prometheus.HistogramVec
	inFlight          prometheus.Gauge
	batchSize         *prometheus.HistogramVec
	idempotentReplays prometheus.Counter
	rejections        *prometheus.CounterVec

	// observers are the request counter and duration histogram of every
	// route, method and status seen so far, resolved once (a map read
	// instead of hashing the label values per request). The map is never
	// changed: a new combination replaces it with a copy.
	observers   atomic.Pointer[map[observerKey]observer]
	observersMu sync.Mutex
}

type observerKey struct {
	route, method string
	status        int
}

type observer struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// maxObservers bounds the resolved combinations: the method is the
// client's, so a client inventing methods could otherwise grow the map.
// Beyond the bound, label values are resolved per request.
const maxObservers = 512

// New returns the metrics of a server over a store whose engine offers
// engine (its PoolStats and WriteStats, when set, are read at scrape time).
func New(engine licensor.Engine) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "licensor_http_requests_total",
			Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "licensor_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "licensor_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "licensor_batch_items",
			Help:    "Items per batch request, by operation.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 750, 1000},
		}, []string{"operation"}),
		idempotentReplays: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "licensor_idempotent_replays_total",
			Help: "Responses replayed for a repeated Idempotency-Key.",
		}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "licensor_rejections_total",
			Help: "Requests refused, by error code (API_KEY_INVALID, RATE_LIMITED, BODY_TOO_LARGE, ...).",
		}, []string{"code"}),
	}
	m.observers.Store(&map[observerKey]observer{})
	m.registry.MustRegister(m.requests, m.duration, m.inFlight, m.batchSize, m.idempotentReplays, m.rejections,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if engine.PoolStats != nil {
		m.registry.MustRegister(poolCollector{engine.PoolStats})
	}
	if engine.WriteStats != nil {
		m.registry.MustRegister(writeCollector{engine.WriteStats})
	}
	return m
}

// Start counts a request in flight; Done ends it.
func (m *Metrics) Start() { m.inFlight.Inc() }

// Done records a finished request: its route pattern ("" when none
// matched), method, status and duration.
func (m *Metrics) Done(route, method string, status int, d time.Duration) {
	m.inFlight.Dec()
	if route == "" {
		route = "unmatched"
	}
	k := observerKey{route, methodLabel(method), status}
	o, ok := (*m.observers.Load())[k]
	if !ok {
		o = m.resolve(k)
	}
	o.requests.Inc()
	o.duration.Observe(d.Seconds())
}

// methodLabel is the method label of a request: the method itself if it
// is a standard one, else "other". The method is the client's choice, and
// each label value is a new series in every scrape.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}

// resolve returns the observer of k, adding it to the map while there is
// room.
func (m *Metrics) resolve(k observerKey) observer {
	o := observer{
		requests: m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route, k.method),
	}
	m.observersMu.Lock()
	defer m.observersMu.Unlock()
	old := *m.observers.Load()
	if len(old) < maxObservers {
		next := make(map[observerKey]observer, len(old)+1)
		maps.Copy(next, old)
		next[k] = o
		m.observers.Store(&next)
	}
	return o
}

// Rejected counts a refusal with code (one per error object).
func (m *Metrics) Rejected(code licensor.Code) { m.rejections.WithLabelValues(string(code)).Inc() }

// Batch records the items of a batch request of operation (batch_create,
// batch_delete, entitlements_check).
func (m *Metrics) Batch(operation string, items int) {
	m.batchSize.WithLabelValues(operation).Observe(float64(items))
}

// Replayed counts a response replayed for a repeated Idempotency-Key.
func (m *Metrics) Replayed() { m.idempotentReplays.Inc() }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}
