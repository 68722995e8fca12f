package rules

import (
	"errors"
	"testing"
)

func TestOrderKey(t *testing.T) {
	s := compileString(t, `
routes:
  - name: by-account
    service: a
    match: 'headers.kind == "acct"'
    order_key: 'body.account'
    continue: true
  - name: by-header
    service: b
    match: 'headers.kind == "acct"'
    order_key: 'headers.tenant + "/" + stream'
    continue: true
  - name: unordered
    service: c
`)
	tests := []struct {
		name      string
		fields    map[string]string
		wantKeys  []string // per matched route, in order
		wantErr   []error
		wantRoute int
	}{
		{"string key", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{"account":"A-1"}`},
			[]string{"A-1", "t1/s", ""}, []error{nil, nil, nil}, 3},
		{"number key", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{"account":42}`},
			[]string{"42", "t1/s", ""}, []error{nil, nil, nil}, 3},
		{"empty key", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{"account":""}`},
			[]string{"", "t1/s", ""}, []error{ErrOrderKey, nil, nil}, 3},
		{"missing field", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{}`},
			[]string{"", "t1/s", ""}, []error{ErrOrderKey, nil, nil}, 3},
		{"not json", map[string]string{"kind": "acct", "tenant": "t1", "payload": `x`},
			[]string{"", "t1/s", ""}, []error{ErrOrderKey, nil, nil}, 3},
		{"object key", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{"account":{"x":1}}`},
			[]string{"", "t1/s", ""}, []error{ErrOrderKey, nil, nil}, 3},
		{"unordered only", map[string]string{"kind": "other"}, []string{""}, []error{nil}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Match(msg("s", tt.fields), nil)
			if len(got) != tt.wantRoute {
				t.Fatalf("Match(%v) = %v, want %d routes", tt.fields, names(got), tt.wantRoute)
			}
			for i, m := range got {
				if m.Key != tt.wantKeys[i] || !errors.Is(m.Err, tt.wantErr[i]) || tt.wantErr[i] == nil && m.Err != nil {
					t.Errorf("Match(%v)[%s] = key %q err %v, want key %q err %v", tt.fields, m.Route.Name, m.Key, m.Err, tt.wantKeys[i], tt.wantErr[i])
				}
			}
		})
	}
	ex := s.Explain(msg("s", map[string]string{"kind": "acct", "tenant": "t1", "payload": `{"account":"A-1"}`}))
	if len(ex) != 3 || ex[0].OrderKey != "A-1" || ex[1].OrderKey != "t1/s" || ex[2].OrderKey != "" {
		t.Errorf("Explain = %+v, want order keys A-1, t1/s, none", ex)
	}
	if r := s.Routes()[0]; r.OrderKey != "body.account" {
		t.Errorf("Route.OrderKey = %q, want the expression as written", r.OrderKey)
	}
}

// TestOrderedStreams checks which consumed streams a rule set orders.
func TestOrderedStreams(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: a, service: a, streams: [orders, other], order_key: 'id'}
  - {name: b, service: b, streams: [payments]}
`)
	got := s.OrderedStreams([]string{"orders", "payments", "events"})
	if len(got) != 1 || got[0] != "orders" {
		t.Errorf("OrderedStreams = %v, want [orders]", got)
	}
	all := compileString(t, "routes:\n  - {name: a, service: a, order_key: 'id'}\n")
	if got := all.OrderedStreams([]string{"x", "y"}); len(got) != 2 {
		t.Errorf("OrderedStreams(no streams filter) = %v, want [x y]", got)
	}
	none := compileString(t, "routes:\n  - {name: a, service: a}\n")
	if got := none.OrderedStreams([]string{"x"}); len(got) != 0 {
		t.Errorf("OrderedStreams(unordered) = %v, want none", got)
	}
}
