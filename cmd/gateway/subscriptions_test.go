package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/subscriptions"
)

// subsRules route order.created to orders; subscriptions add the rest.
const subsRules = `
routes:
  - name: created
    streams: [orders]
    match: 'headers.type == "order.created"'
    service: orders
    path: /orders
default:
  action: dlq
`

// trailDecl is the declaration the audit instances register.
const trailDecl = `{"stream":"orders","match":"headers.type startsWith \"order.\"","path":"/audit"}`

// declare (re-)registers b in Consul with meta (nil: no declarations),
// as a service would on start or on a rolling upgrade.
func (h *harness) declare(b *backend, meta map[string]string) error {
	h.t.Helper()
	_, p, _ := net.SplitHostPort(b.addr)
	port, _ := strconv.Atoi(p)
	return h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: b.id, Name: b.name, Address: "127.0.0.1", Port: port, Meta: meta,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + b.id, TTL: "30s", Status: consul.HealthPassing},
	})
}

// subsView is the subscriptions part of GET /rules.
type subsView struct {
	Subscriptions []subscriptions.Status `json:"subscriptions"`
}

func (h *harness) subscriptions() []subscriptions.Status {
	h.t.Helper()
	resp, err := http.Get("http://" + h.admin + "/rules")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var v subsView
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		h.t.Fatal(err)
	}
	return v.Subscriptions
}

// activeRoutes lists the routes of the active subscriptions in /rules.
func (h *harness) activeRoutes() []string {
	var out []string
	for _, s := range h.subscriptions() {
		if s.State == subscriptions.StateActive {
			out = append(out, s.Route)
		}
	}
	return out
}

