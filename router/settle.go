package router

import (
	"context"
	"strconv"
	"time"
)

// dlqInfo describes why an entry (or one of its routes) is dead-lettered.
type dlqInfo struct {
	reason string
	route  string
	status int
	err    string
}

// toDLQ writes e to the dead-letter stream with the CONTRACT's fields. If
// the write fails the route is not final: the entry stays pending.
func (r *Router) toDLQ(ctx context.Context, e *Entry, d dlqInfo) outcome {
	fields := make([]string, 0, 2*len(e.Fields)+16)
	for k, v := range e.Fields {
		fields = append(fields, k, v)
	}
	status := statusText(d.status)
	fields = append(fields,
		"dlq_reason", d.reason, "dlq_stream", e.Stream, "dlq_id", e.ID, "dlq_route", d.route,
		"dlq_status", status, "dlq_error", d.err,
		"dlq_attempts", strconv.FormatInt(e.Deliveries, 10), "dlq_at", strconv.FormatInt(time.Now().UnixMilli(), 10))
	if _, err := r.deps.Publisher.Add(ctx, r.cfg.DLQStream, 0, fields); err != nil {
		r.deps.Metrics.Errors.WithLabelValues("xadd_dlq").Inc()
		r.log.Warn("dead-letter write failed; entry stays pending", "msg_id", e.ID, "stream", e.Stream, "route", d.route, "err", err)
		return transient
	}
	r.deps.Metrics.DLQ.WithLabelValues(d.reason).Inc()
	return deadLetter
}

// deadLetterOnly settles an entry that reaches no route at all; a
// requester still gets a reply (route "").
func (r *Router) deadLetterOnly(ctx context.Context, j *job, d dlqInfo) verdict {
	if r.deadLetter(ctx, &j.e, j.msg, nil, d) == deadLetter {
		return verdict{ack: true}
	}
	return verdict{retryAfter: time.Second}
}

// settle acks e, or parks it in Redis until it is due again. A park that
// fails is harmless: the entry stays pending and XAUTOCLAIM finds it after
// ClaimIdle.
func (r *Router) settle(ctx context.Context, e *Entry, v verdict) {
	if v.ack {
		r.acks.add(e.Stream, e.ID)
		return
	}
	keep := e.Deliveries
	if !v.counts {
		keep-- // waiting for capacity or instances is not a failed attempt
	}
	if err := r.deps.Settler.Park(ctx, e.Stream, e.ID, keep, v.retryAfter, r.cfg.ClaimIdle); err != nil {
		r.deps.Metrics.Errors.WithLabelValues("xclaim_park").Inc()
		r.log.Warn("park failed; entry waits for claim_idle", "msg_id", e.ID, "stream", e.Stream, "err", err)
	}
}
