package router

import (
	"context"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"sync"
	"time"

	"github.com/msgroute/gateway/internal/backoff"
)

// acker batches XACKs: entries settled at about the same time are
// acknowledged in one pipelined round trip.
type acker struct {
	settler Settler
	m       *metricCache
	log     *slog.Logger
	in      chan ackReq
	once    sync.Once
	stage   prometheus.Observer // flush durations
}

type ackReq struct{ stream, id string }

const ackBatch = 512

func newAcker(s Settler, m *metricCache, log *slog.Logger) *acker {
	return &acker{settler: s, m: m, log: log, in: make(chan ackReq, 4096), stage: m.m.Stage.WithLabelValues(stageAck)}
}

// add queues an ack; it blocks only when the queue is full.
func (a *acker) add(stream, id string) { a.in <- ackReq{stream, id} }

// close ends run once the queue is flushed. Call after the last add.
func (a *acker) close() { a.once.Do(func() { close(a.in) }) }

// run acks until close, then flushes what is queued. When ctx ends early
// (drain timeout) unflushed entries stay pending and are redelivered.
func (a *acker) run(ctx context.Context) {
	batch := make(map[string][]string)
	spare := make(map[string][]string) // emptied ID slices, reused per stream
	add := func(r ackReq) {
		ids, ok := batch[r.stream]
		if !ok {
			ids = spare[r.stream][:0]
		}
		batch[r.stream] = append(ids, r.id)
	}
	for {
		req, ok := <-a.in
		if !ok {
			return
		}
		n := 1
		add(req)
	fill:
		for n < ackBatch {
			select {
			case req, ok = <-a.in:
				if !ok {
					break fill
				}
				add(req)
				n++
			default:
				break fill
			}
		}
		a.flush(ctx, batch)
		for s, ids := range batch {
			clear(ids) // drop the ID strings, keep the array
			spare[s] = ids
		}
		clear(batch)
		if !ok {
			return
		}
	}
}

func (a *acker) flush(ctx context.Context, batch map[string][]string) {
	b := &backoff.Backoff{Min: 50 * time.Millisecond, Max: 2 * time.Second}
	for attempt := 0; ; attempt++ {
		began := time.Now()
		err := a.settler.AckMany(ctx, batch)
		if err == nil {
			observeSince(a.stage, began)
			for s, ids := range batch {
				a.m.acked(s).Add(float64(len(ids)))
			}
			return
		}
		a.m.m.Errors.WithLabelValues("xack").Inc()
		if attempt == 0 {
			a.log.Warn("ack failed; retrying", "err", err)
		}
		// Give up after ~30s: the entries stay pending and are redelivered
		// (at-least-once), which beats blocking the pipeline forever.
		if attempt >= 20 || !b.Wait(ctx) {
			a.log.Error("ack abandoned; entries will be redelivered", "entries", len(batch), "err", err)
			return
		}
	}
}
