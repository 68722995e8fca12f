package router

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/rules"
)

// Tracing. The router speaks only the OpenTelemetry API (trace.Tracer);
// the SDK, its sampler and exporter are wired by the caller. With
// Deps.Tracer nil (tracing off) the only cost per message is a nil check.

// Span names and attribute keys (README "Tracing").
const (
	spanProcess  = "process"
	spanDispatch = "dispatch"

	attrStream     = attribute.Key("messaging.destination.name")
	attrEntryID    = attribute.Key("messaging.message.id")
	attrDeliveries = attribute.Key("gateway.deliveries")
	attrRoutes     = attribute.Key("gateway.routes")
	attrVerdict    = attribute.Key("gateway.verdict")
	attrRoute      = attribute.Key("gateway.route")
	attrService    = attribute.Key("gateway.service")
	attrInstance   = attribute.Key("gateway.instance")
	attrAttempt    = attribute.Key("gateway.attempt")
	attrOutcome    = attribute.Key("gateway.outcome")
	attrMethod     = attribute.Key("http.request.method")
	attrPath       = attribute.Key("url.path")
	attrStatus     = attribute.Key("http.response.status_code")
)

// processTraced is process inside the message's span: its parent is the
// entry's traceparent when that is valid, and every dispatch attempt of
// the message is a child of it (through j.trace).
func (r *Router) processTraced(ctx context.Context, j *job) verdict {
	e := &j.e
	attrs := []attribute.KeyValue{attrStream.String(e.Stream), attrEntryID.String(e.ID), attrDeliveries.Int64(e.Deliveries)}
	if len(j.matches) > 0 {
		names := make([]string, len(j.matches))
		for i, m := range j.matches {
			names[i] = m.Route.Name
		}
		attrs = append(attrs, attrRoutes.StringSlice(names))
	}
	tctx, span := r.deps.Tracer.Start(entryContext(ctx, j.msg), spanProcess,
		trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	j.trace = tctx
	v := r.processRoutes(ctx, j)
	j.trace = nil
	verdict := "ack"
	if !v.ack {
		verdict = "retry"
	}
	span.SetAttributes(attrVerdict.String(verdict))
	span.End()
	return v
}

// deliverTraced is deliver inside a process span when tracing is on: on
// ordered routes each route of an entry is its own task, delivered
// without process, and this span stands for the entry's delivery there.
func (r *Router) deliverTraced(ctx context.Context, j *job, m *rules.Match) (outcome, time.Duration) {
	if r.deps.Tracer == nil {
		return r.deliver(ctx, j, m)
	}
	e := &j.e
	tctx, span := r.deps.Tracer.Start(entryContext(ctx, j.msg), spanProcess, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attrStream.String(e.Stream), attrEntryID.String(e.ID), attrDeliveries.Int64(e.Deliveries),
			attrRoutes.StringSlice([]string{m.Route.Name})))
	j.trace = tctx
	o, wait := r.deliver(ctx, j, m)
	j.trace = nil
	verdict := "ack"
	if o == transient || o == unavailable {
		verdict = "retry"
	}
	span.SetAttributes(attrVerdict.String(verdict))
	span.End()
	return o, wait
}

// entryContext returns ctx carrying msg's trace context as the remote
// parent, or ctx itself when msg has none or a malformed one (the
// message span then starts a trace of its own).
func entryContext(ctx context.Context, msg *rules.Message) context.Context {
	if msg == nil || msg.TraceParent == "" {
		return ctx
	}
	carrier := propagation.MapCarrier{"traceparent": msg.TraceParent}
	if msg.TraceState != "" {
		carrier["tracestate"] = msg.TraceState
	}
	return propagation.TraceContext{}.Extract(ctx, carrier)
}

// startAttempt starts the span of one dispatch attempt, a child of the
// message's span (or of the entry's trace context on paths without one),
// and makes req carry the span's context as traceparent/tracestate, so
// the service's spans join the trace.
func (r *Router) startAttempt(j *job, req *Request, ep *balancer.Endpoint, service string) trace.Span {
	parent := j.trace
	if parent == nil {
		parent = entryContext(context.Background(), j.msg)
	}
	_, span := r.deps.Tracer.Start(parent, spanDispatch, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attrRoute.String(req.Route), attrService.String(service), attrInstance.String(ep.Addr()),
			attrAttempt.Int(req.Attempt), attrMethod.String(req.Method), attrPath.String(req.Path),
		))
	if sc := span.SpanContext(); sc.IsValid() {
		req.TraceParent = traceParent(sc)
		req.TraceState = sc.TraceState().String()
	}
	return span
}

// endAttempt records an attempt's answer on its span and ends it.
func endAttempt(span trace.Span, a attemptResult) {
	if a.res.Status != 0 {
		span.SetAttributes(attrStatus.Int(a.res.Status))
	}
	span.SetAttributes(attrOutcome.String(outcomeLabel(a.class)))
	if a.class != delivered {
		span.SetStatus(codes.Error, a.errText())
	}
	span.End()
}

// traceParent renders sc as a W3C traceparent header value (version 00).
func traceParent(sc trace.SpanContext) string {
	tid, sid := sc.TraceID(), sc.SpanID()
	b := make([]byte, 0, 55)
	b = append(b, "00-"...)
	b = append(b, tid.String()...)
	b = append(b, '-')
	b = append(b, sid.String()...)
	b = append(b, '-')
	if f := sc.TraceFlags(); f < 0x10 {
		b = append(b, '0')
	}
	b = strconv.AppendUint(b, uint64(sc.TraceFlags()), 16)
	return string(b)
}
