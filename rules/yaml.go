package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// parseDocument parses one rules file into its top-level mapping. A file with
// no document (empty or only comments) yields nil. More than one document is
// an error: the second would otherwise be silently ignored.
func parseDocument(data []byte) (*yaml.Node, *positionedError) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &positionedError{line: extra.Line, msg: "more than one YAML document in a rules file"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlError(err)
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &positionedError{line: root.Line, msg: "a rules file must be a mapping with keys routes and default"}
	}
	return root, nil
}

// positionedError is a problem at a line of the file being compiled.
type positionedError struct {
	line int
	msg  string
}

// yamlError extracts the line from a yaml.v3 syntax error. yaml.v3 reports
// positions only inside its message ("yaml: line 3: ..."), so this is the one
// place that reads one.
func yamlError(err error) *positionedError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if line, err := strconv.Atoi(n); err == nil {
				return &positionedError{line: line, msg: after}
			}
		}
	}
	return &positionedError{msg: msg}
}

// mapping iterates over a mapping node's key/value pairs, reporting duplicate
// keys (yaml.v3's Node API does not).
func mapping(n *yaml.Node, fn func(key string, k, v *yaml.Node)) []positionedError {
	var errs []positionedError
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			errs = append(errs, positionedError{line: k.Line, msg: "mapping keys must be strings"})
			continue
		}
		if first, dup := seen[k.Value]; dup {
			errs = append(errs, positionedError{line: k.Line, msg: fmt.Sprintf("key %q repeated (first at line %d)", k.Value, first)})
			continue
		}
		seen[k.Value] = k.Line
		fn(k.Value, k, v)
	}
	return errs
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// scalarString reads a scalar as a string; null reads as "".
func scalarString(n *yaml.Node) (string, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return "", nil
	}
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("must be a string")
	}
	return n.Value, nil
}

// stringList reads a sequence of non-empty strings.
func stringList(n *yaml.Node) ([]string, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("must be a list of strings")
	}
	out := make([]string, 0, len(n.Content))
	for _, e := range n.Content {
		if e.Kind != yaml.ScalarNode || isNull(e) {
			return nil, errors.New("must be a list of strings")
		}
		if strings.TrimSpace(e.Value) == "" {
			return nil, errors.New("must not contain empty strings")
		}
		out = append(out, e.Value)
	}
	return out, nil
}

func scalarInt(n *yaml.Node) (int, error) {
	var v int
	if n.Kind != yaml.ScalarNode && n.Kind != yaml.AliasNode || n.Decode(&v) != nil {
		return 0, errors.New("must be an integer")
	}
	return v, nil
}

func scalarBool(n *yaml.Node) (bool, error) {
	var v bool
	if n.Kind != yaml.ScalarNode && n.Kind != yaml.AliasNode || n.Decode(&v) != nil {
		return false, errors.New("must be true or false")
	}
	return v, nil
}