func (h *harness) metric(name string) string {
	h.t.Helper()
	resp, err := http.Get("http://" + h.admin + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

// TestSubscriptionRegisterDeliverDeregister: an instance that registers
// with a declaration receives the messages it matches within 1 s of the
// registration (20 trials: median and max are logged), including
// messages no file route matches (routed, not dead-lettered no_route);
// once it deregisters it receives nothing more. File routes are
// unaffected throughout.
func TestSubscriptionRegisterDeliverDeregister(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	orders := h.backend("orders", "orders-1")
	audit := h.backend("audit", "audit-1")
	if err := h.capi.Agent().ServiceDeregister("audit-1"); err != nil {
		t.Fatal(err)
	}
	h.start([]string{"orders"}, "")

	before := h.publish("orders", "type", "order.shipped", "payload", `{"n":0}`)
	h.waitFor("unmatched message dead-lettered", 5*time.Second, func() error {
		if len(h.dlq()) != 1 {
			return fmt.Errorf("dlq = %d", len(h.dlq()))
		}
		return nil
	})

	const trials = 20
	var delays []time.Duration
	for i := 0; i < trials; i++ {
		reg := time.Now()
		if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
			t.Fatal(err)
		}
		// Publish a message every 10 ms until the instance receives one
		// (the file route takes them all, so none is dead-lettered).
		start := audit.count()
		var first time.Duration
		for first == 0 {
			h.publish("orders", "type", "order.created", "payload", fmt.Sprintf(`{"trial":%d}`, i))
			time.Sleep(10 * time.Millisecond)
			if audit.count() > start {
				first = time.Since(reg)
			}
			if time.Since(reg) > 10*time.Second {
				t.Fatalf("trial %d: no delivery 10 s after registration", i)
			}
		}
		delays = append(delays, first)
		if err := h.capi.Agent().ServiceDeregister("audit-1"); err != nil {
			t.Fatal(err)
		}
		h.waitFor("subscription removed", 5*time.Second, func() error {
			if r := h.activeRoutes(); len(r) != 0 {
				return fmt.Errorf("active: %v", r)
			}
			return nil
		})
		h.waitAcked(10*time.Second, "orders")
	}
	slices.Sort(delays)
	t.Logf("registration to first delivery over %d trials: median %v, max %v (min %v)",
		trials, delays[trials/2], delays[trials-1], delays[0])
	if delays[trials/2] > time.Second {
		t.Errorf("median registration-to-delivery %v, want within 1 s", delays[trials/2])
	}

	// Registered: file routes and the subscription each take their copy.
	if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("subscription active", 5*time.Second, func() error {
		if r := h.activeRoutes(); !slices.Equal(r, []string{"audit/trail"}) {
			return fmt.Errorf("active: %v", r)
		}
		return nil
	})
	h.waitAcked(10*time.Second, "orders")
	auditBefore, ordersBefore := audit.count(), orders.count()
	created := h.publish("orders", "type", "order.created", "payload", `{"id":"o-1"}`)
	shipped := h.publish("orders", "type", "order.shipped", "payload", `{"id":"o-1"}`)
	h.waitAcked(10*time.Second, "orders")
	got := audit.received()[auditBefore:]
	if len(got) != 2 || got[0].Path != "/audit" || got[0].Header.Get("X-Route") != "audit/trail" ||
		got[0].Header.Get("Idempotency-Key") != "orders/"+created+"/audit/trail" ||
		got[1].Header.Get("X-Message-Id") != shipped {
		t.Errorf("audit received %d (%v), want created and shipped on /audit with route audit/trail", len(got), got)
	}
	if n := orders.count() - ordersBefore; n != 1 {
		t.Errorf("orders received %d, want the one created message", n)
	}
	if d := h.dlq(); len(d) != 1 || d[0].Values["dlq_id"] != before {
		t.Errorf("dlq has %d entries, want only %s (published before any subscription)", len(d), before)
	}

	// Deregistered: no more copies.
	if err := h.capi.Agent().ServiceDeregister("audit-1"); err != nil {
		t.Fatal(err)
	}
	h.waitFor("subscription removed", 5*time.Second, func() error {
		if r := h.activeRoutes(); len(r) != 0 {
			return fmt.Errorf("active: %v", r)
		}
		return nil
	})
	auditBefore = audit.count()
	h.publish("orders", "type", "order.created", "payload", `{"id":"o-2"}`)
	h.waitAcked(10*time.Second, "orders")
	if n := audit.count() - auditBefore; n != 0 {
		t.Errorf("audit received %d after deregistering, want 0", n)
	}
	if n := orders.count() - ordersBefore; n != 2 {
		t.Errorf("orders received %d, want 2", n)
	}
}

// TestSubscriptionInvalidDeclarationsRejectedAlone: an invalid
// expression, an unknown field and a stream outside the allow-list are
// each shown invalid with their error in /rules and counted, while the
// instance's valid declaration, other services' and the file routes keep
// working and nothing is dead-lettered. Consul itself refuses a value
// over 512 bytes.
func TestSubscriptionInvalidDeclarationsRejectedAlone(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	orders := h.backend("orders", "orders-1")
	audit := h.backend("audit", "audit-1")
	billing := h.backend("billing", "billing-1")
	t.Setenv("GATEWAY_CONSUL_SUBSCRIPTION_STREAMS", "orders,payments")
	h.start([]string{"orders", "payments", "events"}, "")

	big := `{"stream":"orders","match":"` + strings.Repeat("true && ", 70) + `true"}`
	err := h.declare(audit, map[string]string{"gateway-sub-big": big})
	if err == nil || !strings.Contains(err.Error(), "Value is too long (limit: 512 characters)") {
		t.Errorf("registering a %d-byte declaration: err = %v, want Consul's limit error", len(big), err)
	}
	if err := h.declare(audit, map[string]string{
		"gateway-sub-good":    trailDecl,
		"gateway-sub-badexpr": `{"stream":"orders","match":"header.type == \"x\""}`,
		"gateway-sub-unknown": `{"stream":"orders","match":"true","retries":3}`,
		"gateway-sub-stream":  `{"stream":"events","match":"true"}`,
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.declare(billing, map[string]string{"gateway-sub-big-orders": `{"stream":"orders","match":"body.total > 100","path":"/billing"}`}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"audit/badexpr": "match: unknown name header",
		"audit/unknown": `unknown field "retries"`,
		"audit/stream":  `stream "events" is not one subscriptions may read`,
	}
	h.waitFor("declarations compiled", 5*time.Second, func() error {
		st := h.subscriptions()
		if len(st) != 5 {
			return fmt.Errorf("%d subscriptions in /rules: %+v", len(st), st)
		}
		for _, s := range st {
			w, invalid := want[s.Route]
			if invalid != (s.State == subscriptions.StateInvalid) || !strings.Contains(s.Error, w) {
				return fmt.Errorf("%s: state %s error %q, want error containing %q", s.Route, s.State, s.Error, w)
			}
			if s.Service != s.Route[:strings.Index(s.Route, "/")] || len(s.Instances) != 1 {
				return fmt.Errorf("%s: service %q instances %v", s.Route, s.Service, s.Instances)
			}
		}
		return nil
	})
	if a, i := h.metric(`gateway_subscriptions{state="active"}`), h.metric(`gateway_subscriptions{state="invalid"}`); a != "2" || i != "3" {
		t.Errorf("gateway_subscriptions active=%q invalid=%q, want 2 and 3", a, i)
	}
	h.publish("orders", "type", "order.created", "payload", `{"total": 500}`)
	h.publish("orders", "type", "order.shipped", "payload", `{"total": 5}`)
	h.publish("payments", "type", "order.created", "payload", `{"total": 5}`) // matched by nothing
	h.waitAcked(10*time.Second, "orders", "payments", "events")
	if n := orders.count(); n != 1 {
		t.Errorf("orders (file route) received %d, want 1", n)
	}
	if n := audit.count(); n != 2 {
		t.Errorf("audit (valid declaration) received %d, want 2", n)
	}
	if n := billing.count(); n != 1 {
		t.Errorf("billing received %d, want 1", n)
	}
	d := h.dlq()
	if len(d) != 1 || d[0].Values["dlq_stream"] != "payments" || d[0].Values["dlq_reason"] != "no_route" {
		t.Errorf("dlq = %v, want only the unmatched payments message", d)
	}
}

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

// arrivals is an HTTP service registered in Consul that records when each
// message (by Idempotency-Key) first arrived and how often.
type arrivals struct {
	id, addr string
	mu       sync.Mutex
	first    map[string]time.Time
	times    map[string]int
}

func (h *harness) arrivals(service, id string) *arrivals {
	h.t.Helper()
	a := &arrivals{id: id, first: map[string]time.Time{}, times: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		// The message ID part of STREAM/ID/ROUTE.
		key := strings.SplitN(r.Header.Get("Idempotency-Key"), "/", 3)[1]
		a.mu.Lock()
		if a.times[key] == 0 {
			a.first[key] = now
		}
		a.times[key]++
		a.mu.Unlock()
		w.WriteHeader(200)
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { srv.Close() })
	if err := h.declare(&backend{name: service, id: id, addr: a.addr}, nil); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (a *arrivals) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// TestSubscriptionsUnderLoad: at 1000 msg/s, a subscription appears and
// disappears 20 times (declared by re-registering, removed alternately by
// deregistering and by re-registering without it). Nothing is lost: the
// file route receives every message, nothing is dead-lettered, everything
// is acked. Every message the gateway read while the subscription was
// active reaches the subscriber, and none read while it was gone does.
// "Read while active" is decided without looking inside the gateway: a
// message is read after it was published and before the file route's
// copy arrived, and both routes are matched in that one read.
func TestSubscriptionsUnderLoad(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: all
    streams: [orders]
    service: sink
default:
  action: dlq
`)
	sink := h.arrivals("sink", "sink-1")
	sub := h.arrivals("audit", "audit-1")
	auditBackend := &backend{name: "audit", id: "audit-1", addr: sub.addr}
	h.start([]string{"orders"}, "")

	// Producer: 10 messages every 10 ms.
	type batch struct {
		ids        []string
		start, end time.Time
	}
	var (
		pmu     sync.Mutex
		batches []batch
	)
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		ctx := context.Background()
		for seq := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			pipe := h.rdb.Pipeline()
			cmds := make([]*redis.StringCmd, 10)
			for i := range cmds {
				seq++
				cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"type", "load", "payload", fmt.Sprintf(`{"seq":%d}`, seq)}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			b := batch{start: start, end: time.Now()}
			for _, c := range cmds {
				b.ids = append(b.ids, c.Val())
			}
			pmu.Lock()
			batches = append(batches, b)
			pmu.Unlock()
		}
	}()

	type window struct{ from, to time.Time }
	var active, inactive []window
	inactiveFrom := time.Now()
	decl := map[string]string{"gateway-sub-trail": `{"stream":"orders","match":"true"}`}
	const cycles = 20
	for i := 0; i < cycles; i++ {
		declareAt := time.Now()
		inactive = append(inactive, window{inactiveFrom, declareAt})
		if err := h.declare(auditBackend, decl); err != nil {
			t.Fatal(err)
		}
		h.waitFor("subscription active", 10*time.Second, func() error {
			if r := h.activeRoutes(); len(r) != 1 {
				return fmt.Errorf("active: %v", r)
			}
			return nil
		})
		activeFrom, n := time.Now(), sub.distinct()
		h.waitFor("subscriber receiving", 30*time.Second, func() error {
			if d := sub.distinct() - n; d < 300 {
				return fmt.Errorf("received %d since active", d)
			}
			return nil
		})
		removeAt := time.Now()
		active = append(active, window{activeFrom, removeAt})
		var err error
		if i%2 == 0 {
			err = h.capi.Agent().ServiceDeregister("audit-1")
		} else {
			err = h.declare(auditBackend, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor("subscription removed", 10*time.Second, func() error {
			if r := h.activeRoutes(); len(r) != 0 {
				return fmt.Errorf("active: %v", r)
			}
			return nil
		})
		inactiveFrom, n = time.Now(), sink.distinct()
		h.waitFor("traffic while inactive", 30*time.Second, func() error {
			if d := sink.distinct() - n; d < 300 {
				return fmt.Errorf("sink received %d since removal", d)
			}
			return nil
		})
	}
	inactive = append(inactive, window{inactiveFrom, time.Now()})
	close(stop)
	<-produced
	pmu.Lock()
	defer pmu.Unlock()
	total := 0
	for _, b := range batches {
		total += len(b.ids)
	}
	h.waitFor("file route received everything", 60*time.Second, func() error {
		if d := sink.distinct(); d != total {
			return fmt.Errorf("sink has %d of %d", d, total)
		}
		return nil
	})
	h.waitAcked(30*time.Second, "orders")
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries, want 0", len(d))
	}

	within := func(ws []window, from, to time.Time) bool {
		for _, w := range ws {
			if !from.Before(w.from) && !to.After(w.to) {
				return true
			}
		}
		return false
	}
	sink.mu.Lock()
	sub.mu.Lock()
	defer sink.mu.Unlock()
	defer sub.mu.Unlock()
	var whileActive, whileInactive, transition, missed, wrong, dups int
	for _, b := range batches {
		for _, id := range b.ids {
			arrived := sink.first[id]
			_, got := sub.times[id]
			dups += max(sub.times[id]-1, 0)
			switch {
			case within(active, b.start, arrived):
				whileActive++
				if !got {
					missed++
					if missed <= 5 {
						t.Errorf("%s (published %s, file copy %s) read while the subscription was active, not delivered to it",
							id, b.start.Format("15:04:05.000"), arrived.Format("15:04:05.000"))
					}
				}
			case within(inactive, b.start, arrived):
				whileInactive++
				if got {
					wrong++
					if wrong <= 5 {
						t.Errorf("%s read while no subscription was active, delivered to the subscriber", id)
					}
				}
			default:
				transition++
			}
		}
	}
	t.Logf("%d cycles, %d messages at %.0f msg/s: %d read while active (%d not delivered), %d while inactive (%d delivered), %d during a change; %d duplicate deliveries",
		cycles, total, float64(total)/batches[len(batches)-1].end.Sub(batches[0].start).Seconds(),
		whileActive, missed, whileInactive, wrong, transition, dups)
	if whileActive < cycles*200 || whileInactive < cycles*200 {
		t.Errorf("too few messages inside the windows (%d active, %d inactive): the test did not exercise the cycles", whileActive, whileInactive)
	}
}

// TestSubscriptionsOff: with consul.subscriptions false, declarations are
// ignored: /rules lists none, the gauge stays at 0, and a message only a
// declaration would match is dead-lettered no_route.
func TestSubscriptionsOff(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	orders := h.backend("orders", "orders-1")
	audit := h.backend("audit", "audit-1")
	if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GATEWAY_CONSUL_SUBSCRIPTIONS", "false")
	h.start([]string{"orders"}, "")
	h.publish("orders", "type", "order.created", "payload", "{}")
	h.publish("orders", "type", "order.shipped", "payload", "{}")
	h.waitAcked(10*time.Second, "orders")
	if orders.count() != 1 || audit.count() != 0 {
		t.Errorf("orders received %d, audit %d; want 1 and 0", orders.count(), audit.count())
	}
	if d := h.dlq(); len(d) != 1 || d[0].Values["dlq_reason"] != "no_route" {
		t.Errorf("dlq = %v, want the order.shipped message as no_route", d)
	}
	if st := h.subscriptions(); len(st) != 0 {
		t.Errorf("/rules subscriptions = %+v, want none", st)
	}
	if a, i := h.metric(`gateway_subscriptions{state="active"}`), h.metric(`gateway_subscriptions{state="invalid"}`); a != "0" || i != "0" {
		t.Errorf("gateway_subscriptions active=%q invalid=%q, want both exported at 0", a, i)
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

// TestSubscriptionKnownAtReadiness: declarations registered before the
// gateway starts are in force once /readyz passes, so a message only a
// subscription matches, published right then, is routed (not no_route).
func TestSubscriptionKnownAtReadiness(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	audit := h.backend("audit", "audit-1")
	if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
		t.Fatal(err)
	}
	h.start([]string{"orders"}, "")
	if r := h.activeRoutes(); !slices.Equal(r, []string{"audit/trail"}) {
		t.Errorf("/rules right after /readyz passed lists %v, want [audit/trail]", r)
	}
	id := h.publish("orders", "type", "order.shipped", "payload", "{}")
	h.waitAcked(10*time.Second, "orders")
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq = %v, want empty", d)
	}
	if got := audit.received(); len(got) != 1 || got[0].Header.Get("X-Message-Id") != id {
		t.Errorf("audit received %d, want the message", len(got))
	}
}
