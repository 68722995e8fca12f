package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const e2eRules = `
routes:
  - name: eu-big-orders
    streams: [orders]
    match: 'headers.type == "order.created" && body.total > 1000 && body.region == "eu"'
    priority: 100
    service: orders
    tags: [priority]
    path_expr: '"/orders/" + body.id'
  - name: orders-std
    streams: [orders]
    match: 'headers.type == "order.created"'
    service: orders
    path: /orders
  - name: refunds
    streams: [orders]
    match: 'headers.type == "order.refund"'
    service: payments
    path: /refunds
    retries: 1
default:
  action: dlq
`

func TestEndToEndRoutesByContent(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	prio := h.backend("orders", "orders-prio", "priority")
	std := h.backend("orders", "orders-std")
	h.start([]string{"orders"}, "")

	big := h.publish("orders", "type", "order.created", "payload", `{"id":"o-1","total":1500,"region":"eu"}`, "tenant", "acme")
	small := h.publish("orders", "type", "order.created", "payload", `{"id":"o-2","total":10,"region":"us"}`, "correlation_id", "corr-2")

	// The small order may go to either instance (its route has no tag):
	// which one depends on whether it is dispatched before or after the
	// big one, as they are processed concurrently.
	h.waitFor("both delivered", 5*time.Second, func() error {
		if prio.count()+std.count() != 2 || !receivedID(prio, big) || !(receivedID(prio, small) || receivedID(std, small)) {
			return fmt.Errorf("prio=%d std=%d", prio.count(), std.count())
		}
		return nil
	})
	var got received
	for _, r := range prio.received() {
		if r.Header.Get("X-Message-Id") == big {
			got = r
		}
	}
	want := map[string]string{
		"Content-Type": "application/json", "X-Message-Id": big, "X-Stream": "orders",
		"X-Route": "eu-big-orders", "X-Correlation-Id": big, "Idempotency-Key": "orders/" + big + "/eu-big-orders",
		"X-Delivery-Attempt": "1", "X-Msg-Tenant": "acme", "X-Msg-Type": "order.created",
	}
	for k, v := range want {
		if g := got.Header.Get(k); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if got.Path != "/orders/o-1" || got.Method != "POST" || got.Body != `{"id":"o-1","total":1500,"region":"eu"}` {
		t.Errorf("priority request = %s %s %q", got.Method, got.Path, got.Body)
	}
	// The untagged instance may also take the small order only; the big
	// one needs the priority tag.
	for _, r := range std.received() {
		if r.Header.Get("X-Message-Id") == big {
			t.Errorf("untagged instance got the priority message")
		}
	}
	for _, r := range append(std.received(), prio.received()...) {
		if r.Header.Get("X-Message-Id") == small && r.Header.Get("X-Correlation-Id") != "corr-2" {
			t.Errorf("correlation id = %q, want corr-2", r.Header.Get("X-Correlation-Id"))
		}
	}
	h.waitAcked(5*time.Second, "orders")
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries, want 0", len(d))
	}
	metrics := h.get("/metrics")
	for _, want := range []string{
		`gateway_messages_consumed_total{stream="orders"} 2`,
		`gateway_messages_acked_total{stream="orders"} 2`,
		`gateway_route_matches_total{route="eu-big-orders"} 1`,
		`gateway_dispatch_total{outcome="delivered",service="orders"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func TestEndToEndDeadLetters(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	orders := h.backend("orders", "orders-1")
	pay := h.backend("payments", "payments-1")
	pay.status.Store(404)
	h.start([]string{"orders"}, "")

	unmatched := h.publish("orders", "type", "order.unknown", "payload", `{}`)
	refund := h.publish("orders", "type", "order.refund", "payload", `{"id":"r-1"}`)
	notJSON := h.publish("orders", "type", "order.created", "payload", "\x00\xffnot json")

	h.waitFor("dead letters", 5*time.Second, func() error {
		if n := len(h.dlq()); n != 2 {
			return fmt.Errorf("dlq has %d", n)
		}
		return nil
	})
	byID := map[string]map[string]any{}
	for _, m := range h.dlq() {
		byID[m.Values["dlq_id"].(string)] = m.Values
	}
	cases := []struct {
		id, reason, route, status string
	}{
		{unmatched, "no_route", "", ""},
		{refund, "permanent_error", "refunds", "404"},
	}
	for _, c := range cases {
		v := byID[c.id]
		if v == nil {
			t.Errorf("entry %s not dead-lettered", c.id)
			continue
		}
		if v["dlq_reason"] != c.reason || v["dlq_route"] != c.route || v["dlq_status"] != c.status || v["dlq_stream"] != "orders" {
			t.Errorf("dlq entry %s = %v, want reason %s route %q status %q", c.id, v, c.reason, c.route, c.status)
		}
		for _, k := range []string{"type", "payload", "dlq_error", "dlq_attempts", "dlq_at"} {
			if _, ok := v[k]; !ok {
				t.Errorf("dlq entry %s lacks field %s", c.id, k)
			}
		}
	}
	// A non-JSON payload is still routable on headers (body is nil), so
	// the catch-all order route takes it; it must not stop the consumer.
	h.waitFor("non-JSON delivered", 5*time.Second, func() error {
		for _, r := range orders.received() {
			if r.Header.Get("X-Message-Id") == notJSON {
				return nil
			}
		}
		return fmt.Errorf("not delivered")
	})
	h.waitAcked(5*time.Second, "orders")
}

func TestEndToEndTransientStaysPendingThenDLQ(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	pay := h.backend("payments", "payments-1")
	pay.status.Store(503)
	h.start([]string{"orders"}, "")

	id := h.publish("orders", "type", "order.refund", "payload", `{"id":"r-9"}`)
	// First delivery: 1 attempt + 1 retry, both 503: left pending, not dead.
	h.waitFor("two attempts", 5*time.Second, func() error {
		if n := pay.count(); n < 2 {
			return fmt.Errorf("attempts = %d", n)
		}
		return nil
	})
	if n := h.pending("orders"); n != 1 {
		t.Fatalf("pending after first delivery = %d, want 1", n)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("dlq after first delivery = %d entries, want 0", len(d))
	}
	// Redelivered until max_deliveries (3), then dead-lettered.
	h.waitFor("max_deliveries dead letter", 30*time.Second, func() error {
		d := h.dlq()
		if len(d) != 1 {
			return fmt.Errorf("dlq has %d", len(d))
		}
		v := d[0].Values
		if v["dlq_reason"] != "max_deliveries" || v["dlq_id"] != id || v["dlq_status"] != "503" || v["dlq_attempts"] != "3" {
			return fmt.Errorf("dlq entry = %v", v)
		}
		return nil
	})
	attempts := map[string]bool{}
	for _, r := range pay.received() {
		attempts[r.Header.Get("X-Delivery-Attempt")] = true
		if r.Header.Get("Idempotency-Key") != "orders/"+id+"/refunds" {
			t.Errorf("idempotency key = %q", r.Header.Get("Idempotency-Key"))
		}
	}
	if pay.count() != 6 || len(attempts) != 6 {
		t.Errorf("attempts = %d with distinct X-Delivery-Attempt %v, want 6 distinct", pay.count(), attempts)
	}
	h.waitFor("acked after dead-lettering", 5*time.Second, func() error {
		if n := h.pending("orders"); n != 0 {
			return fmt.Errorf("pending = %d", n)
		}
		return nil
	})
}

func TestEndToEndFailingCheckReceivesNothing(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	good := h.backend("orders", "orders-good")
	bad := h.backend("orders", "orders-bad")
	h.setHealth(bad, false)
	h.start([]string{"orders"}, "")
	const n = 40
	for i := 0; i < n; i++ {
		h.publish("orders", "type", "order.created", "payload", fmt.Sprintf(`{"id":"o-%d","total":1}`, i))
	}
	h.waitFor("all delivered", 10*time.Second, func() error {
		if good.count() != n {
			return fmt.Errorf("good got %d", good.count())
		}
		return nil
	})
	if bad.count() != 0 {
		t.Errorf("instance failing its check got %d requests", bad.count())
	}
	// The check passes again: the instance gets traffic again. At this
	// trickle (one message at a time) p2c between two instances favours the
	// warm one until the newcomer's slow start (15 s) and estimate decay
	// (tau 10 s) let it in; under load in-flight counts spread traffic sooner.
	h.setHealth(bad, true)
	h.waitFor("recovered instance gets traffic", 30*time.Second, func() error {
		h.publish("orders", "type", "order.created", "payload", `{"id":"x","total":1}`)
		if bad.count() == 0 {
			return fmt.Errorf("still nothing; instances: %s", h.get("/instances"))
		}
		return nil
	})
}

func TestEndToEndRequestReply(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	h.backend("orders", "orders-1")
	h.start([]string{"orders"}, "")
	id := h.publish("orders", "type", "order.created", "payload", `{"id":"q","total":1}`,
		"reply_to", "replies:client-1", "correlation_id", "c-77")
	h.waitFor("reply", 5*time.Second, func() error {
		msgs, err := h.rdb.XRange(context.Background(), "replies:client-1", "-", "+").Result()
		if err != nil || len(msgs) != 1 {
			return fmt.Errorf("replies = %d, %v", len(msgs), err)
		}
		v := msgs[0].Values
		if v["correlation_id"] != "c-77" || v["status"] != "200" || v["message_id"] != id ||
			v["route"] != "orders-std" || v["payload"] != `{"handled_by":"orders-1"}` || v["content_type"] != "application/json" {
			return fmt.Errorf("reply = %v", v)
		}
		return nil
	})
}

func TestEndToEndNoInstanceWaits(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	h.backend("orders", "orders-1")
	h.start([]string{"orders"}, "")
	// payments has no instance at all: the refund must wait, not die.
	h.publish("orders", "type", "order.refund", "payload", `{"id":"r-1"}`)
	// Wait until the message has been parked and claimed back several
	// times (each would have been a delivery without parking).
	h.waitFor("parked repeatedly", 15*time.Second, func() error {
		m := h.get("/metrics")
		for _, n := range []string{"3", "4", "5", "6", "7", "8", "9"} {
			if strings.Contains(m, `gateway_parked_total{reason="no_instance",service="payments"} `+n) {
				return nil
			}
		}
		return fmt.Errorf("not parked 3 times yet")
	})
	if d := h.dlq(); len(d) != 0 {
		t.Fatalf("message for a service without instances was dead-lettered: %v", d[0].Values)
	}
	pay := h.backend("payments", "payments-1")
	h.waitFor("delivered once an instance appears", 10*time.Second, func() error {
		if pay.count() != 1 {
			return fmt.Errorf("payments got %d", pay.count())
		}
		return nil
	})
	if a := pay.received()[0].Header.Get("X-Delivery-Attempt"); a != "1" {
		t.Errorf("waiting counted as attempts: X-Delivery-Attempt = %s", a)
	}
}

func TestAdminEndpoints(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	h.backend("orders", "orders-1")
	h.start([]string{"orders"}, "")
	for _, path := range []string{"/healthz", "/rules", "/instances", "/metrics"} {
		if body := h.get(path); body == "" {
			t.Errorf("GET %s: empty", path)
		}
	}
	// Lag and pending come from XINFO GROUPS every 5 s; everything is read
	// and acked here, so both settle at 0.
	h.publish("orders", "type", "order.created", "payload", `{"id":"1","total":1}`)
	h.waitFor("lag and pending metrics", 12*time.Second, func() error {
		m := h.get("/metrics")
		for _, want := range []string{`gateway_consumer_lag{stream="orders"} 0`, `gateway_pending_messages{stream="orders"} 0`,
			`gateway_instances{service="orders",state="healthy"} 1`, `gateway_rules_active_routes 3`,
			`gateway_discovery_staleness_seconds{service="orders"}`} {
			if !strings.Contains(m, want) {
				return fmt.Errorf("metrics lack %q", want)
			}
		}
		return nil
	})
	rulesJSON := h.get("/rules")
	for _, want := range []string{`"version"`, `"loaded_at"`, `"eu-big-orders"`, `"last_error"`} {
		if !strings.Contains(rulesJSON, want) {
			t.Errorf("/rules lacks %s: %s", want, rulesJSON)
		}
	}
	resp, err := http.Post("http://"+h.admin+"/explain", "application/json",
		strings.NewReader(`{"stream":"orders","fields":{"type":"order.created","payload":"{\"id\":\"9\",\"total\":5000,\"region\":\"eu\"}"}}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"eu-big-orders"`) || !strings.Contains(string(b), `"/orders/9"`) {
		t.Errorf("POST /explain = %d %s", resp.StatusCode, b)
	}
}

func (h *harness) get(path string) string {
	h.t.Helper()
	resp, err := http.Get("http://" + h.admin + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		h.t.Fatalf("GET %s = %d: %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// receivedID reports whether b received the message with entry ID id.
func receivedID(b *backend, id string) bool {
	for _, r := range b.received() {
		if r.Header.Get("X-Message-Id") == id {
			return true
		}
	}
	return false
}
