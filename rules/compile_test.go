package rules

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // every problem, in order, as Problem.String()
	}{
		{"empty file", "", []string{`f.yaml: empty rules file (write "routes: []" for a file without routes)`}},
		{"only comments", "# nothing yet\n", []string{`f.yaml: empty rules file (write "routes: []" for a file without routes)`}},
		{"yaml syntax", "routes: [\n  - {name: a\n", []string{"f.yaml:1: did not find expected node content"}},
		{"not a mapping", "- a\n", []string{"f.yaml:1: a rules file must be a mapping with keys routes and default"}},
		{"two documents", "routes: []\n---\nroutes: []\n", []string{"f.yaml:2: more than one YAML document in a rules file"}},
		{"unknown top key", "rules: []\n", []string{`f.yaml:1: unknown key "rules" (want routes or default)`}},
		{"routes not a list", "routes: {a: 1}\n", []string{"f.yaml:1: routes must be a list"}},
		{"route not a mapping", "routes:\n  - x\n", []string{"f.yaml:2: each route must be a mapping"}},
		{"unknown route key", "routes:\n  - name: r\n    service: s\n    sevrice: t\n", []string{`f.yaml:4: route "r": sevrice: unknown key`}},
		{"repeated key", "routes:\n  - name: r\n    service: s\n    service: t\n", []string{`f.yaml:4: route "r": key "service" repeated (first at line 3)`}},
		{"name required", "routes:\n  - service: s\n", []string{"f.yaml:2: name is required"}},
		{"name reserved", "routes:\n  - {name: default, service: s}\n", []string{`f.yaml:2: route "default": name "default" is reserved for the default route`}},
		{"name with space", "routes:\n  - {name: a b, service: s}\n", []string{`f.yaml:2: route "a b": name must not contain spaces or control characters`}},
		{"name not a string", "routes:\n  - {name: [a], service: s}\n", []string{"f.yaml:2: name: must be a string", "f.yaml:2: name is required"}},
		{"duplicate name", "routes:\n  - {name: r, service: s}\n  - {name: r, service: t}\n", []string{`f.yaml:3: route "r": duplicate route name (first defined at f.yaml:2)`}},
		{"service required", "routes:\n  - name: r\n", []string{`f.yaml:2: route "r": service is required`}},
		{"bad method", "routes:\n  - {name: r, service: s, method: 'GE T'}\n", []string{`f.yaml:2: route "r": method: "GE T" is not a valid HTTP method`}},
		{"bad path", "routes:\n  - {name: r, service: s, path: orders}\n", []string{`f.yaml:2: route "r": path: "orders" must start with "/" (not "//"), be at most 8 KiB and contain no spaces, control characters or "#"`}},
		{"bad timeout", "routes:\n  - {name: r, service: s, timeout: 2}\n", []string{`f.yaml:2: route "r": timeout: "2" is not a duration like 2s or 500ms: time: missing unit in duration "2"`}},
		{"negative timeout", "routes:\n  - {name: r, service: s, timeout: -1s}\n", []string{`f.yaml:2: route "r": timeout: "-1s" is not a duration like 2s or 500ms: must not be negative`}},
		{"negative retries", "routes:\n  - {name: r, service: s, retries: -1}\n", []string{`f.yaml:2: route "r": retries: must not be negative`}},
		{"retries not int", "routes:\n  - {name: r, service: s, retries: many}\n", []string{`f.yaml:2: route "r": retries: must be an integer`}},
		{"priority not int", "routes:\n  - {name: r, service: s, priority: high}\n", []string{`f.yaml:2: route "r": priority: must be an integer`}},
		{"continue not bool", "routes:\n  - {name: r, service: s, continue: maybe}\n", []string{`f.yaml:2: route "r": continue: must be true or false`}},
		{"streams not list", "routes:\n  - {name: r, service: s, streams: orders}\n", []string{`f.yaml:2: route "r": streams: must be a list of strings`}},
		{"empty tag", "routes:\n  - {name: r, service: s, tags: ['']}\n", []string{`f.yaml:2: route "r": tags: must not contain empty strings`}},
		{"unknown variable", "routes:\n  - name: r\n    service: s\n    match: 'header.type == \"x\"'\n", []string{`f.yaml:4: route "r": match: unknown name header (column 1)`}},
		{"type error", "routes:\n  - name: r\n    service: s\n    match: 'stream > 5'\n", []string{`f.yaml:4: route "r": match: invalid operation: > (mismatched types string and int) (column 8)`}},
		{"not boolean", "routes:\n  - name: r\n    service: s\n    match: 'deliveries + 1'\n", []string{`f.yaml:4: route "r": match: expected bool, but got int`}},
		{"error on second line of a block", "routes:\n  - name: r\n    service: s\n    match: |\n      stream == \"a\" &&\n      nope\n", []string{`f.yaml:6: route "r": match: unknown name nope (column 1)`}},
		{"empty match", "routes:\n  - {name: r, service: s, match: ''}\n", []string{`f.yaml:2: route "r": match: empty expression`}},
		{"expression too long", "routes:\n  - {name: r, service: s, match: '" + strings.Repeat("true && ", 600) + "true'}\n", []string{`f.yaml:2: route "r": match: expression is 4804 bytes, longer than the limit of 4096`}},
		{"path_expr not string", "routes:\n  - name: r\n    service: s\n    path_expr: '1 + 2'\n", []string{`f.yaml:4: route "r": path_expr: expected string, but got int`}},
		{"order_key not string", "routes:\n  - name: r\n    service: s\n    order_key: 'deliveries > 1'\n", []string{`f.yaml:4: route "r": order_key: expected string, but got bool`}},
		{"order_key unknown name", "routes:\n  - name: r\n    service: s\n    order_key: 'bdy.id'\n", []string{`f.yaml:4: route "r": order_key: unknown name bdy (column 1)`}},
		{"order_key empty", "routes:\n  - {name: r, service: s, order_key: ''}\n", []string{`f.yaml:2: route "r": order_key: empty expression`}},
		{"missing schema", "routes:\n  - name: r\n    service: s\n    schema: nope.json\n", []string{`f.yaml:4: route "r": schema: open testdata/nope.json: no such file or directory`}},
		{"invalid schema", "routes:\n  - name: r\n    service: s\n    schema: bad-schema.json\n", []string{`f.yaml:4: route "r": schema: testdata/bad-schema.json: not a valid JSON Schema: at '/type': value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'; at '/type': got number, want array`}},
		{"on_failure with space", "routes:\n  - {name: r, service: s, on_failure: 'a b'}\n", []string{`f.yaml:2: route "r": on_failure: "a b" is not a stream name (non-empty, printable, no spaces)`}},
		{"on_failure empty", "routes:\n  - {name: r, service: s, on_failure: ''}\n", []string{`f.yaml:2: route "r": on_failure: "" is not a stream name (non-empty, printable, no spaces)`}},
		{"on_failure not a string", "routes:\n  - {name: r, service: s, on_failure: [a]}\n", []string{`f.yaml:2: route "r": on_failure: must be a string`}},
		{"bad action", "default: {action: bounce}\n", []string{`f.yaml:1: default.action "bounce" is not one of dlq, drop, route`}},
		{"route without service", "default: {action: route}\n", []string{"f.yaml:1: default.service is required with action: route"}},
		{"unknown default key", "default: {action: dlq, to: x}\n", []string{`f.yaml:1: unknown key "to" in default (want action or service)`}},
		{"several problems at once", "routes:\n  - {name: a}\n  - {service: s}\n", []string{`f.yaml:2: route "a": service is required`, "f.yaml:3: name is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Name the file as if it lived in testdata so schema paths resolve there,
			// but report it as f.yaml to keep the table short.
			s, err := Compile([]Source{{Name: "testdata/f.yaml", Data: []byte(tt.src)}})
			if s != nil {
				t.Fatalf("Compile(%q) returned a set, want an error", tt.src)
			}
			var got []string
			for _, p := range problemsOf(t, err) {
				got = append(got, strings.ReplaceAll(p.String(), "testdata/f.yaml", "f.yaml"))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compile(%q) problems =\n%s\nwant\n%s", tt.src, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCompileAccepts(t *testing.T) {
	tests := []struct{ name, src string }{
		{"empty list", "routes: []\n"},
		{"null routes", "routes:\n"},
		{"null default", "default:\n"},
		{"every key", `
routes:
  - name: all
    streams: [a, b]
    match: 'headers.type == "x"'
    priority: -3
    service: svc
    tags: [t1, t2]
    method: patch
    path: /p
    path_expr: '"/q"'
    timeout: 150ms
    retries: 0
    continue: true
    schema: schemas/order.v2.json
    on_failure: orders.compensate
default: {action: drop}
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compile([]Source{{Name: "testdata/f.yaml", Data: []byte(tt.src)}}); err != nil {
				t.Errorf("Compile(%q) = %v, want no error", tt.src, err)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.yaml"), "routes:\n  - {name: from-b, service: b, match: 'true'}\n")
	writeFile(t, filepath.Join(dir, "a.yaml"), "routes:\n  - {name: from-a, service: a, match: 'true'}\ndefault: {action: drop}\n")
	writeFile(t, filepath.Join(dir, ".hidden.yaml"), "garbage: [")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not rules")
	writeFile(t, filepath.Join(dir, "sub", "c.yaml"), "garbage: [")

	s, err := Load(dir)
	if err != nil {
		t.Fatalf("Load(dir) = %v", err)
	}
	var got []string
	for _, r := range s.Routes() {
		got = append(got, r.Name)
	}
	if want := []string{"from-a", "from-b"}; !slices.Equal(got, want) {
		t.Errorf("Routes() = %v, want %v (file name order)", got, want)
	}
	if want := []string{filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")}; !slices.Equal(s.Files(), want) {
		t.Errorf("Files() = %v, want %v", s.Files(), want)
	}
	if s.Default().Action != ActionDrop {
		t.Errorf("Default() = %+v, want drop from a.yaml", s.Default())
	}

	// The same name in two files, and default set twice, reject the whole set.
	writeFile(t, filepath.Join(dir, "c.yaml"), "routes:\n  - {name: from-a, service: c}\ndefault: {action: dlq}\n")
	_, err = Load(dir)
	want := []string{
		filepath.Join(dir, "c.yaml") + `:2: route "from-a": duplicate route name (first defined at ` + filepath.Join(dir, "a.yaml") + ":2)",
		filepath.Join(dir, "c.yaml") + ":3: default is already set at " + filepath.Join(dir, "a.yaml") + ":3",
	}
	var gotProblems []string
	for _, p := range problemsOf(t, err) {
		gotProblems = append(gotProblems, p.String())
	}
	if !slices.Equal(gotProblems, want) {
		t.Errorf("Load(dir with duplicates) = %q, want %q", gotProblems, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("Load(missing) = %v, want a not-exist error", err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "no *.yaml files") {
		t.Errorf("Load(empty dir) = %v, want no *.yaml files", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestVersion(t *testing.T) {
	src := func(name, data string) []Source { return []Source{{Name: name, Data: []byte(data)}} }
	version := func(srcs []Source) string {
		s, err := Compile(srcs)
		if err != nil {
			t.Fatal(err)
		}
		return s.Version()
	}
	a := version(src("a.yaml", "routes: []"))
	if a != version(src("a.yaml", "routes: []")) {
		t.Error("Version() differs for identical sources")
	}
	if a == version(src("b.yaml", "routes: []")) {
		t.Error("Version() ignores the file name")
	}
	if a == version(src("a.yaml", "routes: [] ")) {
		t.Error("Version() ignores the contents")
	}
	two := []Source{{Name: "a", Data: []byte("routes: []")}, {Name: "b", Data: []byte("default: {action: drop}")}}
	if version(two) == version([]Source{two[1], two[0]}) {
		t.Error("Version() ignores the order")
	}
}

func TestCompileOnFailure(t *testing.T) {
	s, err := Compile([]Source{{Name: "f.yaml", Data: []byte("routes:\n  - {name: pay, service: payments, on_failure: orders.compensate}\n  - {name: plain, service: s}\n")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range s.Routes() {
		want := map[string]string{"pay": "orders.compensate", "plain": ""}[r.Name]
		if r.OnFailure != want {
			t.Errorf("route %s OnFailure = %q, want %q", r.Name, r.OnFailure, want)
		}
	}
}
