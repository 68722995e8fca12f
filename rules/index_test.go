package rules

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Pieces random rule sets and messages are built from. The values overlap
// on purpose, so that indexed, generic, fan-out and shadowed routes mix.
var (
	genStreams = []string{"orders", "payments", "users"}
	genTypes   = []string{"a", "b", "c", ""}
	genKinds   = []string{"x", "y"}
	genConds   = []string{
		`headers.type == "%s"`,
		`"%s" == headers.type`,
		`headers.type in ["%s", "b"]`,
		`stream == "orders"`,
		`stream in ["payments", "users"]`,
		`body.kind == "%s"`,
		`body.nested?.kind == "%s"`,
		`body.total > 10`,
		`deliveries > 1`,
		`headers.type == "%s" || body.kind == "x"`,
		`not (headers.type == "%s")`,
		`payload contains "urgent"`,
		`true`,
		`len(body) > 1`,
		`body.nested.kind == "%s"`,
		`"kind" in body`,
		`body.list[0] == 1`,
		`body.nested == nil`,
		`body?.nested?.deep?.x == "%s"`,
		`string(body.nested) contains "deep"`,
		`body.list[0].a == 2`,
		`body.list[1].kind == "%s"`,
		`body.list[-1].kind == "%s"`,
		`body.list[0].a.b == 3 || body.list[2].kind == "%s"`,
		`body.nested.list[0].kind == "%s"`,
		`body.list[0][1].kind == "%s"`,
		`len(body.list) > 1`,
		`body.kind in ["", "%s"]`,
		`body.list[0].kind in ["", "%s"]`,
	}
	genPayloads = []string{
		``, `not json`, `null`, `[1, 2]`, `{"kind": "x"}`, `{"kind": "y", "total": 20}`,
		`{"kind": 5}`, `{"total": "many"}`, `{"nested": {"kind": "x"}, "total": 11}`, `{"nested": "flat"}`,
		`{"kind": "x", "note": "urgent"}`,
		`{"kind": "x", "list": [1, {"a": 2}], "nested": {"kind": "y", "deep": {"x": "x"}}}`,
		`{"kind": "y", "big": 1e400}`, `{"kind": "x", "junk": "\q"}`, `{"kind": "x", "junk": ["\u00e9", {"a": [null]}]}`,
		`{"nested": {"kind": "x", "other": [1,2,3]}, "kind": "y"}`, `{"kind": "x", "nested": {"kind": "x"} `,
		`{"list": [{"a": 2, "kind": "x"}, {"a": 3, "kind": "y", "z": [1]}]}`,
		`{"list": [{"a": {"b": 3}, "kind": "y"}, {"kind": "x"}, {"kind": "x", "kind": "y", "a": 2}], "kind": "x"}`,
		`{"list": {"a": 2, "kind": "x"}, "kind": "y"}`, `{"list": ["x", 1, null], "nested": {"list": {"kind": "x"}}}`,
		`{"list": [], "nested": {"list": [{"kind": "x", "n": 1}, 2]}}`, `{"list": [[0, {"kind": "x"}], {"kind": "y"}]}`,
		`{"list": [{"a": 2}, {"a": 1e400}]}`, `{"list": [{"a": 2, "kind": "x"}, {"kind": "\u0078"}]}`,
	}
)

func genRules(r *rand.Rand, n int) string {
	var b strings.Builder
	b.WriteString("routes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: r%d\n    service: s%d\n", i, r.IntN(4))
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "    streams: [%s]\n", genStreams[r.IntN(len(genStreams))])
		}
		if r.IntN(4) > 0 {
			var conj []string
			for range 1 + r.IntN(3) {
				c := genConds[r.IntN(len(genConds))]
				if strings.Contains(c, "%s") {
					vals := genTypes
					if strings.Contains(c, "kind") {
						vals = genKinds
					}
					c = fmt.Sprintf(c, vals[r.IntN(len(vals))])
				}
				conj = append(conj, c)
			}
			op := " && "
			if r.IntN(3) == 0 {
				op = " || "
			}
			fmt.Fprintf(&b, "    match: '%s'\n", strings.Join(conj, op))
		}
		if r.IntN(3) == 0 {
			fmt.Fprintf(&b, "    priority: %d\n", r.IntN(3))
		}
		if r.IntN(3) == 0 {
			b.WriteString("    continue: true\n")
		}
	}
	if r.IntN(2) == 0 {
		b.WriteString("default: {action: route, service: fb}\n")
	}
	return b.String()
}

func genMessage(r *rand.Rand) *Message {
	fields := map[string]string{"payload": genPayloads[r.IntN(len(genPayloads))]}
	if t := genTypes[r.IntN(len(genTypes))]; t != "" || r.IntN(2) == 0 {
		fields["type"] = t
	}
	return NewMessage(genStreams[r.IntN(len(genStreams))], "1-0", fields, int64(1+r.IntN(2)))
}

