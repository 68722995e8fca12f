package rules

import (
	"errors"
	"fmt"
	"slices"
)

// Check validates the rule sets at paths, each a file or directory loaded as
// Load would (so each argument is its own set), and returns every error plus
// warnings for routes that first-match order makes unreachable. It backs
// `gateway check`: the rules are valid when no returned problem is an error.
func Check(paths ...string) []Problem {
	var out []Problem
	for _, path := range paths {
		s, err := Load(path)
		var le *LoadError
		switch {
		case errors.As(err, &le):
			out = append(out, le.Problems...)
		case err != nil:
			out = append(out, Problem{File: path, Message: err.Error()})
		default:
			out = append(out, s.warnings()...)
		}
	}
	return out
}

// warnings returns the compiler's remarks and finds routes no message can reach: an earlier route (in
// evaluation order, so of higher or equal priority) without continue takes
// every message the later one could match, because it accepts all of the
// later route's streams and its condition is `true`, absent, or the same
// expression. It also flags a path ignored for path_expr, and a route that
// may read its own on_failure stream (a loop of failure events).
func (s *Set) warnings() []Problem {
	out := slices.Clone(s.remarks)
	var catchAll []*Route         // earlier non-continue routes matching everything on their streams
	same := map[string][]*Route{} // earlier non-continue routes by canonical condition
	for _, r := range s.routes {
		if by := s.shadowedBy(r, catchAll, same); by != nil {
			out = append(out, Problem{
				File: r.File, Line: r.Line, Route: r.Name, Warning: true,
				Message: fmt.Sprintf("unreachable: route %q (%s:%d) takes every message first and does not continue", by.Name, by.File, by.Line),
			})
		}
		if r.PathExpr != "" && r.Path != "/" {
			out = append(out, Problem{
				File: r.File, Line: r.Line, Route: r.Name, Warning: true,
				Message: "path is ignored because path_expr is set",
			})
		}
		if r.OnFailure != "" && (r.Streams == nil || slices.Contains(r.Streams, r.OnFailure)) {
			out = append(out, Problem{
				File: r.File, Line: r.Line, Route: r.Name, Warning: true,
				Message: fmt.Sprintf("may read its own on_failure stream %q: a failure event it matches and fails again makes another (list streams: without it, or match on headers.failed_route)", r.OnFailure),
			})
		}
		if r.Continue {
			continue
		}
		if r.match == nil || r.match.always {
			catchAll = append(catchAll, r)
		} else {
			same[r.match.canon] = append(same[r.match.canon], r)
		}
	}
	return out
}

func (s *Set) shadowedBy(r *Route, catchAll []*Route, same map[string][]*Route) *Route {
	for _, a := range catchAll {
		if coversStreams(a, r) {
			return a
		}
	}
	if r.match == nil || r.match.always {
		return nil
	}
	for _, a := range same[r.match.canon] {
		if coversStreams(a, r) {
			return a
		}
	}
	return nil
}

// coversStreams reports whether every stream b accepts is accepted by a.
func coversStreams(a, b *Route) bool {
	if a.streamSet == nil {
		return true
	}
	if b.streamSet == nil {
		return false
	}
	for st := range b.streamSet {
		if !a.acceptsStream(st) {
			return false
		}
	}
	return true
}
