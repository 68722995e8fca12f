package rules

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"
)

const orderPayload = `{"id": "o-1", "total": 1500, "region": "eu"}`

func TestMatchSampleRules(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name     string
		msg      *Message
		want     string
		wantPath []string
		wantErr  []error
	}{
		{
			name:     "priority route with path_expr",
			msg:      msg("orders", map[string]string{"type": "order.created", "payload": orderPayload}),
			want:     "[eu-big-orders]",
			wantPath: []string{"/orders/o-1"},
			wantErr:  []error{nil},
		},
		{
			name:     "fan-out through continue",
			msg:      msg("orders", map[string]string{"type": "order.created", "payload": `{"id": "o-2", "total": 5, "region": "eu"}`}),
			want:     "[orders-audit orders]",
			wantPath: []string{"/audit", "/orders"},
			wantErr:  []error{nil, nil},
		},
		{
			name:     "schema violation still matches, with ErrSchema",
			msg:      msg("orders", map[string]string{"type": "order.created", "payload": `{"id": 7, "total": 1500, "region": "eu"}`}),
			want:     "[eu-big-orders]",
			wantPath: []string{"/"},
			wantErr:  []error{ErrSchema},
		},
		{
			name: "stream filter excludes other streams",
			msg:  msg("other", map[string]string{"type": "order.created", "payload": orderPayload}),
			want: "[default]", wantPath: []string{"/"}, wantErr: []error{nil},
		},
		{
			name: "body-only route on any stream",
			msg:  msg("anything", map[string]string{"payload": `{"kind": "refund"}`}),
			want: "[refunds]", wantPath: []string{"/refunds"}, wantErr: []error{nil},
		},
		{
			name: "non-JSON payload reaches default",
			msg:  msg("orders", map[string]string{"payload": `not json`}),
			want: "[default]", wantPath: []string{"/"}, wantErr: []error{nil},
		},
		{
			name: "string total is an eval error, then a lower route matches",
			msg:  msg("orders", map[string]string{"type": "order.created", "payload": `{"id": "o", "total": "1500", "region": "eu"}`}),
			want: "[orders-audit orders]", wantPath: []string{"/audit", "/orders"}, wantErr: []error{nil, nil},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Match(tt.msg, nil)
			if names(got) != tt.want {
				t.Fatalf("Match(%q) = %v, want %v", tt.msg.Payload, names(got), tt.want)
			}
			for i, m := range got {
				if m.Path != tt.wantPath[i] {
					t.Errorf("Match(%q)[%d].Path = %q, want %q", tt.msg.Payload, i, m.Path, tt.wantPath[i])
				}
				if tt.wantErr[i] == nil && m.Err != nil || tt.wantErr[i] != nil && !errors.Is(m.Err, tt.wantErr[i]) {
					t.Errorf("Match(%q)[%d].Err = %v, want %v", tt.msg.Payload, i, m.Err, tt.wantErr[i])
				}
			}
		})
	}
}

func TestRouteFields(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	r := s.Routes()[0]
	want := Route{Name: "eu-big-orders", Service: "order-priority", Method: "POST", Streams: []string{"orders"},
		Tags: []string{"v2"}, Priority: 100, Retries: 2, Timeout: 2 * time.Second, Path: "/",
		Schema: "schemas/order.v2.json", File: "testdata/rules.yaml", Line: 3}
	if r.Name != want.Name || r.Service != want.Service || r.Method != want.Method ||
		!slices.Equal(r.Streams, want.Streams) || !slices.Equal(r.Tags, want.Tags) ||
		r.Priority != want.Priority || r.Retries != want.Retries || r.Timeout != want.Timeout ||
		r.Path != want.Path || r.Schema != want.Schema || r.File != want.File || r.Line != want.Line || r.Continue {
		t.Errorf("Routes()[0] = %+v, want %+v", r, &want)
	}
	if r.PathExpr != `"/orders/" + body.id` {
		t.Errorf("PathExpr = %q", r.PathExpr)
	}
	audit := s.Routes()[1]
	if audit.Method != "PUT" || !audit.Continue || audit.Path != "/audit" {
		t.Errorf("Routes()[1] = %+v, want method PUT, continue, path /audit", audit)
	}
	if got, want := s.Services(), []string{"audit", "fallback", "order-priority", "order-service", "payments"}; !slices.Equal(got, want) {
		t.Errorf("Services() = %v, want %v", got, want)
	}
	if got := s.Default(); got != (Default{Action: ActionRoute, Service: "fallback"}) {
		t.Errorf("Default() = %+v", got)
	}
	if got := s.Files(); !slices.Equal(got, []string{"testdata/rules.yaml"}) {
		t.Errorf("Files() = %v", got)
	}
	if len(s.Version()) != 64 || s.LoadedAt().IsZero() {
		t.Errorf("Version() = %q, LoadedAt() = %v", s.Version(), s.LoadedAt())
	}
}

