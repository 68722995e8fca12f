package rules

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/expr-lang/expr/parser"
)

func TestBodyPaths(t *testing.T) {
	tests := []struct {
		expr string
		want string // sorted paths, "" for the whole body, [] for elemKey
	}{
		{`headers.type == "a"`, `[]`},
		{`body.total > 1`, `[total]`},
		{`body.a.b == 1 && body["c"] == 2`, `[a.b c]`},
		{`body?.a?.b == 1`, `[a.b]`},
		{`body.items[0].sku == "x"`, `[items.[].sku]`},
		{`body.items[-1].sku == "x" && body.items[1]["qty"] > 1`, `[items.[].qty items.[].sku]`},
		{`body.grid[0][2] == 1 && body.items[0] == "x"`, `[grid.[].[] items.[]]`},
		{`body?.items?.[0]?.sku == "x"`, `[items]`},
		{`body.items[headers.n].sku == "x"`, `[items]`},
		{`body.items[0:1] == []`, `[items]`},
		{"body.a[\"\x01#\"] == 1", `[a]`},
		{`len(body.items) > 0 && body.customer.tier == "gold"`, `[customer.tier items]`},
		{`body[headers.key] == 1`, `[]`},
		{`len(body) > 0`, `[]`},
		{`"k" in body`, `[]`},
		{`$env.headers.type == "a"`, `[]`},
		{`body.a.upper() == "x"`, `[a]`},
		{`all(body.items, .qty > 0)`, `[items]`},
	}
	for _, tt := range tests {
		tree, err := parser.Parse(tt.expr)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.expr, err)
		}
		var got []string
		for _, p := range bodyPaths(tree.Node) {
			got = append(got, strings.ReplaceAll(strings.Join(p, "."), elemKey, "[]"))
		}
		slices.Sort(got)
		if fmt.Sprint(got) != tt.want {
			t.Errorf("bodyPaths(%q) = %q, want %s", tt.expr, got, tt.want)
		}
	}
}

func TestBodyShapeOfSet(t *testing.T) {
	s := compileString(t, `routes:
  - {name: a, service: s, match: 'body.customer.tier == "gold" && body.total > 1'}
  - {name: b, service: s, match: 'headers.x == "y"', path_expr: '"/" + string(body.id)'}`)
	m := msg("s", map[string]string{"payload": `{"id": 7, "total": 2, "customer": {"tier": "gold", "name": "n"}, "items": [1, 2]}`})
	st := s.getState()
	defer s.putState(st)
	st.reset(m, s.uses, s.shape)
	got, _ := st.decodeBody()
	want := map[string]any{"id": 7.0, "total": 2.0, "customer": map[string]any{"tier": "gold"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decoded body = %v, want %v", got, want)
	}

	// Array elements: all kept, each cut to the keys read of any element.
	elems := compileString(t, `routes:
  - {name: a, service: s, match: 'body.items[0].sku == "A" || body.items[-1].qty > 1'}`)
	m = msg("s", map[string]string{"payload": `{"id": 7, "items": [{"sku": "A", "qty": 2, "price": 9}, {"sku": "B", "price": 1}, "x"]}`})
	est := elems.getState()
	defer elems.putState(est)
	est.reset(m, elems.uses, elems.shape)
	est.reuseMaps(elems.shapeNodes)
	got, _ = est.decodeBody()
	want = map[string]any{"items": []any{map[string]any{"sku": "A", "qty": 2.0}, map[string]any{"sku": "B"}, "x"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("decoded body = %v, want %v", got, want)
	}

	withSchema := compileString(t, `routes:
  - {name: a, service: s, match: 'body.total > 1', schema: schemas/order.v2.json}`)
	if withSchema.shape != nil {
		t.Errorf("a set with a schema has shape %v, want nil (whole body)", withSchema.shape)
	}
}
