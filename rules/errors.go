package rules

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSchema is wrapped by Match.Err when a route matched but the message body
// does not satisfy the route's JSON Schema (or is not JSON at all). The router
// dead-letters such messages with reason "schema".
var ErrSchema = errors.New("schema validation failed")

// ErrPath is wrapped by Match.Err when a route matched but its path_expr
// failed at run time, did not yield a string, or yielded a path that does not
// start with "/".
var ErrPath = errors.New("path_expr failed")

// ErrOrderKey is wrapped by Match.Err when a route with order_key matched but
// the expression failed at run time, gave something other than a string or
// a number, or gave an empty string. Such a message cannot be placed in its
// key's order, so the router dead-letters it (reason bad_message) rather
// than deliver it unordered.
var ErrOrderKey = errors.New("order_key failed")

// Problem is one finding about a rules file: an error that rejects the set,
// or (Warning true) a remark from Check that does not.
type Problem struct {
	File    string // rules file; may be a directory or test file for I/O problems
	Line    int    // 1-based; 0 when the problem is not tied to a line
	Route   string // route name when the problem concerns one route, else ""
	Message string
	Warning bool
}

// String formats the problem as "file:line: message" (or "file: message" when
// the line is unknown), the message starting with the route's name if any.
// Warnings are not marked: callers print Warning as they see fit.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	b.WriteString(": ")
	if p.Route != "" {
		fmt.Fprintf(&b, "route %q: ", p.Route)
	}
	b.WriteString(p.Message)
	return b.String()
}

// LoadError is returned by Load and Compile when a rule set is invalid. It
// carries every error found, not just the first, so an operator can fix them
// in one pass. It never contains warnings.
type LoadError struct {
	Problems []Problem
}

// Error lists the problems, one "file:line: message" per line.
func (e *LoadError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}
