package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/gatehouse/gatehouse/core"
	"github.com/gatehouse/gatehouse/internal/asynclog"
)

// newRegistry returns the registry GET /metrics serves, holding the Go
// runtime's and the process' collectors and the Redis connection pool's
// (client's PoolStats, summed over a Cluster's nodes). The HTTP, /verify,
// login and sign-up metrics are adminapi's; the plugins' are added once the
// host runs (pluginCollector, pluginCalls).
func newRegistry(client redis.UniversalClient) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), poolCollector{client})
	return reg
}

// poolCollector reads go-redis' pool statistics at each scrape.
type poolCollector struct{ client redis.UniversalClient }

// The pool's series.
var (
	poolHits     = prometheus.NewDesc("gatehouse_redis_pool_hits_total", "Times a free connection was found in the Redis pool.", nil, nil)
	poolMisses   = prometheus.NewDesc("gatehouse_redis_pool_misses_total", "Times no free connection was in the Redis pool (a new one was dialed or waited for).", nil, nil)
	poolTimeouts = prometheus.NewDesc("gatehouse_redis_pool_timeouts_total", "Times waiting for a Redis pool connection timed out.", nil, nil)
	poolWaits    = prometheus.NewDesc("gatehouse_redis_pool_waits_total", "Times a request waited for a Redis pool connection.", nil, nil)
	poolWaitSecs = prometheus.NewDesc("gatehouse_redis_pool_wait_seconds_total", "Time spent waiting for Redis pool connections.", nil, nil)
	poolStale    = prometheus.NewDesc("gatehouse_redis_pool_stale_connections_total", "Stale connections removed from the Redis pool.", nil, nil)
	poolTotal    = prometheus.NewDesc("gatehouse_redis_pool_connections", "Connections in the Redis pool.", nil, nil)
	poolIdle     = prometheus.NewDesc("gatehouse_redis_pool_idle_connections", "Idle connections in the Redis pool.", nil, nil)
	poolPending  = prometheus.NewDesc("gatehouse_redis_pool_pending_requests", "Requests waiting for a Redis pool connection now.", nil, nil)
)

// Describe implements prometheus.Collector.
func (poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolHits, poolMisses, poolTimeouts, poolWaits, poolWaitSecs, poolStale, poolTotal, poolIdle, poolPending} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.client.PoolStats()
	if st == nil {
		return
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter(poolHits, float64(st.Hits))
	counter(poolMisses, float64(st.Misses))
	counter(poolTimeouts, float64(st.Timeouts))
	counter(poolWaits, float64(st.WaitCount))
	counter(poolWaitSecs, time.Duration(st.WaitDurationNs).Seconds())
	counter(poolStale, float64(st.StaleConns))
	gauge(poolTotal, float64(st.TotalConns))
	gauge(poolIdle, float64(st.IdleConns))
	gauge(poolPending, float64(st.PendingRequests))
}

// pluginCollector reads the plugins' state at each scrape.
type pluginCollector struct{ status func() []core.PluginStatus }

// The plugins' series.
var (
	pluginUp       = prometheus.NewDesc("gatehouse_plugin_up", "1 when the plugin runs and answers its health checks, else 0.", []string{"plugin"}, nil)
	pluginState    = prometheus.NewDesc("gatehouse_plugin_state", "1 for the plugin's current state (starting, running, restarting, failed, stopped), 0 for the others.", []string{"plugin", "state"}, nil)
	pluginRestarts = prometheus.NewDesc("gatehouse_plugin_restarts_total", "Restarts of the plugin's process since this instance started.", []string{"plugin"}, nil)
)

// pluginStates are every state a plugin can be in, for gatehouse_plugin_state.
var pluginStates = []core.PluginState{core.PluginStarting, core.PluginRunning, core.PluginRestarting, core.PluginFailed, core.PluginStopped}

// Describe implements prometheus.Collector.
func (pluginCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pluginUp
	ch <- pluginState
	ch <- pluginRestarts
}

// Collect implements prometheus.Collector.
func (c pluginCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.status() {
		up := 0.0
		if p.State == core.PluginRunning && p.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(pluginUp, prometheus.GaugeValue, up, p.Name)
		for _, s := range pluginStates {
			v := 0.0
			if p.State == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(pluginState, prometheus.GaugeValue, v, p.Name, string(s))
		}
		ch <- prometheus.MustNewConstMetric(pluginRestarts, prometheus.CounterValue, float64(p.Restarts), p.Name)
	}
}

// pluginCalls is the latency histogram of calls to plugins, by plugin,
// method and outcome: ok, unavailable (the plugin is down, did not answer in
// time, or said its own service is down) or error (any other answer the
// plugin refused with, a wrong password say).
type pluginCalls struct{ hist *prometheus.HistogramVec }

// newPluginCalls registers the histogram on reg.
func newPluginCalls(reg prometheus.Registerer) pluginCalls {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "gatehouse_plugin_call_duration_seconds",
		Help:    "Calls to plugins by plugin, method and outcome (ok, unavailable, error).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
	}, []string{"plugin", "method", "outcome"})
	reg.MustRegister(h)
	return pluginCalls{h}
}

// observe is pluginhost.Options.ObserveCall.
func (p pluginCalls) observe(plugin, method string, took time.Duration, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case core.KindOf(err) == core.Unavailable:
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	p.hist.WithLabelValues(plugin, method, outcome).Observe(took.Seconds())
}

// droppedLines counts the access lines dropped because the access log's
// buffer was full (the log's output could not keep up).
func droppedLines(w *asynclog.Writer) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "gatehouse_access_log_dropped_total",
		Help: "Access log lines dropped because the log's buffer was full (its output could not keep up).",
	}, func() float64 { return float64(w.Dropped()) })
}
