package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// seedDLQ writes dead letters as the gateway does: original fields plus
// the dlq_* fields.
func (h *harness) seedDLQ(n int, reason, stream string) {
	h.t.Helper()
	for i := 0; i < n; i++ {
		h.publish("gateway:dlq", "type", "order.created", "payload", fmt.Sprintf(`{"i":%d}`, i), "tenant", "acme",
			"dlq_reason", reason, "dlq_stream", stream, "dlq_id", fmt.Sprintf("1-%d", i), "dlq_route", "r",
			"dlq_status", "", "dlq_error", "x", "dlq_attempts", "1", "dlq_at", "1")
	}
}

func TestDLQReplay(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	cfg, _ := h.writeConfig("gateway.yaml", "replayer", []string{"orders"}, "")
	h.seedDLQ(3, "no_route", "orders")
	h.seedDLQ(2, "schema", "payments")
	ctx := context.Background()

	replay := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"dlq", "replay", "--config", cfg, "--rate", "0"}, args...), &out, &errb); code != 0 {
			t.Fatalf("dlq replay %v: exit %d: %s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}

	// --reason filters; --limit bounds.
	if out := replay("--reason", "no_route", "--limit", "2"); !strings.Contains(out, "replayed 2") {
		t.Errorf("replay --reason no_route --limit 2 printed %q", out)
	}
	entries, _ := h.rdb.XRange(ctx, "orders", "-", "+").Result()
	if len(entries) != 2 {
		t.Fatalf("orders has %d entries after replay, want 2", len(entries))
	}
	for _, e := range entries {
		if e.Values["tenant"] != "acme" || e.Values["type"] != "order.created" || e.Values["payload"] == nil {
			t.Errorf("replayed fields = %v, want the originals", e.Values)
		}
		for k := range e.Values {
			if strings.HasPrefix(k, "dlq_") {
				t.Errorf("replayed entry keeps %s", k)
			}
		}
	}
	if n := len(h.dlq()); n != 3 {
		t.Errorf("dlq has %d entries, want 3 (1 no_route + 2 schema left)", n)
	}

	// --to sends everything left elsewhere and empties the DLQ.
	if out := replay("--to", "retry"); !strings.Contains(out, "replayed 3") {
		t.Errorf("replay --to retry printed %q", out)
	}
	if n, _ := h.rdb.XLen(ctx, "retry").Result(); n != 3 {
		t.Errorf("retry stream has %d entries, want 3", n)
	}
	if n := len(h.dlq()); n != 0 {
		t.Errorf("dlq has %d entries after replaying all, want 0", n)
	}
}

func TestDLQReplayKeepsEntriesWhenTheWriteFails(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	cfg, _ := h.writeConfig("gateway.yaml", "replayer", []string{"orders"}, "")
	h.seedDLQ(2, "no_route", "orders")
	// The target key holds a string: XADD fails with WRONGTYPE.
	if err := h.rdb.Set(context.Background(), "blocked", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"dlq", "replay", "--config", cfg, "--rate", "0", "--to", "blocked"}, &out, &errb)
	if code == 0 || !strings.Contains(out.String(), "failed 2") {
		t.Errorf("replay onto a non-stream: exit %d, output %q; want a failure for both", code, out.String())
	}
	if n := len(h.dlq()); n != 2 {
		t.Errorf("dlq has %d entries, want both kept", n)
	}
}

// TestDLQReplayGoesOnlyToTheDeadLetteredRoute: a fan-out message (audit,
// billing) whose billing route was dead-lettered (404) is replayed once
// billing is fixed. The replay reaches billing only, with the original
// X-Message-Id and Idempotency-Key (events/ORIGINAL_ID/billing); audit,
// which had its copy, gets nothing more; no reserved replay field is
// forwarded as an X-Msg header.
func TestDLQReplayGoesOnlyToTheDeadLetteredRoute(t *testing.T) {
	h := newHarness(t)
	h.writeRules(fanOutRules)
	audit := h.backend("audit", "audit-1")
	billing := h.backend("billing", "billing-1")
	billing.status.Store(404)
	h.start([]string{"events"}, "")

	id := h.publish("events", "type", "invoice", "tenant", "acme", "payload", `{"n":1}`)
	h.waitAcked(10*time.Second, "events")
	if d := h.dlq(); len(d) != 1 || d[0].Values["dlq_route"] != "billing" {
		t.Fatalf("dlq = %v, want one entry for route billing", d)
	}
	billing.status.Store(200)

	cfg, _ := h.writeConfig("replay.yaml", "replayer", []string{"events"}, "")
	var out, errb bytes.Buffer
	if code := run([]string{"dlq", "replay", "--config", cfg, "--rate", "0"}, &out, &errb); code != 0 {
		t.Fatalf("dlq replay: exit %d: %s%s", code, out.String(), errb.String())
	}
	h.waitFor("replay delivered to billing", 10*time.Second, func() error {
		if n := billing.count(); n != 2 {
			return fmt.Errorf("billing received %d requests, want 2", n)
		}
		return nil
	})
	h.waitAcked(10*time.Second, "events")
	if n := audit.count(); n != 1 {
		t.Errorf("audit received %d requests, want 1 (the replay is for billing only)", n)
	}
	got := billing.received()
	first, replay := got[0].Header, got[1].Header
	wantKey := "events/" + id + "/billing"
	if k := replay.Get("Idempotency-Key"); k != wantKey || first.Get("Idempotency-Key") != wantKey {
		t.Errorf("Idempotency-Key: first %q, replay %q; want %q both", first.Get("Idempotency-Key"), k, wantKey)
	}
	if replay.Get("X-Message-Id") != id || replay.Get("X-Stream") != "events" || replay.Get("X-Msg-Tenant") != "acme" {
		t.Errorf("replay headers X-Message-Id %q X-Stream %q X-Msg-Tenant %q; want %q events acme",
			replay.Get("X-Message-Id"), replay.Get("X-Stream"), replay.Get("X-Msg-Tenant"), id)
	}
	for k := range replay {
		if strings.HasPrefix(strings.ToLower(k), "x-msg-gateway") {
			t.Errorf("reserved field forwarded as header %s", k)
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries after the replay was delivered, want 0", len(d))
	}
}
