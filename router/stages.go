package router

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Where a message's time goes, for gateway_stage_seconds{stage}. Per-batch
// stages are observed once per batch; per-message ones on one message in
// stageSampleEvery, so the clock reads cost nothing measurable.
const (
	stageRead     = "read"      // XREADGROUP / XAUTOCLAIM call, per batch
	stageMatch    = "match"     // decode and match, per message (batch average)
	stageWaitSlot = "wait_slot" // read, waiting for an in-flight slot and queue room
	stageHandoff  = "handoff"   // handed to a worker, until it runs
	stageDispatch = "dispatch"  // every route tried: pick, HTTP attempts, DLQ writes
	stageSettle   = "settle"    // ack queued, or the entry parked
	stageAck      = "ack"       // one pipelined XACK flush, per batch
)

// stageSampleEvery is how often a message's stages are timed.
const stageSampleEvery = 32

// stageClock times the stages of sampled messages.
type stageClock struct {
	read, match, waitSlot, handoff, dispatch, settle prometheus.Observer

	n atomic.Uint64
}

func newStageClock(h *prometheus.HistogramVec) *stageClock {
	return &stageClock{
		read: h.WithLabelValues(stageRead), match: h.WithLabelValues(stageMatch),
		waitSlot: h.WithLabelValues(stageWaitSlot), handoff: h.WithLabelValues(stageHandoff),
		dispatch: h.WithLabelValues(stageDispatch), settle: h.WithLabelValues(stageSettle),
	}
}

// sample reports whether the next message is timed.
func (c *stageClock) sample() bool { return c.n.Add(1)%stageSampleEvery == 0 }

// observeSince observes the time from start to now on o and returns now.
func observeSince(o prometheus.Observer, start time.Time) time.Time {
	now := time.Now()
	o.Observe(now.Sub(start).Seconds())
	return now
}
