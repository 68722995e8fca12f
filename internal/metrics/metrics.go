// Package metrics defines the gateway's Prometheus metrics (names fixed by
// the CONTRACT) on a registry of its own: no package-level state, so tests
// and several gateways in one process never share counters.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics holds every metric the pipeline updates. Safe for concurrent use.
type Metrics struct {
	Registry *prometheus.Registry

	Consumed         *prometheus.CounterVec   // {stream}
	Acked            *prometheus.CounterVec   // {stream}
	RouteMatches     *prometheus.CounterVec   // {route}
	Dispatch         *prometheus.CounterVec   // {service,outcome}
	DispatchDuration *prometheus.HistogramVec // {service}
	Retries          *prometheus.CounterVec   // {service}
	DLQ              *prometheus.CounterVec   // {reason}
	RulesReloads     *prometheus.CounterVec   // {result}
	RulesActive      prometheus.Gauge
	ConsumerLag      *prometheus.GaugeVec // {stream}
	Pending          *prometheus.GaugeVec // {stream}
	Inflight         prometheus.Gauge
	Subscriptions    *prometheus.GaugeVec   // {state}: active, invalid
	StreamTrimmed    *prometheus.CounterVec // {stream} entries trimmed by retention or dlq_maxlen
	// Beyond the CONTRACT's list: counts that explain the others.
	Parked         *prometheus.CounterVec // {service,reason}
	DroppedHeaders prometheus.Counter
	Dropped        *prometheus.CounterVec // {stream} unmatched with default action drop
	Replies        *prometheus.CounterVec // {result}
	Errors         *prometheus.CounterVec // {op} Redis operations that failed
	StreamOwned    *prometheus.GaugeVec   // {stream} 1 where this replica reads an ordered stream
	// OldestUnfinishedAge is the age of the oldest entry some consumer
	// group has pending or unread; StreamLength is XLEN.
	OldestUnfinishedAge *prometheus.GaugeVec // {stream}
	StreamLength        *prometheus.GaugeVec // {stream}
	// Stage is where messages spend their time in the pipeline (sampled).
	Stage *prometheus.HistogramVec // {stage}
}

// New creates the metrics on a fresh registry, with Go and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{Registry: r}
	m.Consumed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_messages_consumed_total", Help: "Stream entries read (new or claimed)."}, []string{"stream"})
	m.Acked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_messages_acked_total", Help: "Stream entries acknowledged."}, []string{"stream"})
	m.RouteMatches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_route_matches_total", Help: "Messages that matched each route."}, []string{"route"})
	m.Dispatch = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_dispatch_total", Help: "HTTP attempts by outcome: delivered, permanent, transient, no_instance."}, []string{"service", "outcome"})
	m.DispatchDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_dispatch_duration_seconds", Help: "HTTP attempt duration.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}, []string{"service"})
	m.Retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_retries_total", Help: "Attempts beyond the first, on another instance."}, []string{"service"})
	m.DLQ = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_dlq_total", Help: "Entries dead-lettered by reason."}, []string{"reason"})
	m.RulesReloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_rules_reloads_total", Help: "Rule set reloads by result (success, failure)."}, []string{"result"})
	m.RulesActive = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_rules_active_routes", Help: "Routes in the active rule set."})
	m.ConsumerLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_consumer_lag", Help: "Entries not yet delivered to the group (XINFO GROUPS lag)."}, []string{"stream"})
	m.Pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_pending_messages", Help: "Entries delivered but not acknowledged (group PEL)."}, []string{"stream"})
	m.Inflight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "gateway_inflight", Help: "Messages being processed by this replica."})
	m.Subscriptions = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_subscriptions", Help: "Subscriptions declared in Consul by healthy instances, by state (active, invalid)."}, []string{"state"})
	m.Subscriptions.WithLabelValues("active")
	m.Subscriptions.WithLabelValues("invalid")
	m.StreamTrimmed = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_stream_trimmed_total", Help: "Entries trimmed from a stream: finished entries (consumer.retention) or the oldest dead letters (consumer.dlq_maxlen)."}, []string{"stream"})
	m.OldestUnfinishedAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_stream_oldest_unfinished_age_seconds", Help: "Age of the oldest entry some consumer group has pending or not yet read (0 when all are finished)."}, []string{"stream"})
	m.Stage = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "gateway_stage_seconds", Help: "Time in each pipeline stage: read and ack per batch, the others on a sample of messages (match, wait_slot, handoff, dispatch, settle).", Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}}, []string{"stage"})
	m.StreamLength = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_stream_length", Help: "Entries in the stream (XLEN)."}, []string{"stream"})
	m.Parked = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_parked_total", Help: "Messages left pending to wait in Redis (reason no_instance or transient)."}, []string{"service", "reason"})
	m.DroppedHeaders = prometheus.NewCounter(prometheus.CounterOpts{Name: "gateway_dropped_headers_total", Help: "Attributes not forwarded because they are not valid HTTP headers."})
	m.Dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_messages_dropped_total", Help: "Unmatched messages dropped by default action drop."}, []string{"stream"})
	m.Replies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_replies_total", Help: "Request-reply responses written, by result."}, []string{"result"})
	m.Errors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "gateway_redis_errors_total", Help: "Failed Redis operations by operation."}, []string{"op"})
	m.StreamOwned = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "gateway_stream_owned", Help: "1 for each ordered stream this replica owns and reads, 0 for the other consumed streams."}, []string{"stream"})
	for _, c := range []prometheus.Collector{m.StreamOwned, m.Consumed, m.Acked, m.RouteMatches, m.Dispatch, m.DispatchDuration,
		m.Retries, m.DLQ, m.RulesReloads, m.RulesActive, m.ConsumerLag, m.Pending, m.Inflight, m.Subscriptions,
		m.Parked, m.DroppedHeaders, m.Dropped, m.Replies, m.Errors,
		m.StreamTrimmed, m.OldestUnfinishedAge, m.StreamLength, m.Stage,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		f(c)
	}
	return m
}
