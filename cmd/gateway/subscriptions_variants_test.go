package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSubscriptionRollingUpgrade: instances A (v1, no declaration) and B
// (v2, declares trail) of one service. Only B gets the subscription's
// messages; both keep getting the file route's. C (v3) declares trail
// with other content and gets what its own declaration matches.
func TestSubscriptionRollingUpgrade(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: audit-file
    streams: [orders]
    match: 'headers.type == "audit.file"'
    service: audit
    path: /file
default:
  action: dlq
`)
	a := h.backend("audit", "audit-a", "v1")
	b := h.backend("audit", "audit-b", "v2")
	c := h.backend("audit", "audit-c", "v3")
	h.start([]string{"orders"}, "")
	v2 := `{"stream":"orders","match":"headers.type == \"order.created\"","path":"/v2"}`
	v3 := `{"stream":"orders","match":"headers.type == \"order.shipped\"","path":"/v3"}`
	if err := h.declare(b, map[string]string{"gateway-sub-trail": v2}); err != nil {
		t.Fatal(err)
	}
	// pay reads a stream the gateway does not consume: by default the
	// allow-list is consumer.streams, so it is invalid.
	if err := h.declare(c, map[string]string{"gateway-sub-trail": v3, "gateway-sub-pay": `{"stream":"payments","match":"true"}`}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("both variants active", 5*time.Second, func() error {
		if r := h.activeRoutes(); !slices.Equal(r, []string{"audit/trail", "audit/trail"}) {
			return fmt.Errorf("active: %v", r)
		}
		return nil
	})
	if st := h.subscriptions(); len(st) != 3 || st[0].Route != "audit/pay" ||
		!strings.Contains(st[0].Error, `stream "payments" is not one subscriptions may read (consul.subscription_streams: orders)`) {
		t.Errorf("subscriptions = %+v, want audit/pay invalid for its stream", st)
	}
	const n = 60
	for i := 0; i < n; i++ {
		h.publish("orders", "type", "audit.file", "payload", "{}")
		h.publish("orders", "type", "order.created", "payload", "{}")
		h.publish("orders", "type", "order.shipped", "payload", "{}")
	}
	h.waitAcked(15*time.Second, "orders")
	paths := func(be *backend) map[string]int {
		out := map[string]int{}
		for _, r := range be.received() {
			out[r.Path]++
		}
		return out
	}
	pa, pb, pc := paths(a), paths(b), paths(c)
	t.Logf("A %v, B %v, C %v", pa, pb, pc)
	if pa["/v2"]+pa["/v3"] != 0 {
		t.Errorf("A (declares nothing) received subscription messages: %v", pa)
	}
	if pb["/v2"] != n || pb["/v3"] != 0 {
		t.Errorf("B received %v, want all %d order.created on /v2 and nothing of C's declaration", pb, n)
	}
	if pc["/v3"] != n || pc["/v2"] != 0 {
		t.Errorf("C received %v, want all %d order.shipped on /v3 and nothing of B's declaration", pc, n)
	}
	if pa["/file"]+pb["/file"]+pc["/file"] != n || pa["/file"] == 0 || pb["/file"] == 0 {
		t.Errorf("file route: A %d, B %d, C %d; want %d in all, A and B each some", pa["/file"], pb["/file"], pc["/file"], n)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries, want 0", len(d))
	}
}

// TestSubscriptionVariantsSettleApart: when two instances declare one NAME
// with different values that both match a message, each variant is its
// own route for redelivery: one delivered and the other failing
// transiently, the redelivery still sends the failed one.
func TestSubscriptionVariantsSettleApart(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	b := h.backend("audit", "audit-b")
	c := h.backend("audit", "audit-c")
	c.status.Store(503)
	h.start([]string{"orders"}, "")
	if err := h.declare(b, map[string]string{"gateway-sub-trail": `{"stream":"orders","match":"true","path":"/b"}`}); err != nil {
		t.Fatal(err)
	}
	if err := h.declare(c, map[string]string{"gateway-sub-trail": `{"stream":"orders","match":"true","path":"/c"}`}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("both variants active", 5*time.Second, func() error {
		if r := h.activeRoutes(); len(r) != 2 {
			return fmt.Errorf("active: %v", r)
		}
		return nil
	})
	id := h.publish("orders", "type", "order.shipped", "payload", "{}")
	h.waitFor("c tried", 5*time.Second, func() error {
		if c.count() == 0 || b.count() == 0 {
			return fmt.Errorf("b %d, c %d", b.count(), c.count())
		}
		return nil
	})
	c.status.Store(200)
	h.waitAcked(15*time.Second, "orders")
	got := c.received()
	if last := got[len(got)-1]; last.Header.Get("X-Message-Id") != id || len(got) < 2 {
		t.Errorf("c received %d requests; the redelivery did not send its variant again", len(got))
	}
	if n := b.count(); n != 1 {
		t.Errorf("b received %d, want 1 (its variant was settled)", n)
	}
}
