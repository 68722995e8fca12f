package asyncapi

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/rules"
)

// validate checks doc (YAML) against the official AsyncAPI 3.0.0 JSON
// Schema (testdata, from @asyncapi/specs) and returns the decoded document.
func validate(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(doc, &v); err != nil {
		t.Fatalf("output is not YAML: %v", err)
	}
	// Round-trip through JSON so the validator sees JSON types only.
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/asyncapi-3.0.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	spec, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("asyncapi-3.0.0.json", spec); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("asyncapi-3.0.0.json")
	if err != nil {
		t.Fatalf("compile the AsyncAPI schema: %v", err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("document does not validate against AsyncAPI 3.0.0: %v\n%s", err, doc)
	}
	return v.(map[string]any)
}

func path(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("%s: not a mapping at %q", strings.Join(keys, "."), k)
		}
		v = m[k]
	}
	return v
}

// TestEveryRouteFieldValidates: a rule set using every route field (and
// names that need escaping) gives a valid document with each field shown.
func TestEveryRouteFieldValidates(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "schemas", "order.json"), `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id"],"properties":{"id":{"type":"string"}}}`)
	writeFile(t, filepath.Join(dir, "schemas", "refund.json"), `{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"amount":{"type":"number","minimum":0}}}`)
	writeFile(t, filepath.Join(dir, "rules.yaml"), `
routes:
  - name: all-fields
    streams: [orders, orders.eu]
    match: 'headers.type == "order.created" && body.total > 1000'
    priority: 100
    service: order-priority
    tags: [v2, eu]
    method: put
    path: /orders
    path_expr: '"/orders/" + string(body.id)'
    timeout: 2s
    retries: 2
    continue: true
    schema: schemas/order.json
    on_failure: orders.compensate
  - name: same-schema
    streams: [orders]
    service: audit
    schema: schemas/order.json
  - name: refunds/v1
    streams: ["payments:in"]
    match: 'headers.type == "refund"'
    service: payments
    schema: schemas/refund.json
  - name: catch-all
    service: misc
default:
  action: route
  service: fallback
`)
	set, err := rules.Load(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	routes, err := FromRules(set, []string{"orders", "payments:in", "events"})
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(Spec{
		Info: Info{Title: "shop", Version: "2.1.0"}, Servers: []string{"10.0.0.1:6379"},
		Streams: []string{"orders", "payments:in", "events"}, DLQStream: "gateway:dlq",
		Routes: routes, RulesVersion: set.Version(),
	})
	if err != nil {
		t.Fatal(err)
	}
	doc := validate(t, out)

	if got := path(t, doc, "info", "title"); got != "shop" {
		t.Errorf("info.title = %v, want shop", got)
	}
	op := path(t, doc, "operations", "all-fields_orders.eu").(map[string]any)
	want := map[string]any{
		"action": "receive", "x-service": "order-priority", "x-method": "PUT", "x-path-expr": `"/orders/" + string(body.id)`,
		"x-timeout": "2s", "x-retries": 2, "x-priority": 100, "x-continue": true, "x-on-failure": "orders.compensate",
		"x-schema": "schemas/order.json", "x-match": `headers.type == "order.created" && body.total > 1000`,
	}
	for k, v := range want {
		if op[k] != v {
			t.Errorf("operation all-fields@orders.eu %s = %v, want %v", k, op[k], v)
		}
	}
	if _, ok := path(t, doc, "operations", "all-fields_orders").(map[string]any); !ok {
		t.Errorf("no operation for all-fields on orders")
	}
	for _, name := range []string{"same-schema", "refunds_v1", "catch-all_events", "catch-all_orders", "catch-all_payments_in", "default_events", "all-fields.on_failure", "dead-letter"} {
		if _, ok := path(t, doc, "operations", name).(map[string]any); !ok {
			t.Errorf("no operation %s; operations: %v", name, keysOf(path(t, doc, "operations")))
		}
	}
	if got := path(t, doc, "operations", "all-fields.on_failure", "action"); got != "send" {
		t.Errorf("on_failure operation action = %v, want send", got)
	}
	if got := path(t, doc, "channels", "orders.compensate", "address"); got != "orders.compensate" {
		t.Errorf("on_failure channel address = %v", got)
	}
	if got := path(t, doc, "channels", "payments_in", "address"); got != "payments:in" {
		t.Errorf("payments:in channel address = %v", got)
	}
	// One schema component per file, with its dialect as the format.
	schemas := path(t, doc, "components", "schemas").(map[string]any)
	if got := path(t, schemas, "order", "schemaFormat"); got != "application/schema+json;version=2020-12" {
		t.Errorf("order schemaFormat = %v", got)
	}
	if got := path(t, schemas, "refund", "schemaFormat"); got != "application/schema+json;version=draft-07" {
		t.Errorf("refund schemaFormat = %v", got)
	}
	if _, dup := schemas["order_2"]; dup {
		t.Errorf("a schema shared by two routes was filed twice")
	}
	if got := path(t, doc, "components", "messages", "same-schema", "payload", "$ref"); got != "#/components/schemas/order" {
		t.Errorf("same-schema payload = %v", got)
	}
	for _, f := range []string{"reply_to", "correlation_id", "content_type", "payload"} {
		if path(t, doc, "components", "schemas", "EntryHeaders", "properties", f) == nil {
			t.Errorf("EntryHeaders lacks %s", f)
		}
	}
}

