// Package metrics holds a process's Prometheus collectors. Each process builds one
// Metrics (no global registry) and serves it at /metrics: the ingress on its own
// address, worker-only processes on their admin address.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are dexbridge's collectors.
type Metrics struct {
	reg *prometheus.Registry

	HTTPRequests        *prometheus.CounterVec   // route, method, status
	HTTPDuration        *prometheus.HistogramVec // route, method
	NATSRequestDuration *prometheus.HistogramVec // subject, outcome: as seen by the caller
	NATSHandlerDuration *prometheus.HistogramVec // subject, outcome: as seen by the worker
	UpstreamCalls       *prometheus.CounterVec   // instance, endpoint, status
	UpstreamDuration    *prometheus.HistogramVec // instance, endpoint
	RateLimitRejections *prometheus.CounterVec   // limit
	KeyRejections       *prometheus.CounterVec   // limit, api_key: refusals of a known API key
	CacheLookups        *prometheus.CounterVec   // kind, result (hit, miss)
	DiscoveryRuns       *prometheus.CounterVec   // instance, outcome
	DiscoveryDuration   *prometheus.HistogramVec // instance
	DiscoveryRows       *prometheus.CounterVec   // instance, kind
	PendingExecutions   *prometheus.GaugeVec     // instance
	Webhooks            *prometheus.CounterVec   // source, outcome
	ProactiveDeliveries *prometheus.CounterVec   // channel, outcome
	PrunedRows          *prometheus.CounterVec   // table
	PruningRuns         *prometheus.CounterVec   // outcome (ok, failed)
	AdmissionAdmitted   prometheus.Counter       // API requests the ingress admitted
	AdmissionRefusals   *prometheus.CounterVec   // reason (queue_full, queue_delay, client_gone, accept)
	AdmissionQueueDelay prometheus.Histogram     // admitted requests' wait in the admission queue
	IdleConnsClosed     prometheus.Counter       // idle connections the ingress closed at max_connections

	admission atomic.Pointer[func() (inFlight, queued, limit int)] // WatchAdmission
}

// queueBuckets are admission queue delays: the queue's target is milliseconds.
var queueBuckets = []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25}