// checkAgainstLinear compares Match with the reference linear scan for one
// generated rule set and many messages.
func checkAgainstLinear(t *testing.T, seed uint64, messages int) {
	r := rand.New(rand.NewPCG(seed, 1))
	src := genRules(r, 1+r.IntN(40))
	s := compileString(t, src)
	for range messages {
		m := genMessage(r)
		got, want := names(s.Match(m, nil)), names(linearMatch(s, m))
		if got != want {
			t.Fatalf("seed %d: Match(%s %v %q) = %v, want %v (linear scan)\nrules:\n%s", seed, m.Stream, m.Headers, m.Payload, got, want, src)
		}
	}
}

func TestMatchAgreesWithLinearScan(t *testing.T) {
	for seed := range uint64(300) {
		checkAgainstLinear(t, seed, 200)
	}
}

func FuzzMatchAgreesWithLinearScan(f *testing.F) {
	for _, seed := range []uint64{0, 1, 42, 1 << 40} {
		f.Add(seed)
	}
	// Fewer messages per input than the test: an input must finish well
	// within the fuzzing engine's per-input deadline on a busy machine.
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkAgainstLinear(t, seed, 30)
	})
}

func TestIndexSelectsBuckets(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: by-type, service: s, match: 'headers.type == "a" && body.total > 1'}
  - {name: by-stream, service: s, streams: [orders]}
  - {name: by-in, service: s, match: 'headers.type in ["b", "c"]'}
  - {name: by-body, service: s, match: 'body.kind == "k"'}
  - {name: generic, service: s, match: 'deliveries > 0 || headers.type == "a"'}
`)
	var generic []string
	for _, i := range s.idx.generic {
		generic = append(generic, s.routes[i].Name)
	}
	if fmt.Sprint(generic) != "[generic]" {
		t.Errorf("generic routes = %v, want [generic]", generic)
	}
	got := map[string]string{}
	for _, d := range s.idx.dims {
		for v, l := range d.buckets {
			for _, i := range l {
				got[s.routes[i].Name] = fmt.Sprintf("%d:%s=%s", d.key.kind, d.key.name, v)
			}
		}
	}
	want := map[string]string{"by-type": "1:type=a", "by-stream": "0:=orders", "by-in": "1:type=c", "by-body": "2:kind=k"}
	for name, w := range want {
		if name == "by-in" && got[name] == "1:type=b" {
			continue // filed under both values
		}
		if got[name] != w {
			t.Errorf("route %s indexed as %q, want %q", name, got[name], w)
		}
	}
}

func TestBodyDecodedOnlyWhenNeeded(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: header-only, service: s, match: 'headers.type == "a"'}
  - {name: reads-body, service: s, match: 'headers.type == "b" && body.total > 1'}
`)
	tests := []struct {
		typ         string
		wantDecoded bool
	}{{"a", false}, {"b", true}, {"zzz", false}}
	for _, tt := range tests {
		st := s.getState()
		st.reset(msg("s", map[string]string{"type": tt.typ, "payload": `{"total": 2}`}), s.uses, s.shape)
		s.idx.start(st)
		for {
			i, ok := st.next()
			if !ok {
				break
			}
			st.eval(s.routes[i], false)
		}
		if decoded := st.state != bodyPending; decoded != tt.wantDecoded {
			t.Errorf("type %q: body decoded = %v, want %v", tt.typ, decoded, tt.wantDecoded)
		}
		s.putState(st)
	}
}

func TestResidualConditions(t *testing.T) {
	s := compileString(t, `
routes:
  - {name: only-type, service: s, match: 'headers.type == "a"'}
  - {name: type-and-body, service: s, match: 'headers.type == "b" && body.total > 1'}
  - {name: body-and-type, service: s, match: 'body.kind == "k" && headers.type == "c"'}
  - {name: generic, service: s, match: 'deliveries > 1'}
`)
	tests := []struct {
		route         string
		wantEval      bool
		wantReadsBody bool
	}{
		{"only-type", false, false},   // the index decides alone
		{"type-and-body", true, true}, // body.total > 1 is left
		{"body-and-type", true, true}, // indexed on headers.type, body.kind left
		{"generic", true, false},
	}
	for i, tt := range tests {
		r := s.Routes()[i]
		if r.Name != tt.route {
			t.Fatalf("Routes()[%d] = %s, want %s", i, r.Name, tt.route)
		}
		if (r.eval != nil) != tt.wantEval || r.readsBody != tt.wantReadsBody {
			t.Errorf("route %s: evaluates = %v, reads body = %v; want %v, %v", r.Name, r.eval != nil, r.readsBody, tt.wantEval, tt.wantReadsBody)
		}
	}
	for _, tc := range []struct {
		fields map[string]string
		want   string
	}{
		{map[string]string{"type": "a"}, "[only-type]"},
		{map[string]string{"type": "b", "payload": `{"total": 2}`}, "[type-and-body]"},
		{map[string]string{"type": "b", "payload": `{"total": 0}`}, "[]"},
		{map[string]string{"type": "c", "payload": `{"kind": "k"}`}, "[body-and-type]"},
		{map[string]string{"type": "c", "payload": `{"kind": "j"}`}, "[]"},
	} {
		m := msg("s", tc.fields)
		if got := names(s.Match(m, nil)); got != tc.want {
			t.Errorf("Match(%v) = %v, want %v", tc.fields, got, tc.want)
		}
	}
}
