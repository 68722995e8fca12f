package rules

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		name  string
		rules string
		want  []string // Problem.String() of every problem, "W " prefixed for warnings
	}{
		{
			name:  "valid sample has no problems",
			rules: "routes:\n  - {name: a, service: s, match: 'headers.type == \"a\"'}\n  - {name: b, service: s, match: 'headers.type == \"b\"'}\n",
		},
		{
			name: "on_failure onto a stream the route reads",
			rules: `routes:
  - {name: own, service: s, streams: [a, b], on_failure: b, match: 'headers.t == "x"'}
  - {name: any, service: s, on_failure: c, match: 'headers.t == "y"'}
  - {name: fine, service: s, streams: [a], on_failure: b, match: 'headers.t == "z"'}
`,
			want: []string{
				`W f.yaml:2: route "own": may read its own on_failure stream "b": a failure event it matches and fails again makes another (list streams: without it, or match on headers.failed_route)`,
				`W f.yaml:3: route "any": may read its own on_failure stream "c": a failure event it matches and fails again makes another (list streams: without it, or match on headers.failed_route)`,
			},
		},
		{
			name: "route after a catch-all is unreachable",
			rules: `routes:
  - {name: all, service: s}
  - {name: never, service: s, match: 'headers.type == "a"'}
`,
			want: []string{`W f.yaml:3: route "never": unreachable: route "all" (f.yaml:2) takes every message first and does not continue`},
		},
		{
			name: "match true is a catch-all; higher priority later in the file still shadows",
			rules: `routes:
  - {name: never, service: s, match: 'stream == "x"'}
  - {name: all, service: s, match: 'true', priority: 1}
`,
			want: []string{`W f.yaml:2: route "never": unreachable: route "all" (f.yaml:3) takes every message first and does not continue`},
		},
		{
			name: "identical condition, spacing aside",
			rules: `routes:
  - {name: first, service: s, match: 'headers.type=="a" && body.n > 1'}
  - {name: second, service: s, match: '(headers.type == "a") && body.n > 1'}
`,
			want: []string{`W f.yaml:3: route "second": unreachable: route "first" (f.yaml:2) takes every message first and does not continue`},
		},
		{
			name: "continue does not shadow",
			rules: `routes:
  - {name: tap, service: s, continue: true}
  - {name: real, service: s}
`,
		},
		{
			name: "narrower streams do not shadow",
			rules: `routes:
  - {name: orders-only, service: s, streams: [orders]}
  - {name: everything, service: s, streams: [orders, users]}
  - {name: users, service: s, streams: [users]}
`,
			want: []string{`W f.yaml:4: route "users": unreachable: route "everything" (f.yaml:3) takes every message first and does not continue`},
		},
		{
			name:  "path ignored with path_expr",
			rules: "routes:\n  - {name: p, service: s, path: /a, path_expr: '\"/b\"'}\n",
			want:  []string{`W f.yaml:2: route "p": path is ignored because path_expr is set`},
		},
		{
			name:  "default service without action route",
			rules: "routes:\n  - {name: a, service: s}\ndefault:\n  action: dlq\n  service: fallback\n",
			want:  []string{`W f.yaml:5: default.service is ignored: it is only used with action: route (action is dlq)`},
		},
		{
			name:  "errors are reported, no warnings",
			rules: "routes:\n  - {name: a}\n",
			want:  []string{`f.yaml:2: route "a": service is required`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f.yaml")
			writeFile(t, path, tt.rules)
			var got []string
			for _, p := range Check(path) {
				s := strings.ReplaceAll(p.String(), dir+string(filepath.Separator), "")
				if p.Warning {
					s = "W " + s
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Check(%q) =\n%s\nwant\n%s", tt.rules, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCheckSeveralPathsAndIOErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "routes: [{name: a, service: s}]\n")
	other := filepath.Join(dir, "other.yaml")
	writeFile(t, other, "routes: [{name: a, service: s}]\n") // same name: separate sets, no conflict
	missing := filepath.Join(dir, "missing.yaml")
	got := Check(good, other, missing)
	if len(got) != 1 || got[0].File != missing || got[0].Warning || !strings.Contains(got[0].Message, "no such file") {
		t.Errorf("Check(good, other, missing) = %v, want one error for %s", got, missing)
	}
}
