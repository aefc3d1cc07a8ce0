package api

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

// metrics are the server's Prometheus metrics, on a registry of its own
// (no global state).
type metrics struct {
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

func newMetrics(engine licensor.Engine) *metrics {
	m := &metrics{
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

// observe records one finished request.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
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
func (m *metrics) resolve(k observerKey) observer {
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

// Handler serves the metrics in the Prometheus text format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

var (
	poolMaxOpen = prometheus.NewDesc("licensor_db_pool_max_open", "Most connections the pool may open.", []string{"pool"}, nil)
	poolOpen    = prometheus.NewDesc("licensor_db_pool_open", "Open connections.", []string{"pool"}, nil)
	poolInUse   = prometheus.NewDesc("licensor_db_pool_in_use", "Connections in use.", []string{"pool"}, nil)
	poolIdle    = prometheus.NewDesc("licensor_db_pool_idle", "Idle connections.", []string{"pool"}, nil)
	poolWaits   = prometheus.NewDesc("licensor_db_pool_waits_total", "Times a request waited for a connection.", []string{"pool"}, nil)
	poolWaited  = prometheus.NewDesc("licensor_db_pool_wait_seconds_total", "Time spent waiting for connections.", []string{"pool"}, nil)
)

// poolCollector reads the store's pool statistics at scrape time.
type poolCollector struct{ stats func() []licensor.PoolStats }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolMaxOpen, poolOpen, poolInUse, poolIdle, poolWaits, poolWaited} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.stats() {
		ch <- prometheus.MustNewConstMetric(poolMaxOpen, prometheus.GaugeValue, float64(s.MaxOpen), s.Name)
		ch <- prometheus.MustNewConstMetric(poolOpen, prometheus.GaugeValue, float64(s.Open), s.Name)
		ch <- prometheus.MustNewConstMetric(poolInUse, prometheus.GaugeValue, float64(s.InUse), s.Name)
		ch <- prometheus.MustNewConstMetric(poolIdle, prometheus.GaugeValue, float64(s.Idle), s.Name)
		ch <- prometheus.MustNewConstMetric(poolWaits, prometheus.CounterValue, float64(s.WaitCount), s.Name)
		ch <- prometheus.MustNewConstMetric(poolWaited, prometheus.CounterValue, s.WaitDuration, s.Name)
	}
}

var (
	writeTransactions = prometheus.NewDesc("licensor_write_transactions_total",
		"Write transactions committed (group commit: one for every group of concurrent writes).", nil, nil)
	writeUnits = prometheus.NewDesc("licensor_write_units_total",
		"Writes committed; divided by licensor_write_transactions_total, the mean group size.", nil, nil)
	writeQueued = prometheus.NewDesc("licensor_write_queued",
		"Writes waiting for the next group.", nil, nil)
	writeLargest = prometheus.NewDesc("licensor_write_group_max",
		"The largest group of writes committed at once so far.", nil, nil)
)

// writeCollector reads the store's group-commit counters at scrape time.
type writeCollector struct{ stats func() licensor.WriteStats }

func (c writeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{writeTransactions, writeUnits, writeQueued, writeLargest} {
		ch <- d
	}
}

func (c writeCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(writeTransactions, prometheus.CounterValue, float64(s.Commits))
	ch <- prometheus.MustNewConstMetric(writeUnits, prometheus.CounterValue, float64(s.Succeeded))
	ch <- prometheus.MustNewConstMetric(writeQueued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(writeLargest, prometheus.GaugeValue, float64(s.MaxGroup))
}
