package router

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/rules"
)

// DLQ reasons (CONTRACT).
const (
	reasonNoRoute       = "no_route"
	reasonPermanent     = "permanent_error"
	reasonMaxDeliveries = "max_deliveries"
	reasonBadMessage    = "bad_message"
	reasonSchema        = "schema"
)

// verdict is what happens to an entry once its routes have been tried.
type verdict struct {
	ack bool // every route has a final outcome
	// When not acked: how long the entry waits in Redis before it is
	// claimable again, and whether this delivery counts as an attempt.
	retryAfter time.Duration
	counts     bool
}

// outcome of one route.
type outcome int

const (
	delivered   outcome = iota // 2xx
	deadLetter                 // written to the DLQ: final
	transient                  // failed; retry later
	unavailable                // no instance, or service saturated: wait
)

// job is one entry on its way through the pipeline, matched once under
// the rule set active when it was read.
type job struct {
	jobState
	// Storage a recycled job keeps, each part written for an entry before
	// it is read: newJob need not clear (nor copy) it.
	//
	// Inline backing for matches and sems: almost every message takes one
	// route to one service, which then costs no allocation of its own.
	matchBuf [1]rules.Match
	semBuf   [1]*serviceSem
	req      Request       // the HTTP attempt being made (attempt sets all of it)
	msgBuf   rules.Message // backing of msg (Message.Reset sets all of it)
}

// jobState is what newJob clears for each entry.
type jobState struct {
	e       Entry
	msg     *rules.Message
	set     *rules.Set
	matches []rules.Match
	// sems are the limits of the distinct services of deliverable
	// matches, sorted by service name.
	sems   []*serviceSem
	tooBig bool
	since  time.Time // lease start; guarded by leases.mu
	lease  leaseLink // place among the leases; guarded by leases.mu
	// sampled jobs have their stages timed; stamp is when the last one
	// ended (stageClock).
	sampled bool
	stamp   time.Time
	// trace carries the message's span while it is processed; nil with
	// tracing off, and on paths without a message span.
	trace context.Context
}

// jobs recycles jobs (and their Message and attribute map): a fresh
// ~1 KiB per message lands on cold memory that every later field access
// waits for; a recycled one is likely still in cache.
var jobs = sync.Pool{New: func() any { return new(job) }}

// newJob returns a job for e: its state cleared, the reusable storage of a
// recycled one kept as it is (copying the whole ~1 KiB job out and back,
// with a write barrier per pointer while the GC runs, was ~5% of the
// pipeline's CPU).
func newJob(e *Entry) *job {
	j := jobs.Get().(*job)
	j.reset(e)
	return j
}

// reset makes j a job for e, as newJob does.
func (j *job) reset(e *Entry) { j.jobState = jobState{e: *e} }

// freeJob recycles j, which must not be leased any more (leases.remove).
// Nothing may use j, its Message or its matches after.
func freeJob(j *job) { jobs.Put(j) }

// prepare decodes and matches e. It does no I/O.
func (r *Router) prepare(e *Entry) *job {
	j := newJob(e)
	r.match(j)
	return j
}

// match decodes and matches the entry of j, fresh from newJob.
func (r *Router) match(j *job) {
	e := &j.e
	if e.Fields == nil {
		return
	}
	j.msgBuf.Reset(e.Stream, e.ID, e.Fields, e.Deliveries)
	j.msg = &j.msgBuf
	if len(j.msg.Payload) > r.cfg.MaxPayloadBytes {
		j.tooBig = true
		return
	}
	j.set = r.deps.Rules()
	j.matches = j.set.Match(j.msg, j.matchBuf[:0])
	if only := j.msg.ReplayRoute; only != "" {
		// A replayed dead letter goes back to the route that dead-lettered
		// it, and no other (they had their copy).
		j.matches = slices.DeleteFunc(j.matches, func(m rules.Match) bool { return m.Route.Name != only })
	}
	j.sems = j.semBuf[:0]
	for _, m := range j.matches {
		if m.Err == nil && j.sem(m.Route.Service) == nil {
			j.sems = append(j.sems, r.svc.sem(m.Route.Service))
		}
		if m.Err == nil && m.Route.Batch != nil && r.batches != nil {
			r.batches.carry(m.Route)
		}
	}
	slices.SortFunc(j.sems, func(a, b *serviceSem) int { return strings.Compare(a.name, b.name) })
}

// sem returns the limits of svc if it is one of j's services, else nil.
func (j *job) sem(svc string) *serviceSem {
	for _, s := range j.sems {
		if s.name == svc {
			return s
		}
	}
	return nil
}

// process decides what happens to a job's entry. It never returns before
// every matched route has been tried once (with its retries), and it
// releases the job's service admissions as each route finishes. With
// tracing on, it runs in the message's span.
func (r *Router) process(ctx context.Context, j *job) verdict {
	if r.deps.Tracer != nil {
		return r.processTraced(ctx, j)
	}
	return r.processRoutes(ctx, j)
}