func TestMatchInline(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		msg   *Message
		want  string
	}{
		{
			name: "higher priority first regardless of file order",
			rules: `
routes:
  - {name: low, service: a, match: 'true'}
  - {name: high, service: b, priority: 5, match: 'true'}`,
			msg: msg("s", nil), want: "[high]",
		},
		{
			name: "equal priority keeps file order",
			rules: `
routes:
  - {name: first, service: a, continue: true}
  - {name: second, service: b}
  - {name: third, service: c}`,
			msg: msg("s", nil), want: "[first second]",
		},
		{
			name: "default dlq returns nothing",
			rules: `
routes:
  - {name: r, service: a, match: 'headers.type == "x"'}`,
			msg: msg("s", map[string]string{"type": "y"}), want: "[]",
		},
		{
			name: "default drop returns nothing",
			rules: `
routes:
  - {name: r, service: a, match: 'headers.type == "x"'}
default: {action: drop}`,
			msg: msg("s", map[string]string{"type": "y"}), want: "[]",
		},
		{
			name: "default route when nothing matched",
			rules: `
default: {action: route, service: fb}`,
			msg: msg("s", nil), want: "[default]",
		},
		{
			name: "no default route when a continue route matched",
			rules: `
routes:
  - {name: tap, service: a, continue: true}
default: {action: route, service: fb}`,
			msg: msg("s", nil), want: "[tap]",
		},
		{
			name: "missing attribute reads as empty string",
			rules: `
routes:
  - {name: untyped, service: a, match: 'headers.type == ""'}`,
			msg: msg("s", nil), want: "[untyped]",
		},
		{
			name: "in list of streams",
			rules: `
routes:
  - {name: r, service: a, match: 'stream in ["a", "b"]'}`,
			msg: msg("b", nil), want: "[r]",
		},
		{
			name: "reserved fields are not headers",
			rules: `
routes:
  - {name: r, service: a, match: 'headers.reply_to == "" && headers.content_type == ""'}`,
			msg: msg("s", map[string]string{"reply_to": "x", "content_type": "text/plain"}), want: "[r]",
		},
		{
			name: "id, payload and deliveries are visible",
			rules: `
routes:
  - {name: r, service: a, match: 'id == "1-0" && payload contains "hi" && deliveries == 1'}`,
			msg: msg("s", map[string]string{"payload": "say hi"}), want: "[r]",
		},
		{
			name: "$env sees the decoded body",
			rules: `
routes:
  - {name: r, service: a, match: '$env["body"].kind == "k"'}`,
			msg: msg("s", map[string]string{"payload": `{"kind":"k"}`}), want: "[r]",
		},
		{
			name: "nested body path and reversed equality",
			rules: `
routes:
  - {name: r, service: a, match: '"eu" == body.customer.region'}`,
			msg: msg("s", map[string]string{"payload": `{"customer":{"region":"eu"}}`}), want: "[r]",
		},
		{
			name: "body index does not confuse a.b with [\"a.b\"]",
			rules: `
routes:
  - {name: dotted, service: a, match: 'body["a.b"] == "x"'}
  - {name: nested, service: a, match: 'body.a?.b == "x"'}`,
			msg: msg("s", map[string]string{"payload": `{"a":{"b":"x"}}`}), want: "[nested]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := compileString(t, tt.rules)
			if got := names(s.Match(tt.msg, nil)); got != tt.want {
				t.Errorf("Match(%q) = %v, want %v", tt.msg.Payload, got, tt.want)
			}
			if got := names(linearMatch(s, tt.msg)); got != tt.want {
				t.Errorf("linearMatch(%q) = %v, want %v", tt.msg.Payload, got, tt.want)
			}
		})
	}
}

