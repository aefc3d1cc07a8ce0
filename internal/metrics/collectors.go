package metrics

// The collectors read at scrape time: the store engine's pool and group
// commit, and the entitlement cache.

import (
	"github.com/licensor/licensor"
	"github.com/licensor/licensor/internal/entitlement"
	"github.com/prometheus/client_golang/prometheus"
)

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

// EntitlementCache registers the entitlement cache's gauges and counters,
// read from stats at scrape time.
func (m *Metrics) EntitlementCache(stats func() entitlement.Stats) {
	read := func(f func(entitlement.Stats) float64) func() float64 {
		return func() float64 { return f(stats()) }
	}
	m.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "licensor_entitlement_cache_users", Help: "Users whose licenses the entitlement cache holds."},
			read(func(c entitlement.Stats) float64 { return float64(c.Users) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "licensor_entitlement_cache_products", Help: "Products the entitlement cache holds."},
			read(func(c entitlement.Stats) float64 { return float64(c.Products) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "licensor_entitlement_cache_bytes", Help: "Estimated bytes the entitlement cache holds (bounded by its budget)."},
			read(func(c entitlement.Stats) float64 { return float64(c.Bytes) })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "licensor_entitlement_feed_lag_seconds",
			Help: "How long ago the entitlement cache's change-feed watcher last started a read that reached the feed's head (-1: never); above the entitlement TTL, entries age out by the TTL."},
			read(func(c entitlement.Stats) float64 { return max(-1, c.FeedLag.Seconds()) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "licensor_entitlement_cache_hits_total", Help: "Lookups of a user's licenses served from memory."},
			read(func(c entitlement.Stats) float64 { return float64(c.UserHits) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "licensor_entitlement_cache_misses_total", Help: "Lookups of a user's licenses that had to wait for the database."},
			read(func(c entitlement.Stats) float64 { return float64(c.UserMisses) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "licensor_entitlement_cache_loads_total", Help: "Database loads made by the entitlement cache (users and products)."},
			read(func(c entitlement.Stats) float64 { return float64(c.Loads) })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "licensor_entitlement_cache_queries_total", Help: "Database reads of the entitlement cache (loads, of which misses that arrive together share one; warm-up pages; change-feed reads)."},
			read(func(c entitlement.Stats) float64 { return float64(c.Queries) })),
	)
}
