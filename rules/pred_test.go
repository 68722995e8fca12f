package rules

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/expr-lang/expr/vm"
)

// Pieces of the expressions TestPredAgreesWithExpr generates: fields of
// every JSON type (and missing, and reached through a non-object),
// constants of every literal type pred takes and some it does not.
var (
	predSels = []string{
		`body.s`, `body.n`, `body.i`, `body.b`, `body.z`, `body.o`, `body.o.s`, `body.o.n`, `body.missing`,
		`body.a[0].k`, `body.a[1]`, `body.a[5].k`, `body.s.x`, `body.o["s"]`, `body.a[0]`, `body.o?.s`,
		`headers.type`, `headers.missing`, `headers["type"]`, `stream`, `body.a[-1].k`,
	}
	predConsts = []string{`"x"`, `""`, `"10"`, `"b"`, `10`, `0`, `-3`, `10.5`, `1e3`, `true`, `nil`}
	predOpsGen = []string{`==`, `!=`, `<`, `<=`, `>`, `>=`}
	predLists  = []string{`["x", "y"]`, `[""]`, `["10", "b"]`, `["x", 10]`, `[]`}
	predPays   = []string{
		`{"s": "x", "n": 10, "i": 10.5, "b": true, "z": null, "o": {"s": "b", "n": -3}, "a": [{"k": "x"}, "10"]}`,
		`{"s": "10", "n": 1000, "i": -1, "b": false, "o": {"s": 10}, "a": [{"k": 10}, {"k": "y"}]}`,
		`{"s": "", "n": 0, "o": "flat", "a": {"k": "x"}}`, `{"s": "b", "n": 1e3, "o": [1], "a": []}`,
		`{"s": ["x"], "n": "10", "o": {"s": null}, "a": [5, "x"]}`, `{"s": "y", "n": 10.000000000000001}`,
		`null`, `[1, 2]`, `"x"`, `not json`, ``, `{"s": "x", "n": 1e400}`,
	}
)

func genPredExpr(r *rand.Rand, depth int) string {
	if depth > 0 && r.IntN(3) > 0 {
		switch r.IntN(5) {
		case 0:
			return "!(" + genPredExpr(r, depth-1) + ")"
		case 1:
			return "not (" + genPredExpr(r, depth-1) + ")"
		case 2:
			return "(" + genPredExpr(r, depth-1) + " || " + genPredExpr(r, depth-1) + ")"
		default:
			return genPredExpr(r, depth-1) + " && " + genPredExpr(r, depth-1)
		}
	}
	sel := predSels[r.IntN(len(predSels))]
	switch r.IntN(6) {
	case 0:
		return sel + " in " + predLists[r.IntN(len(predLists))]
	case 1:
		return predConsts[r.IntN(len(predConsts))] + " " + predOpsGen[r.IntN(len(predOpsGen))] + " " + sel
	}
	return sel + " " + predOpsGen[r.IntN(len(predOpsGen))] + " " + predConsts[r.IntN(len(predConsts))]
}

// TestPredAgreesWithExpr: for many generated expressions, the pred of
// the expression (and of each residual the index may leave of it) gives
// the VM's result and fails exactly when the VM does.
func TestPredAgreesWithExpr(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 13))
	var msgs []*Message
	for _, p := range predPays {
		for _, h := range []map[string]string{nil, {"type": "x"}, {"type": "10"}} {
			fields := map[string]string{"payload": p}
			for k, v := range h {
				fields[k] = v
			}
			msgs = append(msgs, NewMessage("x", "1-0", fields, 1))
		}
	}
	covered, residuals := 0, 0
	for range 3000 {
		src := genPredExpr(r, 3)
		if r.IntN(2) == 0 { // an indexable conjunct, for residuals
			src = []string{`body.s == "x"`, `headers.type in ["x", "10"]`, `"b" == body.o.s`, `body.a[0].k == "x"`}[r.IntN(4)] + " && " + src
		}
		p, err := compileExpr(src, reflect.Bool)
		if err != nil {
			continue // a type error the checker finds (e.g. "x" < 10)
		}
		type variant struct {
			prog *vm.Program
			pr   *pred
			name string
		}
		variants := []variant{{p.prog, buildPred(p.tree, -1), src}}
		for _, c := range p.conds {
			if prog, _ := p.residual(c); prog != nil {
				variants = append(variants, variant{prog, buildPred(p.tree, c.loc), fmt.Sprintf("%s without conjunct at %d", src, c.loc)})
			}
		}
		for i, v := range variants {
			if v.pr == nil {
				continue
			}
			covered++
			if i > 0 {
				residuals++
			}
			for _, m := range msgs {
				st := newEvalState()
				st.reset(m, ^varSet(0), nil)
				st.decodeBody()
				want, wantErr := st.run(v.prog)
				got, gotErr := v.pr.eval(st)
				if wantErr != nil {
					want = false
				}
				if got != want || (gotErr != nil) != (wantErr != nil) {
					t.Fatalf("pred(%s) on %q %v = %v, %v; expr gives %v, %v", v.name, m.Payload, m.Headers, got, gotErr, want, wantErr)
				}
			}
		}
	}
	if covered < 1000 || residuals < 100 {
		t.Fatalf("only %d expressions (%d residuals) had a pred; the generator no longer exercises it", covered, residuals)
	}
}

func TestBuildPredCoverage(t *testing.T) {
	tests := []struct {
		expr string
		want bool
	}{
		{`body.type == "order.created" && body.total > 100 && body.total <= 5000`, true},
		{`headers.type == "evt.1" || body.customer.tier in ["t1", "u1"]`, true},
		{`body.items[0].sku == "S-3" || (body.customer.country in ["c3", "d3"] && body.priority >= 3)`, true},
		{`100 < body.total && not (stream == "x")`, true},
		{`body?.a == "x"`, false},
		{`body.a.upper() == "X"`, false},
		{`len(body.items) > 1`, false},
		{`body.total + 1 > 2`, false},
		{`body.a == headers.b`, false},
		{`body.a in ["x", 1]`, false},
		{`body.items[-1].sku == "x"`, false},
		{`let x = body.a; x == "y"`, false},
		{`true`, false},
	}
	for _, tt := range tests {
		p, err := compileExpr(tt.expr, reflect.Bool)
		if err != nil {
			t.Fatalf("compileExpr(%q): %v", tt.expr, err)
		}
		if got := buildPred(p.tree, -1) != nil; got != tt.want {
			t.Errorf("buildPred(%q) != nil = %v, want %v", tt.expr, got, tt.want)
		}
	}
}
