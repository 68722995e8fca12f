package asyncapi

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/msgroute/gateway/rules"
)

// FromRules turns a rule set's routes (in evaluation order, the default
// route included when the default action routes) into document routes. A
// route without streams reads every consumed stream. Schemas are read from
// their files, resolved as the rules resolve them (relative to the rules
// file).
func FromRules(set *rules.Set, consumed []string) ([]Route, error) {
	routes := set.Routes()
	if d := set.DefaultRoute(); d != nil {
		routes = append(routes[:len(routes):len(routes)], d)
	}
	out := make([]Route, 0, len(routes))
	for _, r := range routes {
		dr := Route{
			Name: r.Name, Service: r.Service, Method: r.Method, Path: r.Path, PathExpr: r.PathExpr,
			Match: r.MatchExpr, Streams: r.Streams, Tags: r.Tags, Priority: r.Priority, Retries: r.Retries,
			Timeout: r.Timeout, Continue: r.Continue, OnFailure: r.OnFailure,
		}
		if dr.Streams == nil {
			dr.Streams = consumed
		}
		if r.File != "" {
			dr.Source = r.File + ":" + strconv.Itoa(r.Line)
		}
		if r.Schema != "" {
			p := r.Schema
			if !filepath.IsAbs(p) {
				p = filepath.Join(filepath.Dir(r.File), p)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("route %q: schema: %w", r.Name, err)
			}
			if err := json.Unmarshal(data, &dr.Schema); err != nil {
				return nil, fmt.Errorf("route %q: schema %s: %w", r.Name, p, err)
			}
			dr.SchemaName = r.Schema
		}
		out = append(out, dr)
	}
	return out, nil
}
