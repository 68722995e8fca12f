package main

import (
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/testenv"
)

const tracingRules = `
routes:
  - name: bill
    streams: [orders]
    match: 'headers.type == "order.created"'
    service: billing
    path: /bill
  - name: flaky
    streams: [jobs]
    service: worker
    path: /work
    retries: 1
  - name: in-order
    streams: [events]
    service: seq
    path: /seq
    order_key: 'body.k'
`

// spanTree finds the process span of entry id and its dispatch children.
func spanTree(rcv *testenv.OTLP, id string, attempts int) (testenv.Span, []testenv.Span, error) {
	var msg testenv.Span
	var kids []testenv.Span
	spans := rcv.Spans()
	for _, s := range spans {
		if s.GetName() == "process" && s.Attrs()["messaging.message.id"] == id {
			msg = s
			break
		}
	}
	if msg.Span == nil {
		return msg, nil, fmt.Errorf("no process span for %s among %d spans", id, len(spans))
	}
	for _, s := range spans {
		if s.GetName() == "dispatch" && string(s.GetParentSpanId()) == string(msg.GetSpanId()) {
			kids = append(kids, s)
		}
	}
	if len(kids) < attempts {
		return msg, kids, fmt.Errorf("%d dispatch spans under %s's process span, want %d", len(kids), id, attempts)
	}
	return msg, kids, nil
}

// TestTracingEndToEnd runs the gateway against real Redis and Consul with
// tracing.otlp_endpoint pointing at an in-process OTLP/HTTP receiver.
func TestTracingEndToEnd(t *testing.T) {
	rcv := testenv.StartOTLP(t)
	h := newHarness(t)
	h.writeRules(tracingRules)
	billing := h.backend("billing", "billing-1")
	worker := h.backend("worker", "worker-1")
	worker.status.Store(503)
	seq := h.backend("seq", "seq-1")
	h.start([]string{"orders", "jobs", "events"}, "tracing: {otlp_endpoint: \""+rcv.URL+"\"}")

	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	id := h.publish("orders", "type", "order.created", "payload", `{"total":1}`,
		"traceparent", "00-"+traceID+"-"+parentID+"-01", "tracestate", "vendor=opaque")

	t.Run("message and attempt spans join the entry's trace", func(t *testing.T) {
		h.waitFor("billing request", 15*time.Second, func() error {
			if n := billing.count(); n != 1 {
				return fmt.Errorf("billing got %d requests", n)
			}
			return nil
		})
		var msg testenv.Span
		var kids []testenv.Span
		h.waitFor("spans exported", 20*time.Second, func() (err error) {
			msg, kids, err = spanTree(rcv, id, 1)
			return err
		})
		if got := hex.EncodeToString(msg.GetTraceId()); got != traceID {
			t.Errorf("process span trace ID %s, want the entry's %s", got, traceID)
		}
		if got := hex.EncodeToString(msg.GetParentSpanId()); got != parentID {
			t.Errorf("process span parent %s, want the entry's span %s", got, parentID)
		}
		if a := msg.Attrs(); a["messaging.destination.name"] != "orders" || a["gateway.routes"] != "bill" || a["gateway.verdict"] != "ack" {
			t.Errorf("process span attributes = %v", a)
		}
		if msg.Resource["service.name"] != "gateway" {
			t.Errorf("resource service.name = %q, want gateway", msg.Resource["service.name"])
		}
		a := kids[0].Attrs()
		want := map[string]string{"gateway.route": "bill", "gateway.service": "billing", "gateway.instance": billing.addr,
			"gateway.attempt": "1", "http.response.status_code": "200", "gateway.outcome": "delivered",
			"http.request.method": "POST", "url.path": "/bill"}
		for k, v := range want {
			if a[k] != v {
				t.Errorf("dispatch span %s = %q, want %q", k, a[k], v)
			}
		}
		hdr := billing.received()[0].Header
		wantTP := "00-" + traceID + "-" + hex.EncodeToString(kids[0].GetSpanId()) + "-01"
		if got := hdr.Get("Traceparent"); got != wantTP {
			t.Errorf("backend got traceparent %q, want %q (the attempt span)", got, wantTP)
		}
		if got := hdr.Get("Tracestate"); got != "vendor=opaque" {
			t.Errorf("backend got tracestate %q, want vendor=opaque", got)
		}
		for k := range hdr {
			if strings.HasPrefix(strings.ToLower(k), "x-msg-trace") {
				t.Errorf("backend got %s: trace context must not be an attribute", k)
			}
		}
	})

	t.Run("an ordered route has its message span too", func(t *testing.T) {
		const tid = "5bf92f3577b34da6a3ce929d0e0e4736"
		eid := h.publish("events", "payload", `{"k":"a"}`, "traceparent", "00-"+tid+"-00f067aa0ba902b7-01")
		var msg testenv.Span
		var kids []testenv.Span
		h.waitFor("spans exported", 20*time.Second, func() (err error) {
			msg, kids, err = spanTree(rcv, eid, 1)
			return err
		})
		if got := hex.EncodeToString(msg.GetTraceId()); got != tid {
			t.Errorf("process span trace ID %s, want the entry's %s", got, tid)
		}
		if a := kids[0].Attrs(); a["gateway.route"] != "in-order" || a["gateway.outcome"] != "delivered" {
			t.Errorf("dispatch span attributes = %v", a)
		}
		got := seq.received()
		want := "00-" + tid + "-" + hex.EncodeToString(kids[0].GetSpanId()) + "-01"
		if len(got) != 1 || got[0].Header.Get("Traceparent") != want {
			t.Errorf("seq got %d requests, want 1 with traceparent %q", len(got), want)
		}
	})

	t.Run("a retry is a second attempt span", func(t *testing.T) {
		jid := h.publish("jobs", "payload", "{}")
		var msg testenv.Span
		var kids []testenv.Span
		h.waitFor("spans exported", 20*time.Second, func() (err error) {
			msg, kids, err = spanTree(rcv, jid, 2)
			return err
		})
		if msg.GetParentSpanId() != nil {
			t.Errorf("process span of an entry without traceparent has parent %x, want a root", msg.GetParentSpanId())
		}
		for i, k := range kids[:2] {
			a := k.Attrs()
			if a["gateway.attempt"] != fmt.Sprint(i+1) || a["http.response.status_code"] != "503" || a["gateway.outcome"] != "transient" {
				t.Errorf("attempt span %d attributes = %v, want attempt %d, 503, transient", i+1, a, i+1)
			}
		}
		got := worker.received()
		if len(got) < 2 {
			t.Fatalf("worker got %d requests, want 2", len(got))
		}
		for i := range 2 {
			want := "00-" + hex.EncodeToString(msg.GetTraceId()) + "-" + hex.EncodeToString(kids[i].GetSpanId()) + "-01"
			if tp := got[i].Header.Get("Traceparent"); tp != want {
				t.Errorf("attempt %d sent traceparent %q, want %q", i+1, tp, want)
			}
		}
	})
}

