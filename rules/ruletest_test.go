package rules

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRunTestsSample(t *testing.T) {
	rep, err := RunTests("testdata/rules_test.yaml")
	if err != nil {
		t.Fatalf("RunTests = %v", err)
	}
	if rep.Failed() != 0 || len(rep.Cases) != 5 {
		t.Errorf("RunTests(sample) = %d cases, %d failed, want 5, 0:\n%s", len(rep.Cases), rep.Failed(), rep)
	}
}

func TestRunTestsReportsMismatch(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), `routes:
  - {name: typed, service: s, match: 'headers.type == "a"'}
  - {name: big, service: s, match: 'body.total > 10', schema: s.json}
`)
	writeFile(t, filepath.Join(dir, "s.json"), `{"required": ["id"]}`)
	tf := filepath.Join(dir, "t.yaml")
	writeFile(t, tf, `rules: r.yaml
cases:
  - name: ok
    fields: {type: a}
    expect: [typed]
  - name: wrong
    fields: {type: b}
    expect: [typed]
  - name: schema failure still counts as taken
    payload: {total: 20}
    expect: [big]
`)
	rep, err := RunTests(tf)
	if err != nil {
		t.Fatalf("RunTests = %v", err)
	}
	if rep.Failed() != 1 {
		t.Fatalf("Failed() = %d, want 1:\n%s", rep.Failed(), rep)
	}
	wrong := rep.Cases[1]
	if wrong.Passed || !slices.Equal(wrong.Got, []string{}) || !slices.Equal(wrong.Want, []string{"typed"}) || wrong.Line != 6 {
		t.Errorf("case wrong = %+v, want failed, got [], want [typed], line 6", wrong)
	}
	if want := tf + `:6: wrong: got [], want [typed]`; !strings.Contains(rep.String(), want) {
		t.Errorf("String() = %q, want it to contain %q", rep.String(), want)
	}
	if n := rep.Cases[2].Errors; len(n) != 1 || !strings.Contains(n[0], "schema") {
		t.Errorf("schema case notes = %v, want one schema error", n)
	}
}

func TestRunTestsErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "r.yaml"), "routes: [{name: a, service: s}]\n")
	writeFile(t, filepath.Join(dir, "bad.yaml"), "routes: [{name: a}]\n")
	tests := []struct {
		name, file, want string
	}{
		{"unknown key", "rules: r.yaml\ncases:\n  - {name: a, expected: [a]}\n", "field expected not found"},
		{"missing expect", "rules: r.yaml\ncases:\n  - {name: a}\n", `case "a": expect is required`},
		{"missing name", "rules: r.yaml\ncases:\n  - {expect: []}\n", "case name is required"},
		{"duplicate name", "rules: r.yaml\ncases:\n  - {name: a, expect: []}\n  - {name: a, expect: []}\n", `case name "a" repeated`},
		{"no rules", "cases:\n  - {name: a, expect: []}\n", "rules: the rules file or directory to test is required"},
		{"no cases", "rules: r.yaml\n", "at least one case is required"},
		{"empty", "", "empty test file"},
		{"bad payload", "rules: r.yaml\ncases:\n  - {name: a, expect: [], payload: {1: x}}\n", "cannot encode as JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf := filepath.Join(dir, "t.yaml")
			writeFile(t, tf, tt.file)
			_, err := RunTests(tf)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RunTests(%q) = %v, want error containing %q", tt.file, err, tt.want)
			}
		})
	}
	tf := filepath.Join(dir, "t.yaml")
	writeFile(t, tf, "rules: bad.yaml\ncases:\n  - {name: a, expect: []}\n")
	_, err := RunTests(tf)
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 {
		t.Errorf("RunTests(invalid rules) = %v, want a wrapped *LoadError", err)
	}
}
