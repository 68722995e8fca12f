package rules

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCompileSubscriptionErrors(t *testing.T) {
	tests := []struct {
		name, sub, decl string
		streams         []string
		want            string // substring of the error
	}{
		{"bad name", "Audit", `{"stream":"orders","match":"true"}`, nil, `name "Audit" must be lower-case letters, digits and '-'`},
		{"empty name", "", `{"stream":"orders","match":"true"}`, nil, `name "" must be`},
		{"not JSON", "a", `stream: orders`, nil, "value must be a JSON object with stream and match: invalid character"},
		{"JSON array", "a", `["orders"]`, nil, "value must be a JSON object with stream and match: got a JSON array"},
		{"JSON null", "a", `null`, nil, "value must be a JSON object with stream and match: got null"},
		{"unknown field", "a", `{"stream":"orders","match":"true","retries":3}`, nil, `unknown field "retries" (allowed: stream, match, method, path, path_expr, timeout, order_key)`},
		{"stream missing", "a", `{"match":"true"}`, nil, "stream is required"},
		{"stream list", "a", `{"stream":["orders"],"match":"true"}`, nil, "stream must be one stream name (a non-empty string)"},
		{"match missing", "a", `{"stream":"orders"}`, nil, "match is required"},
		{"stream not allowed", "a", `{"stream":"payments","match":"true"}`, []string{"orders"}, `stream "payments" is not one subscriptions may read (consul.subscription_streams: orders)`},
		{"bad expression", "a", `{"stream":"orders","match":"header.type == 1"}`, nil, "match: unknown name header (column 1)"},
		{"not boolean", "a", `{"stream":"orders","match":"deliveries + 1"}`, nil, "match: expected bool, but got int"},
		{"number timeout", "a", `{"stream":"orders","match":"true","timeout":2}`, nil, "timeout must be a string"},
		{"bad timeout", "a", `{"stream":"orders","match":"true","timeout":"2x"}`, nil, `timeout: "2x" is not a duration`},
		{"bad path", "a", `{"stream":"orders","match":"true","path":"audit"}`, nil, `path: "audit" must start with "/"`},
		{"bad method", "a", `{"stream":"orders","match":"true","method":"GE T"}`, nil, `method: "GE T" is not a valid HTTP method`},
		{"path_expr not string", "a", `{"stream":"orders","match":"true","path_expr":"1 + 2"}`, nil, "path_expr: expected string, but got int"},
		{"repeated field", "a", `{"stream":"orders","match":"true","match":"false"}`, nil, `field "match" repeated`},
		{"oversized", "a", `{"stream":"orders","match":"` + strings.Repeat("true && ", 70) + `true"}`, nil, "value is 594 bytes, more than Consul's limit of 512 for a meta value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CompileSubscription("audit", tt.sub, tt.decl, "k", tt.streams)
			if err == nil {
				t.Fatalf("CompileSubscription(%s) = route %q, want error %q", tt.decl, r.Name, tt.want)
			}
			if !errors.Is(err, ErrDeclaration) {
				t.Errorf("error %v does not wrap ErrDeclaration", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CompileSubscription(%s) error = %q, want it to contain %q", tt.decl, err, tt.want)
			}
		})
	}
}

func TestCompileSubscription(t *testing.T) {
	r, err := CompileSubscription("audit", "orders", `{"stream":"orders","match":"headers.type startsWith \"order.\"","method":"put","path_expr":"\"/audit/\" + id","timeout":"2s"}`, "key1", []string{"orders"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "audit/orders" || r.Service != "audit" || r.Method != "PUT" || r.Timeout.String() != "2s" ||
		!slices.Equal(r.Streams, []string{"orders"}) || !slices.Equal(r.Tags, []string{"key1"}) || !r.Continue || !r.Subscription {
		t.Errorf("route = %+v", r)
	}
}

func TestWithSubscriptions(t *testing.T) {
	file := compileString(t, `
routes:
  - name: created
    streams: [orders]
    match: 'headers.type == "order.created"'
    service: orders
default:
  action: dlq
`)
	sub := func(service, name, decl string) *Route {
		t.Helper()
		r, err := CompileSubscription(service, name, decl, name+"@k", nil)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	set := file.WithSubscriptions([]*Route{
		sub("audit", "all", `{"stream":"orders","match":"true","path":"/audit"}`),
		sub("billing", "big", `{"stream":"orders","match":"body.total > 100"}`),
		sub("audit", "pay", `{"stream":"payments","match":"true"}`),
	})
	tests := []struct {
		name    string
		stream  string
		fields  map[string]string
		want    []string
		wantNil bool
	}{
		{"file route and subscription", "orders", map[string]string{"type": "order.created", "payload": `{"total": 5}`}, []string{"created", "audit/all"}, false},
		{"subscriptions only", "orders", map[string]string{"type": "order.shipped", "payload": `{"total": 500}`}, []string{"audit/all", "billing/big"}, false},
		{"other stream", "payments", map[string]string{"type": "x"}, []string{"audit/pay"}, false},
		{"nothing", "events", map[string]string{"type": "x"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := routeNames(set.Match(NewMessage(tt.stream, "1-0", tt.fields, 1), nil))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Match(%s %v) = %v, want %v", tt.stream, tt.fields, got, tt.want)
			}
			// The file set alone is unchanged.
			base := routeNames(file.Match(NewMessage(tt.stream, "1-0", tt.fields, 1), nil))
			if slices.ContainsFunc(base, func(n string) bool { return strings.Contains(n, "/") }) {
				t.Errorf("file set matched a subscription: %v", base)
			}
		})
	}
	if got := set.Services(); !slices.Equal(got, []string{"audit", "billing", "orders"}) {
		t.Errorf("Services() = %v", got)
	}
	if got := set.WithSubscriptions(nil); len(got.Subscriptions()) != 0 || got.Version() != file.Version() || len(got.Routes()) != 1 {
		t.Errorf("WithSubscriptions(nil) on a composed set kept subscriptions or lost routes")
	}
	ex := set.Explain(NewMessage("orders", "1-0", map[string]string{"type": "order.shipped"}, 1))
	if len(ex) != 1 || ex[0].Route != "audit/all" || !ex[0].Subscription || ex[0].Path != "/audit" {
		t.Errorf("Explain = %+v", ex)
	}
}

func routeNames(ms []Match) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Route.Name)
	}
	return out
}
