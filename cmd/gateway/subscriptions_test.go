package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

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
		// A TTL far beyond any test: the load test outlives 30 s on a busy
		// machine, and an expired check would take the instance away.
		Check: &consul.AgentServiceCheck{CheckID: "check-" + b.id, TTL: "10m", Status: consul.HealthPassing},
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
	// The two are dispatched concurrently: either may arrive first.
	got := audit.received()[auditBefore:]
	byID := map[string]received{}
	for _, r := range got {
		byID[r.Header.Get("X-Message-Id")] = r
	}
	for _, id := range []string{created, shipped} {
		r, ok := byID[id]
		if len(got) != 2 || !ok || r.Path != "/audit" || r.Header.Get("X-Route") != "audit/trail" ||
			r.Header.Get("Idempotency-Key") != "orders/"+id+"/audit/trail" {
			t.Errorf("audit received %d requests; message %s: %+v; want it on /audit, route audit/trail", len(got), id, r)
		}
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

// TestSubscriptionMatchesExportedAtZero: a subscription's route counter
// is exported (at 0) as soon as it is active, before its first match.
func TestSubscriptionMatchesExportedAtZero(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	audit := h.backend("audit", "audit-1")
	h.start([]string{"orders"}, "")
	if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("matches counter exported", 5*time.Second, func() error {
		if v := h.metric(`gateway_route_matches_total{route="audit/trail"}`); v != "0" {
			return fmt.Errorf("gateway_route_matches_total{route=\"audit/trail\"} = %q", v)
		}
		return nil
	})
}
