package rules

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzLoad: parsing and compiling arbitrary rules never panics, and a set
// that compiles can be matched and checked.
func FuzzLoad(f *testing.F) {
	sample, err := os.ReadFile("testdata/rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	for _, s := range []string{
		"", "routes: []", "routes: [{name: a, service: s}]", "default: {action: route, service: x}",
		"routes:\n  - {name: a, service: s, match: 'headers.type == \"x\" && body.a.b in [\"c\"]'}",
		"routes:\n  - {name: a, service: s, path_expr: '\"/\" + body.id', streams: [a, b], tags: [t]}",
		"routes: &a [*a]", "routes:\n  - name: a\n    name: b", "a: b: c", "routes: [{name: [x]}]",
	} {
		f.Add([]byte(s))
	}
	m := NewMessage("a", "1-0", map[string]string{"type": "x", "payload": `{"a": {"b": "c"}, "id": "i"}`}, 1)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Compile([]Source{{Name: "testdata/fuzz.yaml", Data: data}})
		if err != nil {
			if s != nil {
				t.Fatal("Compile returned both a set and an error")
			}
			return
		}
		s.Match(m, nil)
		s.Explain(m)
		s.warnings()
	})
}

// FuzzNewMessage: building a message and its expression environment from
// arbitrary entry fields never panics, and neither does matching it.
func FuzzNewMessage(f *testing.F) {
	s, err := Load("testdata/rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	generic := compileString(f, `routes:
  - {name: g, service: s, match: 'len(payload) > 3 && body?.x?.y == "z" && id != "" && deliveries > 0 && headers[stream] == ""'}
  - {name: h, service: s, path_expr: '"/" + string(body)', continue: true}`)
	f.Add("orders", "1-0", "type", "order.created", `{"id": "a", "total": 1500, "region": "eu"}`, int64(1))
	f.Add("", "", "payload", "", "", int64(0))
	f.Add("x", "y", "content_type", "text/plain", `{"x": {"y": "z"}}`, int64(-1))
	f.Add("x", "y", "", "", `[[[[]]]]`, int64(1<<40))
	f.Fuzz(func(t *testing.T, stream, id, key, value, payload string, deliveries int64) {
		fields := map[string]string{key: value, "payload": payload}
		m := NewMessage(stream, id, fields, deliveries)
		if key != "payload" && m.Payload != payload {
			t.Fatalf("NewMessage: Payload = %q, want %q", m.Payload, payload)
		}
		for _, set := range []*Set{s, generic} {
			for _, mt := range set.Match(m, nil) {
				if mt.Route == nil || mt.Err == nil && mt.Path == "" {
					t.Fatalf("Match(%q) returned %+v", payload, mt)
				}
				if mt.JSON && !json.Valid([]byte(m.Payload)) {
					t.Fatalf("Match(%q): JSON = true, but json.Valid rejects the payload", m.Payload)
				}
			}
			set.Explain(m)
		}
	})
}