// latency buckets from 1 ms to 60 s: cache answers sit at the bottom, remote actions
// waited for at the top.
var buckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// New builds the collectors and registers them with the Go and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_http_requests_total", Help: "HTTP requests by route template, method and status.",
		}, []string{"route", "method", "status"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dexbridge_http_request_duration_seconds", Help: "HTTP request latency by route template and method.", Buckets: buckets,
		}, []string{"route", "method"}),
		NATSRequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dexbridge_nats_request_duration_seconds", Help: "NATS request-reply latency seen by the caller, by subject and outcome.", Buckets: buckets,
		}, []string{"subject", "outcome"}),
		NATSHandlerDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dexbridge_nats_handler_duration_seconds", Help: "Time workers spend on a request, by subject and outcome.", Buckets: buckets,
		}, []string{"subject", "outcome"}),
		UpstreamCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_upstream_calls_total", Help: "Calls to Nexthink by instance, endpoint and HTTP status (0 for transport errors); 429s included.",
		}, []string{"instance", "endpoint", "status"}),
		UpstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dexbridge_upstream_call_duration_seconds", Help: "Latency of calls to Nexthink by instance and endpoint.", Buckets: buckets,
		}, []string{"instance", "endpoint"}),
		RateLimitRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_rate_limit_rejections_total", Help: "Requests refused by a rate limit, by limit.",
		}, []string{"limit"}),
		KeyRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_rate_limit_key_rejections_total", Help: "Requests of an API key refused by a rate limit, by limit and API key id.",
		}, []string{"limit", "api_key"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_cache_lookups_total", Help: "Cache lookups by kind and result (hit, miss).",
		}, []string{"kind", "result"}),
		DiscoveryRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_discovery_runs_total", Help: "Discovery runs by instance and outcome.",
		}, []string{"instance", "outcome"}),
		DiscoveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "dexbridge_discovery_duration_seconds", Help: "Discovery run duration by instance.",
			Buckets: []float64{1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"instance"}),
		DiscoveryRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_discovery_rows_total", Help: "Rows loaded by discovery, by instance and kind.",
		}, []string{"instance", "kind"}),
		PendingExecutions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "dexbridge_pending_executions", Help: "Remote action executions not yet final, by instance.",
		}, []string{"instance"}),
		Webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_webhooks_total", Help: "Inbound webhooks by source and outcome.",
		}, []string{"source", "outcome"}),
		ProactiveDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_proactive_deliveries_total", Help: "Proactive event deliveries by channel and outcome.",
		}, []string{"channel", "outcome"}),
		PrunedRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_pruned_rows_total", Help: "Rows deleted by the pruner past their retention, by table.",
		}, []string{"table"}),
		PruningRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_pruning_runs_total", Help: "Pruning runs by outcome (ok, failed: a table could not be pruned).",
		}, []string{"outcome"}),
		AdmissionAdmitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dexbridge_admission_admitted_total", Help: "API requests admitted by the ingress's admission control.",
		}),
		AdmissionRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "dexbridge_admission_refused_total", Help: "API requests refused 503 by the ingress's admission control, by reason (queue_full, queue_delay, client_gone, accept).",
		}, []string{"reason"}),
		AdmissionQueueDelay: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "dexbridge_admission_queue_delay_seconds", Help: "Time admitted API requests waited in the admission queue.", Buckets: queueBuckets,
		}),
		IdleConnsClosed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "dexbridge_http_idle_connections_closed_total", Help: "Idle keep-alive connections the ingress closed to make room for a new one at max_connections.",
		}),
	}
	admissionGauge := func(name, help string, pick func(inFlight, queued, limit int) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			if f := m.admission.Load(); f != nil {
				return float64(pick((*f)()))
			}
			return 0
		})
	}
	m.reg.MustRegister(
		m.AdmissionAdmitted, m.AdmissionRefusals, m.AdmissionQueueDelay, m.IdleConnsClosed,
		admissionGauge("dexbridge_admission_in_flight", "API requests being served under admission control.",
			func(n, _, _ int) int { return n }),
		admissionGauge("dexbridge_admission_queued", "API requests waiting in the admission queue.",
			func(_, n, _ int) int { return n }),
		admissionGauge("dexbridge_admission_limit", "The admission control's limit on API requests served at once (adaptive or fixed).",
			func(_, _, n int) int { return n }),
	)
	m.reg.MustRegister(
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.NATSRequestDuration, m.NATSHandlerDuration, m.UpstreamCalls,
		m.UpstreamDuration, m.RateLimitRejections, m.KeyRejections, m.CacheLookups, m.DiscoveryRuns, m.DiscoveryDuration,
		m.DiscoveryRows, m.PendingExecutions, m.Webhooks, m.ProactiveDeliveries, m.PrunedRows, m.PruningRuns,
	)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the process's registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveHTTP records one HTTP request.
func (m *Metrics) ObserveHTTP(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.HTTPDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveUpstream records one call to a Nexthink instance.
func (m *Metrics) ObserveUpstream(instance, endpoint string, status int, d time.Duration) {
	if m == nil {
		return
	}
	m.UpstreamCalls.WithLabelValues(instance, endpoint, strconv.Itoa(status)).Inc()
	m.UpstreamDuration.WithLabelValues(instance, endpoint).Observe(d.Seconds())
}

// RateLimited records a refusal by a limit ("cache", "nql", "actions", "apikey", "keys_endpoint").
func (m *Metrics) RateLimited(limit string) {
	if m == nil {
		return
	}
	m.RateLimitRejections.WithLabelValues(limit).Inc()
}

// KeyRateLimited records a refusal of API key id by a limit, so a noisy key shows in
// the metrics rather than in the log.
func (m *Metrics) KeyRateLimited(limit, id string) {
	if m == nil || id == "" {
		return
	}
	m.KeyRejections.WithLabelValues(limit, id).Inc()
}

// Admitted records an admitted API request and its wait in the admission queue.
func (m *Metrics) Admitted(waited time.Duration) {
	if m == nil {
		return
	}
	m.AdmissionAdmitted.Inc()
	m.AdmissionQueueDelay.Observe(waited.Seconds())
}

// IdleConnectionClosed records an idle connection closed to make room for a new one.
func (m *Metrics) IdleConnectionClosed() {
	if m == nil {
		return
	}
	m.IdleConnsClosed.Inc()
}

// AdmissionRefused records an API request refused by admission control.
func (m *Metrics) AdmissionRefused(reason string) {
	if m == nil {
		return
	}
	m.AdmissionRefusals.WithLabelValues(reason).Inc()
}

// WatchAdmission reports an admission controller's state in the gauges.
func (m *Metrics) WatchAdmission(stats func() (inFlight, queued, limit int)) {
	if m == nil {
		return
	}
	m.admission.Store(&stats)
}

// Cache records a cache lookup.
func (m *Metrics) Cache(kind string, hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.CacheLookups.WithLabelValues(kind, result).Inc()
}