// TestTraceContextForwardedTracingOff: with tracing off (the default) the
// entry's traceparent and tracestate reach the service unchanged as the
// standard headers; a malformed traceparent is not forwarded, nor its
// tracestate, and both count as dropped headers.
func TestTraceContextForwardedTracingOff(t *testing.T) {
	h := newHarness(t)
	h.writeRules(tracingRules)
	billing := h.backend("billing", "billing-1")
	h.start([]string{"orders"}, "")
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	good := h.publish("orders", "type", "order.created", "payload", "{}", "traceparent", tp, "tracestate", "vendor=opaque")
	bad := h.publish("orders", "type", "order.created", "payload", "{}", "traceparent", "00-not-a-trace-01", "tracestate", "vendor=x")
	h.waitFor("both delivered", 15*time.Second, func() error {
		if n := billing.count(); n != 2 {
			return fmt.Errorf("billing got %d requests", n)
		}
		return nil
	})
	want := map[string][2]string{good: {tp, "vendor=opaque"}, bad: {"", ""}}
	for _, r := range billing.received() {
		id := r.Header.Get("X-Message-Id")
		if got := [2]string{r.Header.Get("Traceparent"), r.Header.Get("Tracestate")}; got != want[id] {
			t.Errorf("entry %s: traceparent, tracestate = %q, want %q", id, got, want[id])
		}
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-msg-trace") {
				t.Errorf("entry %s has %s: trace context must not be an attribute", id, k)
			}
		}
	}
	if got := h.metricValue("gateway_dropped_headers_total"); got != 2 {
		t.Errorf("gateway_dropped_headers_total = %v, want 2 (the malformed traceparent and its tracestate)", got)
	}
}