// TestDemoConfigValidates: the document for configs/ validates and names
// every route, stream and schema.
func TestDemoConfigValidates(t *testing.T) {
	cfg, err := config.Load("../../configs/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := rules.Load("../../configs/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	routes, err := FromRules(set, cfg.Consumer.Streams)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(Spec{Streams: cfg.Consumer.Streams, DLQStream: cfg.Consumer.DLQStream, Routes: routes, Servers: cfg.Redis.Addrs})
	if err != nil {
		t.Fatal(err)
	}
	doc := validate(t, out)
	ops := path(t, doc, "operations").(map[string]any)
	for _, r := range set.Routes() {
		found := false
		for _, op := range ops {
			if op.(map[string]any)["x-route"] == r.Name && op.(map[string]any)["action"] == "receive" {
				found = true
			}
		}
		if !found {
			t.Errorf("route %s has no operation", r.Name)
		}
	}
	for _, s := range cfg.Consumer.Streams {
		if path(t, doc, "channels", s, "address") != s {
			t.Errorf("stream %s has no channel", s)
		}
	}
	if path(t, doc, "components", "schemas", "order", "schema") == nil {
		t.Errorf("schemas/order.json is not in components.schemas")
	}
}

func TestSchemaFormat(t *testing.T) {
	tests := []struct {
		doc     any
		want    string
		wantErr bool
	}{
		{map[string]any{"type": "object"}, "application/schema+json;version=draft-07", false},
		{map[string]any{"$schema": "https://json-schema.org/draft/2020-12/schema"}, "application/schema+json;version=2020-12", false},
		{map[string]any{"$schema": "http://json-schema.org/draft-04/schema#"}, "application/schema+json;version=draft-04", false},
		{true, "application/schema+json;version=draft-07", false},
		{map[string]any{"$schema": "urn:mine"}, "", true},
		{"text", "", true},
	}
	for _, tt := range tests {
		got, err := schemaFormat(tt.doc)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("schemaFormat(%v) = %q, %v; want %q, error %v", tt.doc, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestTimeoutShownAsDuration(t *testing.T) {
	out, err := Marshal(Spec{Streams: []string{"s"}, Routes: []Route{{Name: "r", Service: "x", Method: "POST", Streams: []string{"s"}, Timeout: 1500 * time.Millisecond}}})
	if err != nil {
		t.Fatal(err)
	}
	doc := validate(t, out)
	if got := path(t, doc, "operations", "r", "x-timeout"); got != "1.5s" {
		t.Errorf("x-timeout = %v, want 1.5s", got)
	}
}

func keysOf(v any) []string {
	var ks []string
	for k := range v.(map[string]any) {
		ks = append(ks, k)
	}
	return ks
}

func writeFile(t *testing.T, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
