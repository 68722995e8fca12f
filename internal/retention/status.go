package retention

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// StreamStatus is one consumed stream as GET /streams reports it. The JSON
// keys are read by the status page.
type StreamStatus struct {
	Stream string `json:"stream"`
	Group  string `json:"group"`  // the gateway's consumer group
	Length int64  `json:"length"` // XLEN
	// Lag is the group's entries not yet delivered (XINFO GROUPS lag); -1
	// when Redis cannot tell (after XDEL of unread entries).
	Lag     int64 `json:"lag"`
	Pending int64 `json:"pending"` // the group's delivered, unacknowledged entries
	// ConsumedPerSec is this replica's gateway_messages_consumed_total rate
	// over the last pass.
	ConsumedPerSec   float64 `json:"consumed_per_sec"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"` // age of the first entry; 0 when empty
	// OldestUnfinishedAgeSeconds is the age of the oldest entry some group
	// (any group) has pending or not yet read; 0 when all are finished.
	OldestUnfinishedAgeSeconds float64 `json:"oldest_unfinished_age_seconds"`
	TrimmedTotal               int64   `json:"trimmed_total"` // entries this replica trimmed
	Ordered                    bool    `json:"ordered"`       // read in order (order_key)
	Owner                      string  `json:"owner"`         // replica reading an ordered stream
}

// Streams returns the latest pass's view of every consumed stream, in the
// configured order, with ownership filled in at call time. Safe for
// concurrent use.
func (t *Trimmer) Streams() []StreamStatus {
	out := append([]StreamStatus(nil), *t.snapshot.Load()...)
	if t.cfg.Ownership != nil {
		for i := range out {
			out[i].Ordered, out[i].Owner = t.cfg.Ownership(out[i].Stream)
		}
	}
	return out
}

// consumedRate is the consumed counter's rate for stream since the last
// pass (0 on the first).
func (t *Trimmer) consumedRate(stream string, now time.Time) float64 {
	v := counterValue(t.m.Consumed.WithLabelValues(stream))
	prev, seen := t.consumed[stream]
	t.consumed[stream] = v
	elapsed := now.Sub(t.lastPass).Seconds()
	if !seen || t.lastPass.IsZero() || elapsed <= 0 || v < prev {
		return 0
	}
	return (v - prev) / elapsed
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
