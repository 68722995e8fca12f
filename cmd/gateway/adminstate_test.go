package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAdminStateWithoutServicesAndAfterReloads, against the real admin
// server of a running gateway:
//   - /readyz is 200 with rules that name no service (Consul is not needed);
//   - counters with known label values are exported at 0 from the start;
//   - /rules last_error is set by a rejected reload and cleared by a good one;
//   - a reload that names a service exports its dispatch and retry series at 0.
func TestAdminStateWithoutServicesAndAfterReloads(t *testing.T) {
	h := newHarness(t)
	h.writeRules("routes: []\ndefault: {action: drop}\n")
	h.start([]string{"orders"}, "") // waits for /readyz 200

	m := h.get("/metrics")
	for _, want := range []string{
		`gateway_dlq_total{reason="no_route"} 0`, `gateway_dlq_total{reason="permanent_error"} 0`,
		`gateway_dlq_total{reason="max_deliveries"} 0`, `gateway_dlq_total{reason="bad_message"} 0`,
		`gateway_dlq_total{reason="schema"} 0`,
		`gateway_rules_reloads_total{result="success"} 0`, `gateway_rules_reloads_total{result="failure"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics at start lacks %s", want)
		}
	}

	h.writeRules("routes: [{name: broken}]\n")
	h.waitFor("rejected reload in /rules", 10*time.Second, func() error {
		if st := h.rulesStatus(); st.LastError == "" {
			return fmt.Errorf("last_error empty")
		}
		return nil
	})
	h.writeRules("routes:\n  - {name: orders, match: 'true', service: orders}\n")
	h.waitFor("good reload clears last_error", 10*time.Second, func() error {
		st := h.rulesStatus()
		if len(st.Routes) != 1 || st.LastError != "" || st.LastErrorAt != nil {
			return fmt.Errorf("routes %d, last_error %q, last_error_at %v", len(st.Routes), st.LastError, st.LastErrorAt)
		}
		return nil
	})
	m = h.get("/metrics")
	for _, want := range []string{
		`gateway_rules_reloads_total{result="success"} 1`, `gateway_rules_reloads_total{result="failure"} 1`,
		`gateway_retries_total{service="orders"} 0`, `gateway_route_matches_total{route="orders"} 0`,
		`gateway_dispatch_total{outcome="delivered",service="orders"} 0`,
		`gateway_dispatch_total{outcome="transient",service="orders"} 0`,
		`gateway_dispatch_total{outcome="permanent",service="orders"} 0`,
		`gateway_dispatch_total{outcome="no_instance",service="orders"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics after the reload lacks %s", want)
		}
	}
}

func (h *harness) rulesStatus() (st struct {
	Routes      []json.RawMessage `json:"routes"`
	LastError   string            `json:"last_error"`
	LastErrorAt *time.Time        `json:"last_error_at"`
}) {
	h.t.Helper()
	if err := json.Unmarshal([]byte(h.get("/rules")), &st); err != nil {
		h.t.Fatal(err)
	}
	return st
}
