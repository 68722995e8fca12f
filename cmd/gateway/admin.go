package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/discovery"
	"github.com/msgroute/gateway/health"
	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/internal/retention"
	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
	"github.com/msgroute/gateway/subscriptions"
)

func adminSources(m *metrics.Metrics, ping func(context.Context) *redis.StatusCmd, holder *router.RuleHolder,
	bal *balancer.Balancer, disc *discovery.Watcher, ret *retention.Trimmer, catalog *discovery.Catalog,
	subs *subscriptions.Registry) health.Sources {
	return health.Sources{
		Gatherer: m.Registry,
		Checks: []health.Check{
			{Name: "redis", Fn: func(ctx context.Context) error { return ping(ctx).Err() }},
			{Name: "rules", Fn: func(context.Context) error {
				if holder.Load() == nil {
					return errors.New("no rule set loaded")
				}
				return nil
			}},
			{Name: "consul", Fn: func(context.Context) error {
				// Rules that name no service need nothing from Consul.
				if !disc.Answered() && len(holder.Load().Services()) > 0 {
					if st := disc.Status(); st.LastError != "" {
						return errors.New("consul has not answered yet: " + st.LastError)
					}
					return errors.New("consul has not answered yet")
				}
				return subscriptionsReady(catalog, disc)
			}, Detail: func() any { return disc.Status() }},
		},
		Rules: func() any {
			st := rulesStatus{RuleStatus: holder.Status(), Subscriptions: []subscriptions.Status{}}
			if subs != nil {
				st.Subscriptions = subs.Status()
			}
			return st
		},
		Instances: func() any { return bal.Stats() },
		Streams:   func() any { return ret.Streams() },
		Explain: func(stream string, fields map[string]string) (any, error) {
			if stream == "" {
				return nil, errors.New("stream is required")
			}
			msg := rules.NewMessage(stream, "0-1", fields, 1)
			return holder.Load().Explain(msg), nil
		},
	}
}

// subscriptionsReady: with subscriptions on (catalog not nil), the gateway
// is ready once it knows what is declared: the catalog answered and so did
// every service's first instance query, so a message a subscription
// matches is not dead-lettered no_route for arriving first.
func subscriptionsReady(catalog *discovery.Catalog, disc *discovery.Watcher) error {
	if catalog == nil {
		return nil
	}
	if !catalog.Answered() {
		return errors.New("consul catalog (subscriptions) has not answered yet")
	}
	for name, st := range disc.Status().Services {
		if !st.Answered {
			return fmt.Errorf("consul has not answered for service %s yet (subscriptions)", name)
		}
	}
	return nil
}

// rulesStatus is GET /rules: the active rule set and the subscriptions
// declared in Consul (valid or not).
type rulesStatus struct {
	router.RuleStatus
	Subscriptions []subscriptions.Status `json:"subscriptions"`
}

// evalErrorsCollector exports gateway_rule_eval_errors_total{route} from
// the active rule set's own counters at scrape time (they restart from 0
// when a reload installs a new set, which Prometheus reads as a reset).
type evalErrorsCollector struct {
	holder *router.RuleHolder
	desc   *prometheus.Desc
}

func newEvalErrorsCollector(h *router.RuleHolder) *evalErrorsCollector {
	return &evalErrorsCollector{holder: h, desc: prometheus.NewDesc("gateway_rule_eval_errors_total",
		"Runtime expression errors per route, counted as no-match (active rule set).", []string{"route"}, nil)}
}

func (c *evalErrorsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *evalErrorsCollector) Collect(ch chan<- prometheus.Metric) {
	set := c.holder.Load()
	for _, r := range set.Routes() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.EvalErrors()), r.Name)
	}
	// Variants of one subscription share a name: one series per name.
	subs := map[string]uint64{}
	for _, r := range set.Subscriptions() {
		subs[r.Name] += r.EvalErrors()
	}
	for name, n := range subs {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), name)
	}
}

// instancesCollector exports, at scrape time, gateway_instances{service,state}
// from the balancer's view and gateway_discovery_staleness_seconds{service}
// (time since Consul last answered for the service) from discovery's.
type instancesCollector struct {
	bal       *balancer.Balancer
	disc      *discovery.Watcher
	desc      *prometheus.Desc
	staleness *prometheus.Desc
}

func newInstancesCollector(b *balancer.Balancer, d *discovery.Watcher) *instancesCollector {
	return &instancesCollector{bal: b, disc: d,
		desc: prometheus.NewDesc("gateway_instances",
			"Instances per service by state (healthy, ejected).", []string{"service", "state"}, nil),
		staleness: prometheus.NewDesc("gateway_discovery_staleness_seconds",
			"Seconds since Consul last answered for the service (grows while Consul is unreachable).", []string{"service"}, nil)}
}

func (c *instancesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.staleness
}

func (c *instancesCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for svc, st := range c.disc.Status().Services {
		ch <- prometheus.MustNewConstMetric(c.staleness, prometheus.GaugeValue, st.Staleness(now).Seconds(), svc)
	}
	for _, s := range c.bal.Stats() {
		counts := map[string]int{balancer.StateHealthy: 0, balancer.StateEjected: 0}
		for _, in := range s.Instances {
			counts[in.State]++
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), s.Service, state)
		}
	}
}
