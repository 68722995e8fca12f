package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Hostile and malformed stream entries, end to end: each reaches a final
// outcome (delivered, or dead-lettered with a reason), none stays pending,
// nothing invalid reaches a service as a header, and the gateway stays
// ready throughout.

const badInputRules = `
routes:
  - name: calc
    match: 'headers.type == "calc" && body.total > 1000'
    service: orders
    path: /calc
  - name: orders
    match: 'headers.type == "order.created"'
    service: orders
    path: /orders
default:
  action: dlq
`

func TestEndToEndBadInputReachesFinalOutcome(t *testing.T) {
	h := newHarness(t)
	h.writeRules(badInputRules)
	b := h.backend("orders", "orders-1")
	const maxPayload = 4096
	h.start([]string{"orders"}, fmt.Sprintf("  max_payload_bytes: %d", maxPayload))

	many := []string{"type", "order.created", "payload", "{}"}
	for i := 0; i < 1000; i++ {
		many = append(many, "f"+strconv.Itoa(i), strconv.Itoa(i))
	}
	longName := strings.Repeat("n", 10<<10)
	cases := []struct {
		name   string
		fields []string
		// want: "delivered", or the DLQ reason.
		want string
	}{
		{"non-JSON payload", []string{"type", "order.created", "payload", "not json {"}, "delivered"},
		{"binary payload", []string{"type", "order.created", "payload", "\x00\x01\xff\xfe\x80binary\x00"}, "delivered"},
		{"missing payload", []string{"type", "order.created"}, "delivered"},
		{"empty payload", []string{"type", "order.created", "payload", ""}, "delivered"},
		{"1000 fields", many, "delivered"},
		{"10 KB field name", []string{"type", "order.created", "payload", "{}", longName, "v"}, "delivered"},
		{"10 KB field value", []string{"type", "order.created", "payload", "{}", "big", strings.Repeat("v", 10<<10)}, "delivered"},
		{"invalid UTF-8 name and value", []string{"type", "order.created", "payload", "{\"a\":\"\xff\"}", "\xff\xfe", "\xc3\x28"}, "delivered"},
		{"CRLF in attribute value", []string{"type", "order.created", "payload", "{}", "inject", "x\r\nX-Evil: 1"}, "delivered"},
		{"CRLF in attribute name", []string{"type", "order.created", "payload", "{}", "a\r\nX-Evil", "1"}, "delivered"},
		{"deeply nested JSON", []string{"type", "order.created", "payload", strings.Repeat("[", 2000) + strings.Repeat("]", 2000)}, "delivered"},
		{"expression runtime error", []string{"type", "calc", "payload", `{"total":"not a number"}`}, "no_route"},
		{"non-JSON where the rule reads body", []string{"type", "calc", "payload", "\xff\xfe"}, "no_route"},
		{"no attributes at all", []string{"payload", "{}"}, "no_route"},
		{"invalid UTF-8 type", []string{"type", "order.\xff", "payload", "{}"}, "no_route"},
		{"payload over max_payload_bytes", []string{"type", "order.created", "payload", strings.Repeat("x", maxPayload+1)}, "bad_message"},
		{"1 MiB payload over the limit", []string{"type", "order.created", "payload", strings.Repeat("y", 1<<20)}, "bad_message"},
	}
	ids := make([]string, len(cases))
	for i, tc := range cases {
		ids[i] = h.publish("orders", tc.fields...)
	}
	h.waitFor("every entry acked", 20*time.Second, func() error {
		if p := h.pending("orders"); p != 0 {
			return fmt.Errorf("pending %d", p)
		}
		info, err := h.rdb.XInfoGroups(context.Background(), "orders").Result()
		if err != nil || len(info) != 1 || info[0].LastDeliveredID != ids[len(ids)-1] {
			return fmt.Errorf("group not past the last entry yet: %+v %v", info, err)
		}
		return nil
	})
	delivered := map[string]received{}
	for _, r := range b.received() {
		delivered[r.Header.Get("X-Message-Id")] = r
	}
	dead := map[string]string{}
	for _, m := range h.dlq() {
		dead[fmt.Sprint(m.Values["dlq_id"])] = fmt.Sprint(m.Values["dlq_reason"])
	}
	rows := []string{}
	for i, tc := range cases {
		got := "lost"
		if _, ok := delivered[ids[i]]; ok {
			got = "delivered"
		}
		if reason, ok := dead[ids[i]]; ok {
			if got == "delivered" {
				got = "delivered+dlq:" + reason
			} else {
				got = reason
			}
		}
		rows = append(rows, fmt.Sprintf("%s=%s", tc.name, got))
		if got != tc.want {
			t.Errorf("%s (entry %s): outcome %s, want %s", tc.name, ids[i], got, tc.want)
		}
	}
	t.Logf("outcomes: %s", strings.Join(rows, "; "))

	for id, r := range delivered {
		if len(r.Body) > maxPayload {
			t.Errorf("entry %s: a %d-byte body reached the service (limit %d)", id, len(r.Body), maxPayload)
		}
		for name, vals := range r.Header {
			if strings.EqualFold(name, "X-Evil") {
				t.Errorf("entry %s: injected header %s: %q reached the service", id, name, vals)
			}
			for _, v := range vals {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Errorf("entry %s: header %s carries control bytes: %q", id, name, v)
				}
			}
		}
	}
	if r, ok := delivered[ids[4]]; ok && r.Header.Get("X-Msg-F999") != "999" {
		t.Errorf("1000 fields: X-Msg-F999 = %q, want 999", r.Header.Get("X-Msg-F999"))
	}
	if code, body := h.readyz(); code != 200 {
		t.Errorf("readyz after bad input = %d: %s", code, body)
	}
	metrics := h.get("/metrics")
	for _, want := range []string{`gateway_dlq_total{reason="bad_message"} 2`, `gateway_dlq_total{reason="no_route"} 4`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestEndToEndControlBytesInReservedFields: correlation_id and content_type
// are entry fields like any attribute, so a control byte in them must not
// cost the message: a strict HTTP server would answer 400 and the gateway
// would dead-letter it as permanent_error. The gateway falls back to the
// defaults (entry ID, application/octet-stream) instead.
func TestEndToEndControlBytesInReservedFields(t *testing.T) {
	h := newHarness(t)
	h.writeRules(badInputRules)
	b := h.backend("orders", "orders-1")
	h.start([]string{"orders"}, "")
	ids := []string{
		h.publish("orders", "type", "order.created", "payload", "{}", "correlation_id", "c\x01d"),
		h.publish("orders", "type", "order.created", "payload", "{}", "content_type", "text/plain\x7f"),
	}
	h.waitFor("entries acked", 10*time.Second, func() error {
		if p := h.pending("orders"); p != 0 || b.count()+len(h.dlq()) < len(ids) {
			return fmt.Errorf("pending %d, delivered %d, dlq %d", p, b.count(), len(h.dlq()))
		}
		return nil
	})
	for _, r := range b.received() {
		for _, name := range []string{"X-Correlation-Id", "Content-Type"} {
			if v := r.Header.Get(name); v == "" || strings.ContainsAny(v, "\x01\x7f") {
				t.Errorf("%s = %q, want a clean fallback", name, v)
			}
		}
	}
	for _, m := range h.dlq() {
		t.Errorf("entry %v dead-lettered: reason %v, status %v, error %v", m.Values["dlq_id"],
			m.Values["dlq_reason"], m.Values["dlq_status"], m.Values["dlq_error"])
	}
}

// TestEndToEndEvalErrorsCounted: a runtime expression error is a no-match
// for that route and is counted, in /rules (eval_errors) and in the
// registered metric gateway_rule_eval_errors_total{route}.
func TestEndToEndEvalErrorsCounted(t *testing.T) {
	h := newHarness(t)
	h.writeRules(badInputRules)
	h.backend("orders", "orders-1")
	h.start([]string{"orders"}, "")
	h.publish("orders", "type", "calc", "payload", `{"total":"not a number"}`)
	h.publish("orders", "type", "calc", "payload", `not json`)
	h.waitFor("both dead-lettered", 10*time.Second, func() error {
		if n := len(h.dlq()); n != 2 || h.pending("orders") != 0 {
			return fmt.Errorf("dlq %d, pending %d", n, h.pending("orders"))
		}
		return nil
	})
	var status struct {
		Routes []struct {
			Name       string `json:"name"`
			EvalErrors uint64 `json:"eval_errors"`
		} `json:"routes"`
	}
	if err := json.Unmarshal([]byte(h.get("/rules")), &status); err != nil {
		t.Fatal(err)
	}
	for _, r := range status.Routes {
		if r.Name == "calc" && r.EvalErrors == 0 {
			t.Errorf("/rules: route calc eval_errors = 0, want > 0")
		}
	}
	if m := h.get("/metrics"); !strings.Contains(m, `gateway_rule_eval_errors_total{route="calc"}`) {
		t.Errorf("/metrics lacks gateway_rule_eval_errors_total{route=\"calc\"}")
	}
}