func TestPathExpr(t *testing.T) {
	s := compileString(t, `
routes:
  - name: p
    service: a
    match: 'headers.kind == "ok"'
    path: /ignored
    path_expr: '"/orders/" + string(body.id)'
  - name: relative
    service: a
    match: 'headers.kind == "relative"'
    path_expr: 'string(body.id)'
  - name: failing
    service: a
    match: 'headers.kind == "failing"'
    path_expr: '"/" + body.missing.deeper'
  - name: untyped
    service: a
    match: 'headers.kind == "untyped"'
    path_expr: 'body.id'
`)
	tests := []struct {
		kind, payload string
		wantPath      string
		wantErr       error
	}{
		{"ok", `{"id": "a1"}`, "/orders/a1", nil},
		{"ok", `{"id": 5}`, "/orders/5", nil},
		{"ok", `{"id": "a b"}`, "/ignored", ErrPath}, // on error the static path stays
		{"relative", `{"id": "x"}`, "/", ErrPath},
		{"failing", `{}`, "/", ErrPath},
		{"untyped", `{"id": 3}`, "/", ErrPath},
		{"untyped", `{"id": "/x"}`, "/x", nil},
	}
	for _, tt := range tests {
		m := msg("s", map[string]string{"kind": tt.kind, "payload": tt.payload})
		got := s.Match(m, nil)
		if len(got) != 1 {
			t.Fatalf("Match(%q) = %v, want one route", tt.payload, names(got))
		}
		if got[0].Path != tt.wantPath || !errors.Is(got[0].Err, tt.wantErr) || tt.wantErr == nil && got[0].Err != nil {
			t.Errorf("Match(%s %q) = path %q err %v, want path %q err %v", tt.kind, tt.payload, got[0].Path, got[0].Err, tt.wantPath, tt.wantErr)
		}
	}
}

func TestSchemaNotJSON(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: r, service: a, schema: schemas/order.v2.json}`)
	for _, payload := range []string{"", "not json", `{"id": "x"}`} {
		got := s.Match(msg("s", map[string]string{"payload": payload}), nil)
		if len(got) != 1 || !errors.Is(got[0].Err, ErrSchema) {
			t.Errorf("Match(%q) = %+v, want one route with ErrSchema", payload, got)
		}
	}
	got := s.Match(msg("s", map[string]string{"payload": `{"id": "x", "total": 3}`}), nil)
	if len(got) != 1 || got[0].Err != nil {
		t.Errorf("Match(valid) = %+v, want one route without error", got)
	}
}

// TestMatchJSON: a match says the payload is JSON only when matching
// decoded it as such, and then json.Valid agrees; a payload never decoded
// (no rule read the body) or not JSON says nothing.
func TestMatchJSON(t *testing.T) {
	body := compileString(t, `
