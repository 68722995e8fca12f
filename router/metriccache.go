package router

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// metricCache keeps the label children the per-message path updates, so a
// message costs a sync.Map load per metric instead of WithLabelValues'
// label hashing and vector lock. Children are never deleted from the
// vectors, so a cached child stays the one /metrics reports. Safe for
// concurrent use.
type metricCache struct {
	m        *metrics.Metrics
	streams  sync.Map // stream -> *streamMetrics
	routes   sync.Map // route name -> prometheus.Counter (matches)
	services sync.Map // service -> *serviceMetrics
}

type streamMetrics struct {
	consumed, acked prometheus.Counter
}

type serviceMetrics struct {
	delivered, permanent, transient prometheus.Counter
	duration                        prometheus.Observer
}

func newMetricCache(m *metrics.Metrics) *metricCache { return &metricCache{m: m} }

func (c *metricCache) stream(s string) *streamMetrics {
	if v, ok := c.streams.Load(s); ok {
		return v.(*streamMetrics)
	}
	v, _ := c.streams.LoadOrStore(s, &streamMetrics{
		consumed: c.m.Consumed.WithLabelValues(s),
		acked:    c.m.Acked.WithLabelValues(s),
	})
	return v.(*streamMetrics)
}

func (c *metricCache) consumed(stream string) prometheus.Counter { return c.stream(stream).consumed }

func (c *metricCache) acked(stream string) prometheus.Counter { return c.stream(stream).acked }

func (c *metricCache) routeMatches(route string) prometheus.Counter {
	if v, ok := c.routes.Load(route); ok {
		return v.(prometheus.Counter)
	}
	v, _ := c.routes.LoadOrStore(route, c.m.RouteMatches.WithLabelValues(route))
	return v.(prometheus.Counter)
}

func (c *metricCache) service(svc string) *serviceMetrics {
	if v, ok := c.services.Load(svc); ok {
		return v.(*serviceMetrics)
	}
	v, _ := c.services.LoadOrStore(svc, &serviceMetrics{
		delivered: c.m.Dispatch.WithLabelValues(svc, outcomeLabel(delivered)),
		permanent: c.m.Dispatch.WithLabelValues(svc, outcomeLabel(deadLetter)),
		transient: c.m.Dispatch.WithLabelValues(svc, outcomeLabel(transient)),
		duration:  c.m.DispatchDuration.WithLabelValues(svc),
	})
	return v.(*serviceMetrics)
}

// dispatched counts one HTTP attempt to svc with outcome o.
func (s *serviceMetrics) dispatched(o outcome) prometheus.Counter {
	switch o {
	case delivered:
		return s.delivered
	case deadLetter:
		return s.permanent
	default:
		return s.transient
	}
}

// owned is the gateway_stream_owned gauge of stream (not cached: it
// changes with ownership, not per message).
func (c *metricCache) owned(stream string) prometheus.Gauge {
	return c.m.StreamOwned.WithLabelValues(stream)
}

// PrimeMetrics exports at 0 the series whose label values set makes known
// in advance: matches of each route, and per service it names the
// dispatch outcomes and retries, so rate() and alerts see them before the
// first event. Call it with each rule set made active; series of services
// no longer named stay (a counter is never deleted). Safe for concurrent
// use.
func (r *Router) PrimeMetrics(set *rules.Set) {
	for _, rt := range set.Routes() {
		r.mc.routeMatches(rt.Name)
	}
	for _, rt := range set.Subscriptions() {
		r.mc.routeMatches(rt.Name)
	}
	for _, svc := range set.Services() {
		r.mc.service(svc)
		r.deps.Metrics.Dispatch.WithLabelValues(svc, "no_instance")
		r.deps.Metrics.Retries.WithLabelValues(svc)
	}
}
