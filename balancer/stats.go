package balancer

import (
	"slices"
	"strings"
	"time"
)

// Instance states reported by Stats (and in /instances).
const (
	StateHealthy = "healthy"
	StateEjected = "ejected"
)

// ServiceStats describes one service's pool for /instances.
type ServiceStats struct {
	Service   string          `json:"service"`
	Instances []InstanceStats `json:"instances"`
}

// InstanceStats is one instance's state and statistics at the time of the
// Stats call.
type InstanceStats struct {
	ID      string   `json:"id"`
	Node    string   `json:"node"`
	Address string   `json:"address"`
	Tags    []string `json:"tags"`
	Weight  float64  `json:"weight"`
	// State is StateHealthy or StateEjected.
	State string `json:"state"`
	// EjectedUntil is when an ejected instance returns; zero otherwise.
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	// LatencyMs is the current peak-EWMA latency estimate in milliseconds.
	LatencyMs float64 `json:"latency_ms"`
	Inflight  int64   `json:"inflight"`
	// Share is the instance's fraction of the service's recently completed
	// attempts, decayed with DecayTime; shares of a service sum to 1 (or
	// are all 0 before any traffic).
	Share               float64 `json:"share"`
	ConsecutiveFailures int     `json:"consecutive_failures"`
	// Ejections is the number of back-to-back ejections (drives the
	// growing ejection time).
	Ejections int `json:"ejections"`
	// SlowStart is true while the instance's weight is still ramping.
	SlowStart bool `json:"slow_start"`
}

// Stats returns every service's current pool, services sorted by name and
// instances by node and ID. It allocates and takes short locks: meant for
// the admin endpoint and metrics, not for the hot path.
func (b *Balancer) Stats() []ServiceStats {
	now := b.now()
	svcs := *b.services.Load()
	out := make([]ServiceStats, 0, len(svcs))
	for name, s := range svcs {
		p := s.pool.Load()
		if p == nil {
			continue
		}
		ss := ServiceStats{Service: name, Instances: make([]InstanceStats, 0, len(p.all.eps))}
		total := 0.0
		loads := make([]float64, len(p.all.eps))
		for i, e := range p.all.eps {
			loads[i] = e.recentLoad(now, b.tau)
			total += loads[i]
		}
		for i, e := range p.all.eps {
			info := e.info.Load()
			st := InstanceStats{
				ID:                  e.key.id,
				Node:                e.key.node,
				Address:             info.addr,
				Tags:                slices.Clone(info.inst.Tags),
				Weight:              p.all.weights[i],
				State:               StateHealthy,
				LatencyMs:           e.latency(now, b.tau) / 1e6,
				Inflight:            e.inflight.Load(),
				ConsecutiveFailures: int(e.consecFail.Load()),
				Ejections:           int(e.ejections.Load()),
				SlowStart:           e.rampFactor(now, b.slowStart) < 1,
			}
			if st.Tags == nil {
				st.Tags = []string{}
			}
			if until := e.ejectedUntil.Load(); now < until {
				st.State = StateEjected
				st.EjectedUntil = b.epoch.Add(time.Duration(until))
			}
			if total > 0 {
				st.Share = loads[i] / total
			}
			ss.Instances = append(ss.Instances, st)
		}
		slices.SortFunc(ss.Instances, func(a, b InstanceStats) int {
			if c := strings.Compare(a.Node, b.Node); c != 0 {
				return c
			}
			return strings.Compare(a.ID, b.ID)
		})
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b ServiceStats) int { return strings.Compare(a.Service, b.Service) })
	return out
}