routes:
  - {name: miss, service: a, match: 'body.kind == "never"'}
  - {name: hit, service: a, match: 'headers.type == "x"', continue: true}
  - {name: too, service: a}`)
	attrs := compileString(t, `routes: [{name: r, service: a, match: 'headers.type == "x"'}]`)
	tests := []struct {
		name    string
		set     *Set
		payload string
		want    bool
	}{
		{"decoded object", body, orderPayload, true},
		{"decoded with spaces", body, " [1, \"\\u00e9\"] ", true},
		{"decoded scalar", body, `"just a string"`, true},
		{"not JSON", body, `{"id": `, false},
		{"empty", body, "", false},
		{"valid but out of float range", body, `{"n": 1e400}`, false},
		{"never decoded", attrs, orderPayload, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.set.Match(msg("s", map[string]string{"payload": tt.payload, "type": "x"}), nil)
			if len(got) == 0 {
				t.Fatalf("Match(%q) matched nothing", tt.payload)
			}
			for _, mt := range got {
				if mt.JSON != tt.want {
					t.Errorf("Match(%q) route %s: JSON = %v, want %v", tt.payload, mt.Route.Name, mt.JSON, tt.want)
				}
				if mt.JSON && !json.Valid([]byte(tt.payload)) {
					t.Errorf("Match(%q): JSON = true, but json.Valid rejects it", tt.payload)
				}
			}
		})
	}
}

func TestCounters(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: strict, service: a, match: 'body.total > 1000'}
  - {name: rest, service: b}
default: {action: route, service: fb}`)
	strict, rest := s.Routes()[0], s.Routes()[1]
	s.Match(msg("s", map[string]string{"payload": `{"total": "lots"}`}), nil) // eval error -> rest
	s.Match(msg("s", map[string]string{"payload": `{"total": 2000}`}), nil)   // strict
	s.Match(msg("s", map[string]string{"payload": `nope`}), nil)              // nil body: eval error -> rest
	s.Explain(msg("s", map[string]string{"payload": `{"total": 2000}`}))      // not counted
	if strict.Matches() != 1 || strict.EvalErrors() != 2 {
		t.Errorf("strict: Matches() = %d, EvalErrors() = %d, want 1, 2", strict.Matches(), strict.EvalErrors())
	}
	if rest.Matches() != 2 || rest.EvalErrors() != 0 {
		t.Errorf("rest: Matches() = %d, EvalErrors() = %d, want 2, 0", rest.Matches(), rest.EvalErrors())
	}
	if s.DefaultRoute().Matches() != 0 {
		t.Errorf("default Matches() = %d, want 0", s.DefaultRoute().Matches())
	}
}

func TestExplain(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tests := []struct {
		name string
		msg  *Message
		want string
	}{
		{"fan-out", msg("orders", map[string]string{"type": "order.created", "payload": `{"total": 1}`}),
			`[{"route":"orders-audit","service":"audit","method":"PUT","path":"/audit","tags":[],"priority":50,"continue":true},` +
				`{"route":"orders","service":"order-service","method":"POST","path":"/orders","tags":[],"priority":0,"continue":false}]`},
		{"schema error and tags", msg("orders", map[string]string{"type": "order.created", "payload": `{"total": 5000, "region": "eu"}`}),
			`[{"route":"eu-big-orders","service":"order-priority","method":"POST","path":"/","tags":["v2"],"priority":100,"continue":false,` +
				`"error":"schema validation failed: at '/': missing property 'id'"}]`},
		{"default", msg("x", nil),
			`[{"route":"default","service":"fallback","method":"POST","path":"/","tags":[],"priority":0,"continue":false}]`},
	}
	for _, tt := range tests {
		b, err := json.Marshal(s.Explain(tt.msg))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tt.want {
			t.Errorf("%s: Explain(%q) = %s, want %s", tt.name, tt.msg.Payload, b, tt.want)
		}
	}
	for _, r := range s.Routes() {
		if r.Matches() != 0 {
			t.Errorf("route %s Matches() = %d after Explain, want 0", r.Name, r.Matches())
		}
	}
}

func TestMatchAppendsToDst(t *testing.T) {
	s := compileString(t, `routes: [{name: r, service: a}]`)
	dst := make([]Match, 1, 4)
	got := s.Match(msg("s", nil), dst[:0])
	if len(got) != 1 || &got[0] != &dst[0] {
		t.Errorf("Match did not reuse dst's backing array")
	}
}

func TestMatchConcurrent(t *testing.T) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	m := msg("orders", map[string]string{"type": "order.created", "payload": `{"id": "o", "total": 5}`})
	const workers, each = 4, 200
	done := make(chan string, workers)
	for range workers {
		go func() {
			var dst []Match
			for range each {
				dst = s.Match(m, dst[:0])
				if names(dst) != "[orders-audit orders]" {
					done <- names(dst)
					return
				}
			}
			done <- ""
		}()
	}
	for range workers {
		if got := <-done; got != "" {
			t.Fatalf("concurrent Match = %v, want [orders-audit orders]", got)
		}
	}
	if got := s.Routes()[2].Matches(); got != workers*each {
		t.Errorf("orders Matches() = %d, want %d", got, workers*each)
	}
}
