package rules

import (
	"testing"

	"github.com/expr-lang/expr"
)

// TestBodyFetchMatchesReflection runs each expression compiled with and
// without the bodyFetch patch on each body: results, and whether it
// failed, must be the same.
func TestBodyFetchMatchesReflection(t *testing.T) {
	bodies := map[string]any{
		"nil":    nil,
		"string": "plain",
		"order": map[string]any{
			"type": "order.created", "total": 150.5, "region": "eu",
			"customer": map[string]any{"tier": "gold", "tags": []any{"a", "b"}},
			"items":    []any{map[string]any{"sku": "A-1", "qty": 2.0}},
			"nothing":  nil,
		},
		"list": []any{1.0, "two", map[string]any{"three": 3.0}},
	}
	exprs := []string{
		`body.type == "order.created"`,
		`body.total > 100 && body.total <= 5000`,
		`body.customer.tier in ["gold", "platinum"]`,
		`body.items[0].sku == "A-1"`,
		`body.items[1].sku == "A-1"`,
		`body.customer.tags[1] == "b"`,
		`body["customer"]["tier"] == "gold"`,
		`body.missing == nil`,
		`body.missing.deeper == nil`,
		`body.nothing.x == nil`,
		`body?.customer?.tier == "gold"`,
		`body[2].three == 3`,
		`body[0] == 1`,
		`body.type.length == 1`,
		`len(body.items) == 1`,
		`body.customer.tags[-1] == "b"`,
	}
	for _, src := range exprs {
		plain, err := expr.Compile(src, expr.Env(exprEnv), expr.AsBool())
		if err != nil {
			t.Fatalf("compile %q: %v", src, err)
		}
		patched, err := expr.Compile(src, expr.Env(exprEnv), expr.AsBool(), bodyGetOption, expr.Patch(bodyFetch{}))
		if err != nil {
			t.Fatalf("compile %q with bodyFetch: %v", src, err)
		}
		for name, body := range bodies {
			env := map[string]any{varBody: body, varHeaders: map[string]string{}}
			want, wantErr := expr.Run(plain, env)
			got, gotErr := expr.Run(patched, env)
			if (wantErr != nil) != (gotErr != nil) || want != got {
				t.Errorf("%q on %s = %v, %v; want %v, %v (as without the patch)", src, name, got, gotErr, want, wantErr)
			}
		}
	}
}

func BenchmarkBodyFetch(b *testing.B) {
	body := map[string]any{"customer": map[string]any{"tier": "gold"}, "total": 150.5}
	env := map[string]any{varBody: body, varHeaders: map[string]string{}}
	src := `body.customer.tier in ["silver", "platinum"] || body.total > 1000`
	for _, c := range []struct {
		name string
		opts []expr.Option
	}{
		{"reflect", nil},
		{"patched", []expr.Option{bodyGetOption, expr.Patch(bodyFetch{})}},
	} {
		prog, err := expr.Compile(src, append([]expr.Option{expr.Env(exprEnv), expr.AsBool()}, c.opts...)...)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := expr.Run(prog, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