// processRoutes is process without tracing.
func (r *Router) processRoutes(ctx context.Context, j *job) verdict {
	e := &j.e
	switch {
	case e.Fields == nil:
		// Deleted from the stream while pending: nothing left to route.
		return verdict{ack: true}
	case j.tooBig:
		return r.deadLetterOnly(ctx, j, dlqInfo{reason: reasonBadMessage,
			err: "payload of " + strconv.Itoa(len(j.msg.Payload)) + " bytes exceeds max_payload_bytes"})
	case len(j.matches) == 0:
		if j.set.Default().Action == rules.ActionDrop {
			r.deps.Metrics.Dropped.WithLabelValues(e.Stream).Inc()
			return verdict{ack: true}
		}
		return r.deadLetterOnly(ctx, j, dlqInfo{reason: reasonNoRoute, err: "no route matched"})
	}
	defer leave(j.sems)
	fanOut := len(j.matches) > 1
	var settled, nowFinal []string
	if fanOut && e.Redelivered {
		settled = r.settledRoutes(ctx, e)
	}
	v := verdict{ack: true}
	for i := range j.matches {
		m := &j.matches[i]
		r.mc.routeMatches(m.Route.Name).Inc()
		if slices.Contains(settled, m.Route.SettleKey()) {
			continue // delivered or dead-lettered on an earlier delivery
		}
		var o outcome
		var wait time.Duration
		if m.Err != nil {
			reason := reasonBadMessage
			if errors.Is(m.Err, rules.ErrSchema) {
				reason = reasonSchema
			}
			o = r.deadLetter(ctx, e, j.msg, m.Route, dlqInfo{reason: reason, route: m.Route.Name, err: m.Err.Error()})
		} else {
			o, wait = r.deliver(ctx, j, m)
		}
		switch o {
		case transient:
			v.ack, v.counts = false, true
			v.retryAfter = max(v.retryAfter, wait)
		case unavailable:
			v.ack = false
			v.retryAfter = max(v.retryAfter, wait)
		default:
			if fanOut {
				nowFinal = append(nowFinal, m.Route.SettleKey())
			}
		}
	}
	if !v.ack && len(nowFinal) > 0 {
		r.rememberSettled(ctx, e, nowFinal)
	}
	return v
}

// settledTTL bounds how long the routes already settled of an entry still
// pending are remembered; an entry waiting longer than that (a service
// without instances for a day) re-sends them once, which at-least-once
// allows.
const settledTTL = 24 * time.Hour

// settledRoutes returns the routes of a fan-out entry settled on earlier
// deliveries. If Redis cannot tell, none: they are sent again (the
// receivers see the same Idempotency-Key).
func (r *Router) settledRoutes(ctx context.Context, e *Entry) []string {
	routes, err := r.deps.Settler.SettledRoutes(ctx, e.Stream, e.ID)
	if err != nil {
		r.deps.Metrics.Errors.WithLabelValues("settled_read").Inc()
		r.log.Warn("reading settled routes failed; they are sent again", "msg_id", e.ID, "stream", e.Stream, "err", err)
	}
	return routes
}

// rememberSettled records routes that reached a final outcome while the
// entry stays pending for others, so a redelivery skips them. A failed
// write only means they are sent again.
func (r *Router) rememberSettled(ctx context.Context, e *Entry, routes []string) {
	if err := r.deps.Settler.RememberSettled(ctx, e.Stream, e.ID, routes, settledTTL); err != nil {
		r.deps.Metrics.Errors.WithLabelValues("settled_write").Inc()
		r.log.Warn("recording settled routes failed; they will be sent again", "msg_id", e.ID, "stream", e.Stream, "err", err)
	}
}

// deliver sends msg over route m with the route's retries, each on another
// instance, and settles final failures in the DLQ.
func (r *Router) deliver(ctx context.Context, j *job, m *rules.Match) (outcome, time.Duration) {
	e, msg := &j.e, j.msg
	route := m.Route
	svc := route.Service
	sem := j.sem(svc)
	attempts := 1 + route.Retries
	var avoid *balancer.Endpoint
	var last attemptResult
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if !r.deps.Picker.AllowRetry(svc) {
				break
			}
			r.deps.Metrics.Retries.WithLabelValues(svc).Inc()
		}
		attempt := int(e.Deliveries-1)*attempts + i + 1
		var ep *balancer.Endpoint
		if route.Batch != nil && r.batches != nil {
			// One request for the entries of several workers (batch.go);
			// the outcome is this entry's own.
			res, bep, stopped := r.batches.submit(ctx, m, msg, attempt, avoid)
			if stopped {
				return transient, time.Second
			}
			if res.class == unavailable {
				if i > 0 {
					break // settle on the last answer, as below
				}
				return r.noInstance(svc)
			}
			last, ep = res, bep
		} else {
			if !sem.acquire(ctx) {
				return transient, time.Second // shutdown deadline passed while waiting
			}
			start := time.Now()
			var err error
			ep, err = r.deps.Picker.PickAt(svc, route.Tags, avoid, start)
			if err != nil {
				sem.release()
				if i > 0 {
					break // instances vanished mid-retry: settle on the last answer
				}
				return r.noInstance(svc)
			}
			last = r.attempt(j, ep, m, attempt, start)
			sem.release()
		}
		switch last.class {
		case delivered:
			if msg.ReplyTo != "" && !r.reply(ctx, msg, route.Name, last.res) {
				return transient, time.Second
			}
			return delivered, 0
		case deadLetter:
			return r.deadLetter(ctx, e, msg, route, dlqInfo{reason: reasonPermanent, route: route.Name,
				status: last.res.Status, err: last.errText()}), 0
		}
		avoid = ep
	}
	if e.Deliveries >= r.cfg.MaxDeliveries {
		return r.deadLetter(ctx, e, msg, route, dlqInfo{reason: reasonMaxDeliveries, route: route.Name,
			status: last.res.Status, err: last.errText()}), 0
	}
	r.deps.Metrics.Parked.WithLabelValues(svc, "transient").Inc()
	return transient, retryDelay(e.Deliveries)
}

