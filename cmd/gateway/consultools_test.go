package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/msgroute/gateway/internal/testenv"
	"github.com/msgroute/gateway/rules"
)

// registerDeclaring registers a passing instance of service with meta.
func registerDeclaring(t *testing.T, c *consul.Client, service, id string, port int, meta map[string]string) {
	t.Helper()
	err := c.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: service, Address: "127.0.0.1", Port: port, Meta: meta,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "30s", Status: consul.HealthPassing},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCheckAndExplainWithConsul: `gateway check --consul` reports each
// invalid declaration registered now and exits 1 (0 when all are valid);
// `gateway explain --consul` includes the valid subscriptions.
func TestCheckAndExplainWithConsul(t *testing.T) {
	c := testenv.StartConsul(t)
	capi, err := consul.NewClient(&consul.Config{Address: c.Addr})
	if err != nil {
		t.Fatal(err)
	}
	registerDeclaring(t, capi, "audit", "audit-1", 1001, map[string]string{"gateway-sub-trail": trailDecl})
	registerDeclaring(t, capi, "plain", "plain-1", 1002, nil)

	var out, errb bytes.Buffer
	if code := run([]string{"check", "--consul", c.Addr}, &out, &errb); code != 0 {
		t.Errorf("check --consul with valid declarations: exit %d, out %q err %q", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "1 subscription(s) declared, 0 invalid") {
		t.Errorf("check summary = %q", errb.String())
	}

	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rulesPath, []byte(subsRules), 0o644); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"explain", "--rules", rulesPath, "--consul", c.Addr, "--stream", "orders",
		"--field", "type=order.created"}, &out, &errb)
	var ex []rules.Explanation
	if code != 0 || json.Unmarshal(out.Bytes(), &ex) != nil {
		t.Fatalf("explain --consul: exit %d, out %q, err %q", code, out.String(), errb.String())
	}
	if len(ex) != 2 || ex[0].Route != "created" || ex[1].Route != "audit/trail" || !ex[1].Subscription || ex[1].Path != "/audit" {
		t.Errorf("explain --consul = %+v, want created then audit/trail", ex)
	}

	registerDeclaring(t, capi, "billing", "billing-1", 1003, map[string]string{
		"gateway-sub-bad": `{"stream":"orders","match":"body.total >"}`,
		"gateway-sub-ok":  `{"stream":"orders","match":"true"}`,
	})
	// An instance not passing its checks yet is checked too.
	err = capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: "pay-1", Name: "payments", Port: 1004, Meta: map[string]string{"gateway-sub-x": `{"stream":"orders","match":"true","retries":1}`},
		Check: &consul.AgentServiceCheck{TTL: "30s", Status: consul.HealthCritical},
	})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "--consul", c.Addr, rulesPath}, &out, &errb); code != 1 {
		t.Errorf("check --consul with an invalid declaration: exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "consul: billing/bad (instances billing-1): invalid subscription declaration: match: ") ||
		lines[1] != `consul: payments/x (instances pay-1): invalid subscription declaration: unknown field "retries" (allowed: stream, match, method, path, path_expr, timeout, order_key)` {
		t.Errorf("check output = %q, want one line for billing/bad and one for payments/x", out.String())
	}
}

// TestExplainEndpointIncludesSubscriptions: POST /explain answers against
// the live set, subscriptions included.
func TestExplainEndpointIncludesSubscriptions(t *testing.T) {
	h := newHarness(t)
	h.writeRules(subsRules)
	audit := h.backend("audit", "audit-1")
	h.start([]string{"orders"}, "")
	if err := h.declare(audit, map[string]string{"gateway-sub-trail": trailDecl}); err != nil {
		t.Fatal(err)
	}
	h.waitFor("explain lists the subscription", 5*time.Second, func() error {
		resp, err := http.Post("http://"+h.admin+"/explain", "application/json",
			strings.NewReader(`{"stream":"orders","fields":{"type":"order.shipped"}}`))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var ex []rules.Explanation
		if err := json.NewDecoder(resp.Body).Decode(&ex); err != nil {
			return err
		}
		if len(ex) != 1 || ex[0].Route != "audit/trail" || !ex[0].Subscription {
			return fmt.Errorf("explain = %+v", ex)
		}
		return nil
	})
}
