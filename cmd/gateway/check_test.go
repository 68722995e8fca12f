package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// contractRules is the CONTRACT's "Rules files" example, without the
// fields other work adds (order_key, batch, on_failure).
const contractRules = `routes:
  - name: eu-big-orders              # unique, required
    streams: [orders]                # optional; default: every consumed stream
    match: 'headers.type == "order.created" && body.total > 1000 && body.region == "eu"'
    priority: 100                    # optional; higher first, then file order
    service: order-priority          # Consul service name, required
    tags: [v2]                       # optional: only instances carrying all these tags
    method: POST                     # optional; default POST
    path: /orders                    # optional static path; default /
    path_expr: '"/orders/" + body.id'  # optional expr producing the path (wins over path)
    timeout: 2s                      # optional per-attempt timeout
    retries: 2                       # optional extra attempts on another instance
    continue: false                  # true: later matching routes also get the message (fan-out)
    schema: schemas/order.v2.json    # optional JSON Schema the body must satisfy; else DLQ, reason schema
default:
  action: dlq                        # unmatched messages: dlq (default) | drop | route
  service: fallback                  # with action: route
`

// TestCheckContractExampleWarnsOnDefaultService: the contract's own
// example passes `gateway check` (exit 0); default.service next to
// action: dlq is a warning printed as file:line: warning: ...
func TestCheckContractExampleWarnsOnDefaultService(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "schemas"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "schemas", "order.v2.json"), []byte(`{"type":"object"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(contractRules), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run([]string{"check", rules}, &out, &errb)
	if code != 0 {
		t.Fatalf("gateway check on the contract's example: exit %d\n%s%s", code, out.String(), errb.String())
	}
	want := rules + ":17: warning: default.service is ignored: it is only used with action: route (action is dlq)"
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !slices.Contains(lines, want) {
		t.Errorf("gateway check printed\n%s\nwant a line\n%s", out.String(), want)
	}
}