// noInstance counts a message parked because its service has no instance.
func (r *Router) noInstance(svc string) (outcome, time.Duration) {
	r.deps.Metrics.Dispatch.WithLabelValues(svc, "no_instance").Inc()
	r.deps.Metrics.Parked.WithLabelValues(svc, "no_instance").Inc()
	return unavailable, time.Second
}

// attemptResult is one HTTP attempt's answer and its class.
type attemptResult struct {
	class outcome
	res   Result
	err   error
}

func (a attemptResult) errText() string {
	switch {
	case a.err != nil:
		return a.err.Error()
	case a.res.Status != 0:
		return "HTTP " + strconv.Itoa(a.res.Status)
	}
	return ""
}

// attempt performs one HTTP request to ep and classifies the answer:
// 2xx delivered; 408, 429, 5xx and transport errors transient; other
// answers permanent. j.req is scratch space for the request (it escapes
// to the Sender, so a fresh one would cost an allocation per attempt).
func (r *Router) attempt(j *job, ep *balancer.Endpoint, m *rules.Match, n int, start time.Time) attemptResult {
	req, msg, route := &j.req, j.msg, m.Route
	*req = Request{
		Addr: ep.Addr(), Method: route.Method, Path: m.Path, Route: route.Name, Msg: msg,
		Attempt: n, Timeout: cmp.Or(route.Timeout, r.cfg.AttemptTimeout), Start: start, KeepBody: msg.ReplyTo != "",
		TraceParent: msg.TraceParent, TraceState: msg.TraceState,
	}
	var span trace.Span
	if r.deps.Tracer != nil {
		span = r.startAttempt(j, req, ep, route.Service)
	}
	res, err := r.deps.Sender.Do(req)
	end := time.Now() // one reading for the metrics and the balancer
	elapsed := end.Sub(start)
	if res.Dropped > 0 {
		r.deps.Metrics.DroppedHeaders.Add(float64(res.Dropped))
	}
	a := attemptResult{res: res, err: err}
	bo := balancer.Success
	switch {
	case errors.Is(err, ErrBadPath):
		a.class = deadLetter
	case err != nil:
		a.class, bo = transient, balancer.Failure
	case res.Status >= 200 && res.Status < 300:
		a.class = delivered
	case res.Status == 408 || res.Status == 429 || res.Status >= 500:
		a.class, bo = transient, balancer.Failure
	default:
		a.class = deadLetter
	}
	r.deps.Picker.DoneAt(ep, bo, elapsed, end)
	if span != nil {
		endAttempt(span, a)
	}
	sm := r.mc.service(route.Service)
	sm.dispatched(a.class).Inc()
	sm.duration.Observe(elapsed.Seconds())
	return a
}

func outcomeLabel(o outcome) string {
	switch o {
	case delivered:
		return "delivered"
	case deadLetter:
		return "permanent"
	default:
		return "transient"
	}
}

// retryDelay is how long a transiently failed entry waits in Redis before
// its next delivery: 1s, 2s, 4s ... capped at 30s.
func retryDelay(deliveries int64) time.Duration {
	d := time.Second << min(max(deliveries-1, 0), 5)
	return min(d, 30*time.Second)
}

// reply writes the instance's answer to the message's reply_to stream
// (outcome delivered).
func (r *Router) reply(ctx context.Context, msg *rules.Message, route string, res Result) bool {
	ct := res.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	fields := []string{
		"correlation_id", msg.CorrelationID, "outcome", replyDelivered, "status", strconv.Itoa(res.Status),
		"payload", string(res.Body), "content_type", ct, "route", route, "message_id", msg.ID,
	}
	if res.Truncated {
		// The answer was larger than the dispatcher keeps: payload is its
		// beginning only.
		fields = append(fields, "payload_truncated", "true")
	}
	return r.writeReply(ctx, msg, route, fields)
}
