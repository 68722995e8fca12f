package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// failureRules has one route per final outcome, each with on_failure, and
// a fan-out pair (kind "fan": ok delivers, perm dead-letters).
const failureRules = `
routes:
  - name: ok
    match: 'headers.kind in ["ok", "fan"]'
    service: good
    path: /ok
    continue: true
    on_failure: comp
  - name: perm
    match: 'headers.kind in ["perm", "fan"]'
    service: rejecting
    path: /perm
    on_failure: comp
  - name: flaky
    match: 'headers.kind == "flaky"'
    service: broken
    on_failure: comp
  - name: strict
    match: 'headers.kind == "schema"'
    service: good
    schema: id.json
    on_failure: comp
default:
  action: dlq
`

// streamEntries returns every entry of stream as field maps.
func (h *harness) streamEntries(stream string) []map[string]any {
	h.t.Helper()
	msgs, err := h.rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		h.t.Fatalf("xrange %s: %v", stream, err)
	}
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		out[i] = m.Values
	}
	return out
}

func (h *harness) startFailureGateway() {
	h.t.Helper()
	h.writeRules(failureRules)
	if err := os.WriteFile(filepath.Join(h.dir, "id.json"), []byte(`{"type":"object","required":["id"]}`), 0o644); err != nil {
		h.t.Fatal(err)
	}
	h.backend("good", "good-1")
	h.backend("rejecting", "rejecting-1").status.Store(404)
	h.backend("broken", "broken-1").status.Store(503)
	h.start([]string{"orders"}, "")
}

// TestEndToEndRepliesForEveryOutcome: a requester gets a reply for every
// final outcome of every route its message took (delivered, permanent
// error, max_deliveries, schema, and no route at all), one per route on
// fan-out.
func TestEndToEndRepliesForEveryOutcome(t *testing.T) {
	h := newHarness(t)
	h.startFailureGateway()
	ids := map[string]string{}
	for _, kind := range []string{"ok", "perm", "flaky", "schema", "fan", "none"} {
		ids[kind] = h.publish("orders", "kind", kind, "payload", `{"total":1}`,
			"reply_to", "replies:"+kind, "correlation_id", "c-"+kind)
	}
	type want struct{ route, outcome, status, reason string }
	cases := []struct {
		kind string
		want []want
	}{
		{"ok", []want{{"ok", "delivered", "200", ""}}},
		{"perm", []want{{"perm", "dead_lettered", "404", "permanent_error"}}},
		{"flaky", []want{{"flaky", "dead_lettered", "503", "max_deliveries"}}},
		{"schema", []want{{"strict", "dead_lettered", "", "schema"}}},
		{"fan", []want{{"ok", "delivered", "200", ""}, {"perm", "dead_lettered", "404", "permanent_error"}}},
		{"none", []want{{"", "dead_lettered", "", "no_route"}}},
	}
	// flaky needs max_deliveries (3) deliveries, 1 s and 2 s apart.
	h.waitAcked(30*time.Second, "orders")
	for _, c := range cases {
		got := h.streamEntries("replies:" + c.kind)
		if len(got) != len(c.want) {
			t.Errorf("%s: %d replies %v, want %d", c.kind, len(got), got, len(c.want))
			continue
		}
		for i, w := range c.want {
			r := got[i]
			if r["route"] != w.route || r["outcome"] != w.outcome || r["status"] != w.status ||
				r["correlation_id"] != "c-"+c.kind || r["message_id"] != ids[c.kind] {
				t.Errorf("%s reply %d = %v, want route %q outcome %s status %q", c.kind, i, r, w.route, w.outcome, w.status)
			}
			if w.outcome == "delivered" {
				if r["payload"] != `{"handled_by":"good-1"}` || r["content_type"] != "application/json" {
					t.Errorf("%s reply %d = %v, want the instance's answer", c.kind, i, r)
				}
				if _, ok := r["dlq_reason"]; ok {
					t.Errorf("%s reply %d has dlq_reason: %v", c.kind, i, r)
				}
				continue
			}
			if r["dlq_reason"] != w.reason || r["error"] == "" || r["payload"] != "" {
				t.Errorf("%s reply %d = %v, want dlq_reason %s, an error and no payload", c.kind, i, r, w.reason)
			}
		}
	}
}

// TestEndToEndOnFailureEvents: a permanent error, max_deliveries and a
// schema failure each write exactly one failure event to the route's
// on_failure stream, with the original fields and the failed_* fields; a
// delivered route writes none.
func TestEndToEndOnFailureEvents(t *testing.T) {
	h := newHarness(t)
	h.startFailureGateway()
	ids := map[string]string{}
	for _, kind := range []string{"ok", "perm", "flaky", "schema"} {
		ids[kind] = h.publish("orders", "kind", kind, "tenant", "acme", "payload", `{"total":1}`)
	}
	h.waitAcked(30*time.Second, "orders")
	events := h.streamEntries("comp")
	byID := map[string][]map[string]any{}
	for _, e := range events {
		id, _ := e["failed_id"].(string)
		byID[id] = append(byID[id], e)
	}
	cases := []struct{ kind, route, reason, status, errText string }{
		{"perm", "perm", "permanent_error", "404", "HTTP 404"},
		{"flaky", "flaky", "max_deliveries", "503", "HTTP 503"},
		{"schema", "strict", "schema", "", "schema validation failed: at '/': missing property 'id'"},
	}
	for _, c := range cases {
		got := byID[ids[c.kind]]
		if len(got) != 1 {
			t.Errorf("%s: %d failure events, want exactly 1: %v", c.kind, len(got), got)
			continue
		}
		e := got[0]
		wantFields := map[string]string{
			"kind": c.kind, "tenant": "acme", "payload": `{"total":1}`,
			"failed_route": c.route, "failed_stream": "orders", "failed_id": ids[c.kind],
			"failed_reason": c.reason, "failed_status": c.status, "failed_error": c.errText,
		}
		for k, v := range wantFields {
			if e[k] != v {
				t.Errorf("%s event %s = %q, want %q (event %v)", c.kind, k, e[k], v, e)
			}
		}
	}
	if n := len(byID[ids["ok"]]); n != 0 {
		t.Errorf("delivered message wrote %d failure events", n)
	}
	if len(events) != len(cases) {
		t.Errorf("%d failure events, want %d", len(events), len(cases))
	}
	if n := len(h.dlq()); n != len(cases) {
		t.Errorf("dlq has %d entries, want %d", n, len(cases))
	}
}
