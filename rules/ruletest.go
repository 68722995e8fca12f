package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// testFile is the YAML format of `gateway test` files; see the package doc.
type testFile struct {
	Rules string     `yaml:"rules"`
	Cases []testCase `yaml:"cases"`
}

type testCase struct {
	Name       string            `yaml:"name"`
	Stream     string            `yaml:"stream"`
	ID         string            `yaml:"id"`
	Deliveries int64             `yaml:"deliveries"`
	Fields     map[string]string `yaml:"fields"`
	Payload    yaml.Node         `yaml:"payload"`
	Expect     *[]string         `yaml:"expect"`
	line       int
}

// TestReport is the outcome of RunTests: one result per case, in file order.
type TestReport struct {
	File  string // the test file
	Rules string // the rules path the cases ran against
	Cases []CaseResult
}

// CaseResult is one test case's outcome.
type CaseResult struct {
	Name   string
	Line   int      // line of the case in the test file
	Got    []string // route names taken, in order ("default" for the default route)
	Want   []string
	Errors []string // "route: error" for taken routes the message cannot go on (schema, path)
	Passed bool
}

// Failed counts the cases that did not pass.
func (r *TestReport) Failed() int {
	n := 0
	for _, c := range r.Cases {
		if !c.Passed {
			n++
		}
	}
	return n
}

// String renders the report as lines "PASS name" / "FAIL file:line: name:
// got [...], want [...]" and a summary.
func (r *TestReport) String() string {
	var b strings.Builder
	for _, c := range r.Cases {
		if c.Passed {
			fmt.Fprintf(&b, "PASS %s\n", c.Name)
		} else {
			fmt.Fprintf(&b, "FAIL %s:%d: %s: got %v, want %v\n", r.File, c.Line, c.Name, c.Got, c.Want)
		}
		for _, e := range c.Errors {
			fmt.Fprintf(&b, "     note: %s\n", e)
		}
	}
	fmt.Fprintf(&b, "%d cases, %d failed\n", len(r.Cases), r.Failed())
	return b.String()
}

// RunTests runs the cases of a rule test file against the rules it names and
// reports each case. An error means the cases could not run: unreadable or
// invalid test file, or rules that fail to load (then a wrapped *LoadError).
// Matching during tests does not count into any live set.
func RunTests(file string) (*TestReport, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("rule tests: %w", err)
	}
	tf, err := parseTestFile(data)
	if err != nil {
		return nil, fmt.Errorf("rule tests %s: %w", file, err)
	}
	rulesPath := tf.Rules
	if !filepath.IsAbs(rulesPath) {
		rulesPath = filepath.Join(filepath.Dir(file), rulesPath)
	}
	set, err := Load(rulesPath)
	if err != nil {
		return nil, fmt.Errorf("rule tests %s: %w", file, err)
	}
	report := &TestReport{File: file, Rules: rulesPath}
	for i := range tf.Cases {
		res, err := runCase(set, &tf.Cases[i])
		if err != nil {
			return nil, fmt.Errorf("rule tests %s:%d: case %q: %w", file, tf.Cases[i].line, tf.Cases[i].Name, err)
		}
		report.Cases = append(report.Cases, res)
	}
	return report, nil
}

func parseTestFile(data []byte) (*testFile, error) {
	var tf testFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelt "expect" must not pass silently
	if err := dec.Decode(&tf); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty test file")
		}
		return nil, err
	}
	// The same document as a tree, for the cases' line numbers.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	if tf.Rules == "" {
		return nil, errors.New("rules: the rules file or directory to test is required")
	}
	if len(tf.Cases) == 0 {
		return nil, errors.New("cases: at least one case is required")
	}
	// Attach each case's line for failure reports.
	if len(root.Content) > 0 {
		mapping(root.Content[0], func(key string, _, v *yaml.Node) {
			if key == "cases" && v.Kind == yaml.SequenceNode && len(v.Content) == len(tf.Cases) {
				for i, item := range v.Content {
					tf.Cases[i].line = item.Line
				}
			}
		})
	}
	for i, c := range tf.Cases {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("line %d: case name is required", c.line)
		case c.Expect == nil:
			return nil, fmt.Errorf("line %d: case %q: expect is required ([] for no route)", c.line, c.Name)
		}
		for _, prev := range tf.Cases[:i] {
			if prev.Name == c.Name {
				return nil, fmt.Errorf("line %d: case name %q repeated", c.line, c.Name)
			}
		}
	}
	return &tf, nil
}

// runCase builds the case's message and compares the routes taken.
func runCase(set *Set, c *testCase) (CaseResult, error) {
	fields := make(map[string]string, len(c.Fields)+1)
	for k, v := range c.Fields {
		fields[k] = v
	}
	payload, err := casePayload(&c.Payload)
	if err != nil {
		return CaseResult{}, err
	}
	if c.Payload.Kind != 0 {
		fields[FieldPayload] = payload
	}
	id := c.ID
	if id == "" {
		id = "0-1"
	}
	deliveries := c.Deliveries
	if deliveries == 0 {
		deliveries = 1
	}
	msg := NewMessage(c.Stream, id, fields, deliveries)
	res := CaseResult{Name: c.Name, Line: c.line, Want: *c.Expect, Got: []string{}}
	for _, mt := range set.match(msg, nil, false) {
		res.Got = append(res.Got, mt.Route.Name)
		if mt.Err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", mt.Route.Name, mt.Err))
		}
	}
	res.Passed = slices.Equal(res.Got, res.Want)
	return res, nil
}

// casePayload returns the payload as written: a YAML string is taken
// verbatim, any other YAML value is encoded as JSON.
func casePayload(n *yaml.Node) (string, error) {
	switch {
	case n.Kind == 0:
		return "", nil
	case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
		return n.Value, nil
	}
	var v any
	if err := n.Decode(&v); err != nil {
		return "", fmt.Errorf("payload: %w", err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("payload: cannot encode as JSON: %w", err)
	}
	return string(b), nil
}
