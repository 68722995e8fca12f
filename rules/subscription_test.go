package rules

import (
	"errors"
	"fmt"
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

// TestSubscriptionOrderKey: order_key goes through the file routes'
// compiler, so a declaration gets it (and its checks) like a file route.
func TestSubscriptionOrderKey(t *testing.T) {
	r, err := CompileSubscription("audit", "o", `{"stream":"orders","match":"true","order_key":"body.id"}`, "k", nil)
	if err != nil || r.OrderKey != "body.id" {
		t.Fatalf("CompileSubscription with order_key = %+v, %v", r, err)
	}
	ms := compileString(t, "routes: []\n").WithSubscriptions([]*Route{r}).Match(
		NewMessage("orders", "1-0", map[string]string{"payload": `{"id":"o-7"}`}, 1), nil)
	if len(ms) != 1 || ms[0].Key != "o-7" {
		t.Errorf("Match = %+v, want key o-7", ms)
	}
	// A stream a subscription with order_key reads is ordered.
	set := compileString(t, "routes: []\n").WithSubscriptions([]*Route{r})
	if got := set.OrderedStreams([]string{"orders", "payments"}); !slices.Equal(got, []string{"orders"}) {
		t.Errorf("OrderedStreams = %v, want [orders]", got)
	}
	if _, err := CompileSubscription("audit", "o", `{"stream":"orders","match":"true","order_key":"nope"}`, "k", nil); err == nil ||
		!strings.Contains(err.Error(), "order_key") {
		t.Errorf("bad order_key: err = %v, want one naming order_key", err)
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

// BenchmarkMatchWithSubscriptions: 100 file routes plus n subscriptions on
// the messages' streams (each evaluated for every message of its stream).
func BenchmarkMatchWithSubscriptions(b *testing.B) {
	for _, n := range []int{0, 10, 50} {
		b.Run(fmt.Sprintf("subscriptions=%d", n), func(b *testing.B) {
			file := compileString(b, benchRules(100))
			msgs := benchMessages(100)
			var subs []*Route
			for i := 0; i < n; i++ {
				decl := fmt.Sprintf(`{"stream":%q,"match":"headers.type == 'type-%d' && body.total > %d"}`, msgs[i%len(msgs)].Stream, i, 1000+i)
				r, err := CompileSubscription(fmt.Sprintf("svc-%d", i), "sub", decl, "k", nil)
				if err != nil {
					b.Fatal(err)
				}
				subs = append(subs, r)
			}
			s := file.WithSubscriptions(subs)
			dst := make([]Match, 0, 8)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = s.Match(msgs[i%len(msgs)], dst[:0])
			}
		})
	}
}

// FuzzCompileSubscription: any declaration value compiles or is rejected
// with ErrDeclaration, never panics, and a compiled one can be matched.
func FuzzCompileSubscription(f *testing.F) {
	for _, s := range []string{
		`{"stream":"orders","match":"true"}`, `{"stream":"orders","match":"body.a > 1","path_expr":"'/' + id"}`,
		`{"stream":"orders"}`, `[]`, `null`, `"x"`, `{"stream":1}`, `{"stream":"o","match":"true","timeout":"1s","method":"put"}`,
		`{"stream":"o","match":"true","stream":"p"}`, `{`, `{"stream":"o","match":{"a":1}}`,
	} {
		f.Add(s)
	}
	file := compileString(f, "routes: []\n")
	m := NewMessage("orders", "1-0", map[string]string{"type": "x", "payload": `{"a": 2}`}, 1)
	f.Fuzz(func(t *testing.T, decl string) {
		r, err := CompileSubscription("svc", "name", decl, "k", nil)
		if err != nil {
			if r != nil || !errors.Is(err, ErrDeclaration) {
				t.Fatalf("CompileSubscription(%q) = %v, %v", decl, r, err)
			}
			return
		}
		file.WithSubscriptions([]*Route{r}).Match(m, nil)
	})
}

// TestSubscriptionIndexMatchesLinearScan: subscriptions narrowed by their
// index match exactly what evaluating every one of them would.
func TestSubscriptionIndexMatchesLinearScan(t *testing.T) {
	file := compileString(t, "routes:\n  - {name: all, service: s, continue: true}\n")
	exprs := []string{
		"headers.type == 'a'", "headers.type in ['a', 'b']", "body.kind == 'x' && body.n > 1",
		"true", "headers.type == 'b' || body.n > 5", "stream == 'o1' && headers.type == 'c'", "body.n > 3",
	}
	var subs []*Route
	for i, e := range exprs {
		for j, stream := range []string{"o1", "o2"} {
			r, err := CompileSubscription(fmt.Sprintf("svc%d", i), fmt.Sprintf("s%d", j),
				fmt.Sprintf(`{"stream":%q,"match":%q}`, stream, e), "k", nil)
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, r)
		}
	}
	set := file.WithSubscriptions(subs)
	linear := &Set{routes: append([]*Route{file.Routes()[0]}, subs...)}
	for _, stream := range []string{"o1", "o2", "o3"} {
		for _, typ := range []string{"a", "b", "c", ""} {
			for _, payload := range []string{`{"kind":"x","n":2}`, `{"kind":"y","n":9}`, `{"n":"s"}`, `not json`} {
				m := NewMessage(stream, "1-0", map[string]string{"type": typ, "payload": payload}, 1)
				got := routeNames(set.Match(m, nil))
				want := routeNames(linearMatch(linear, m))
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("Match(%s type=%q %s) = %v, linear scan %v", stream, typ, payload, got, want)
				}
			}
		}
	}
}
