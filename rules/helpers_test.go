package rules

import (
	"errors"
	"strings"
	"testing"
)

// compileString compiles one in-memory rules file named testdata/inline.yaml,
// so schema paths resolve against testdata/.
func compileString(t testing.TB, src string) *Set {
	t.Helper()
	s, err := Compile([]Source{{Name: "testdata/inline.yaml", Data: []byte(src)}})
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// problemsOf returns the problems of a *LoadError, failing the test for any
// other error.
func problemsOf(t testing.TB, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("error %v (%T) is not a *LoadError", err, err)
	}
	return le.Problems
}

func msg(stream string, fields map[string]string) *Message {
	return NewMessage(stream, "1-0", fields, 1)
}

func names(ms []Match) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Route.Name
	}
	return "[" + strings.Join(out, " ") + "]"
}
