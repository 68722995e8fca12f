package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
  - name: badpath
    match: 'headers.kind == "badpath"'
    service: good
    path_expr: '"/x/" + body.nested.id'
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

// writeFailureRules writes failureRules and the schema it names.
func (h *harness) writeFailureRules() {
	h.t.Helper()
	h.writeRules(failureRules)
	if err := os.WriteFile(filepath.Join(h.dir, "id.json"), []byte(`{"type":"object","required":["id"]}`), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) startFailureGateway() {
	h.t.Helper()
	h.writeFailureRules()
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

// TestEndToEndOnFailureEvents: a permanent error, max_deliveries, a schema
// failure and a bad message (path_expr fails) each write exactly one failure event to the route's
// on_failure stream, with the original fields and the failed_* fields; a
// delivered route writes none.
func TestEndToEndOnFailureEvents(t *testing.T) {
	h := newHarness(t)
	h.startFailureGateway()
	ids := map[string]string{}
	for _, kind := range []string{"ok", "perm", "flaky", "schema", "badpath"} {
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
		{"badpath", "badpath", "bad_message", "", "path_expr failed: cannot fetch id from <nil> (1:21)"},
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

// TestProcessKill9BetweenFailureWritesAndAck kills a gateway process with
// SIGKILL after it wrote a dead-lettered message's failure event and dead
// letter but before its XACK. To hold it there for real, the gateway's
// Redis user may do everything but XACK (an ACL), so its ack keeps failing
// and retrying; no test hook is compiled into the product. A new process
// with XACK allowed redelivers the entry: the event may be written twice,
// never zero times, and the message ends acked, in the DLQ.
func TestProcessKill9BetweenFailureWritesAndAck(t *testing.T) {
	h := newHarness(t)
	h.writeFailureRules()
	h.backend("rejecting", "rejecting-1").status.Store(404)
	ctx := context.Background()
	acl := func(rules ...any) {
		t.Helper()
		args := append([]any{"ACL", "SETUSER", "gw", "on", ">gw-secret", "~*", "&*", "+@all"}, rules...)
		if err := h.rdb.Do(ctx, args...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	acl("-xack")
	h.env = []string{"GATEWAY_REDIS_USERNAME=gw", "GATEWAY_REDIS_PASSWORD=gw-secret"}
	gw := h.spawn("gw-1", []string{"orders"}, "")

	id := h.publish("orders", "kind", "perm", "payload", `{"n":1}`)
	eventsFor := func() int {
		n := 0
		for _, e := range h.streamEntries("comp") {
			if e["failed_id"] == id {
				n++
			}
		}
		return n
	}
	h.waitFor("failure event and dead letter written", 10*time.Second, func() error {
		if eventsFor() == 0 || len(h.dlq()) == 0 {
			return fmt.Errorf("events %d, dead letters %d", eventsFor(), len(h.dlq()))
		}
		return nil
	})
	if n := h.pending("orders"); n != 1 {
		t.Fatalf("pending = %d before the kill, want 1 (the ack must not have happened)", n)
	}
	_ = gw.cmd.Process.Kill() // SIGKILL
	gw.wait(t, 5*time.Second)
	before := eventsFor()

	acl("+xack")
	h.spawn("gw-1", []string{"orders"}, "") // same consumer: re-reads its pending entry
	h.waitAcked(15*time.Second, "orders")
	after := eventsFor()
	if after < 1 {
		t.Fatalf("no failure event for %s after kill -9 and restart", id)
	}
	dl := 0
	for _, m := range h.dlq() {
		if m.Values["dlq_id"] == id {
			dl++
		}
	}
	if dl < 1 {
		t.Fatalf("message %s lost: not in the DLQ", id)
	}
	t.Logf("failure events for the message: %d before the kill, %d after the restart; dead letters: %d", before, after, dl)
}

// TestProcessFailureEventWriteFailsKeepsEntry: when the on_failure stream
// cannot be written (here: an ACL that lets the gateway only read it), the
// route is not final: no dead letter, no ack. Once the write works, the
// redelivery writes the event, then the dead letter, then acks.
func TestProcessFailureEventWriteFailsKeepsEntry(t *testing.T) {
	h := newHarness(t)
	h.writeFailureRules()
	h.backend("rejecting", "rejecting-1").status.Store(404)
	ctx := context.Background()
	if err := h.rdb.Do(ctx, "ACL", "SETUSER", "gw", "on", ">gw-secret", "resetkeys", "~orders", "~gateway:*", "%R~comp", "&*", "+@all").Err(); err != nil {
		t.Fatal(err)
	}
	h.env = []string{"GATEWAY_REDIS_USERNAME=gw", "GATEWAY_REDIS_PASSWORD=gw-secret"}
	gw := h.spawn("gw-1", []string{"orders"}, "")
	id := h.publish("orders", "kind", "perm", "payload", `{"n":1}`)
	h.waitFor("event write refused", 10*time.Second, func() error {
		if !strings.Contains(gw.log.String(), "failure event write failed") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	if n := len(h.dlq()); n != 0 {
		t.Fatalf("dead letter written although its failure event was not: %d", n)
	}
	if n := h.pending("orders"); n != 1 {
		t.Fatalf("pending = %d, want 1", n)
	}
	if err := h.rdb.Do(ctx, "ACL", "SETUSER", "gw", "~comp").Err(); err != nil {
		t.Fatal(err)
	}
	h.waitAcked(20*time.Second, "orders")
	events := h.streamEntries("comp")
	if len(events) != 1 || events[0]["failed_id"] != id || len(h.dlq()) != 1 {
		t.Errorf("after the ACL allows it: events %v, dead letters %d; want one of each for %s", events, len(h.dlq()), id)
	}
}
