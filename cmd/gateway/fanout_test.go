package main

import (
	"fmt"
	"testing"
	"time"
)

// Fan-out: two routes of one message, audit (continue: true) and billing.
const fanOutRules = `
routes:
  - name: audit
    streams: [events]
    match: 'headers.type == "invoice"'
    service: audit
    path: /audit
    priority: 10
    continue: true
  - name: billing
    streams: [events]
    match: 'headers.type == "invoice"'
    service: billing
    path: /billing
default:
  action: dlq
`

// TestFanOutRedeliverySkipsSettledRoutes: when one route of a fan-out
// message fails transiently, the entry is redelivered, and the route that
// was already delivered is not sent again; the entry is acked once both
// are final.
func TestFanOutRedeliverySkipsSettledRoutes(t *testing.T) {
	h := newHarness(t)
	h.writeRules(fanOutRules)
	audit := h.backend("audit", "audit-1")
	billing := h.backend("billing", "billing-1")
	billing.status.Store(503)
	h.start([]string{"events"}, "")

	id := h.publish("events", "type", "invoice", "payload", `{"n":1}`)
	h.waitFor("first delivery tried both routes", 5*time.Second, func() error {
		if audit.count() != 1 || billing.count() < 1 {
			return fmt.Errorf("audit=%d billing=%d", audit.count(), billing.count())
		}
		return nil
	})
	if n := h.pending("events"); n != 1 {
		t.Fatalf("pending after a transient failure = %d, want 1", n)
	}
	billing.status.Store(200)
	h.waitFor("billing delivered on a redelivery", 15*time.Second, func() error {
		got := billing.received()
		if len(got) < 2 || got[len(got)-1].Header.Get("X-Message-Id") != id {
			return fmt.Errorf("billing received %d", len(got))
		}
		return nil
	})
	h.waitAcked(10*time.Second, "events")
	if n := audit.count(); n != 1 {
		t.Errorf("audit received %d requests, want 1: the delivered route was sent again on redelivery", n)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries, want 0", len(d))
	}
}

// TestFanOutRedeliveryDeadLettersARouteOnce: a route answered with a
// permanent 4xx is dead-lettered once, not again on each redelivery the
// other (transiently failing) route causes.
func TestFanOutRedeliveryDeadLettersARouteOnce(t *testing.T) {
	h := newHarness(t)
	h.writeRules(fanOutRules)
	audit := h.backend("audit", "audit-1")
	audit.status.Store(404)
	billing := h.backend("billing", "billing-1")
	billing.status.Store(503)
	h.start([]string{"events"}, "")

	id := h.publish("events", "type", "invoice", "payload", `{"n":2}`)
	// Two deliveries fail for billing, then it recovers.
	h.waitFor("billing failed on two deliveries", 15*time.Second, func() error {
		if n := billing.count(); n < 2 {
			return fmt.Errorf("billing attempts = %d", n)
		}
		return nil
	})
	billing.status.Store(200)
	h.waitAcked(15*time.Second, "events")
	if n := audit.count(); n != 1 {
		t.Errorf("audit received %d requests, want 1", n)
	}
	d := h.dlq()
	if len(d) != 1 {
		t.Fatalf("dlq has %d entries, want exactly 1 (route audit)", len(d))
	}
	if v := d[0].Values; v["dlq_route"] != "audit" || v["dlq_reason"] != "permanent_error" || v["dlq_id"] != id {
		t.Errorf("dlq entry = %v", v)
	}
}
