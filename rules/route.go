package rules

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

// compileRoute validates and compiles one route mapping. It reports every
// problem it finds and returns nil if there was any.
func (c *compiler) compileRoute(file string, n *yaml.Node) *Route {
	r := &Route{File: file, Line: n.Line, Method: "POST", Path: "/"}
	before := len(c.problems)
	var nameLine = n.Line
	type exprField struct {
		src  string
		node *yaml.Node
	}
	var matchSrc, pathSrc, keySrc exprField
	var schemaLine, batchLine int

	// Read the name first so every later problem can name the route.
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "name" {
			nameLine = n.Content[i].Line
			if s, err := scalarString(n.Content[i+1]); err == nil {
				r.Name = s
			}
		}
	}
	fail := func(line int, format string, args ...any) {
		c.errorf(file, line, r.Name, format, args...)
	}

	errs := mapping(n, func(key string, k, v *yaml.Node) {
		var err error
		switch key {
		case "name":
			_, err = scalarString(v)
		case "streams":
			r.Streams, err = stringList(v)
		case "match":
			matchSrc.src, err = scalarString(v)
			matchSrc.node = v
		case "priority":
			r.Priority, err = scalarInt(v)
		case "service":
			r.Service, err = scalarString(v)
		case "tags":
			r.Tags, err = stringList(v)
		case "method":
			var m string
			if m, err = scalarString(v); err == nil && m != "" {
				r.Method = strings.ToUpper(m)
				if !ValidToken(r.Method) {
					err = fmt.Errorf("%q is not a valid HTTP method", m)
				}
			}
		case "path":
			var p string
			if p, err = scalarString(v); err == nil && p != "" {
				r.Path = p
				if !ValidPath(p) {
					err = fmt.Errorf("%q %s", p, pathRule)
				}
			}
		case "path_expr":
			pathSrc.src, err = scalarString(v)
			pathSrc.node = v
		case "order_key":
			keySrc.src, err = scalarString(v)
			keySrc.node = v
		case "timeout":
			var s string
			if s, err = scalarString(v); err == nil && s != "" {
				r.Timeout, err = time.ParseDuration(s)
				if err == nil && r.Timeout < 0 {
					err = errors.New("must not be negative")
				}
				if err != nil {
					err = fmt.Errorf("%q is not a duration like 2s or 500ms: %w", s, err)
				}
			}
		case "retries":
			if r.Retries, err = scalarInt(v); err == nil && r.Retries < 0 {
				err = errors.New("must not be negative")
			}
		case "continue":
			r.Continue, err = scalarBool(v)
		case "schema":
			r.Schema, err = scalarString(v)
			schemaLine = k.Line
		case "on_failure":
			if r.OnFailure, err = scalarString(v); err == nil && !validStreamName(r.OnFailure) {
				err = fmt.Errorf("%q is not a stream name (non-empty, printable, no spaces)", r.OnFailure)
			}
		case "batch":
			r.Batch, err = parseBatch(v)
			if r.Batch != nil {
				batchLine = k.Line
			}
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			fail(k.Line, "%s: %v", key, err)
		}
	})
	for _, e := range errs {
		fail(e.line, "%s", e.msg)
	}

	switch {
	case r.Name == "":
		fail(nameLine, "name is required")
	case r.Name == DefaultRouteName:
		fail(nameLine, "name %q is reserved for the default route", r.Name)
	case !validName(r.Name):
		fail(nameLine, "name must not contain spaces or control characters")
	default:
		if first, dup := c.names[r.Name]; dup {
			fail(nameLine, "duplicate route name (first defined at %s:%d)", first.File, first.Line)
		} else {
			c.names[r.Name] = r
		}
	}
	if r.Service == "" {
		fail(n.Line, "service is required")
	} else if !validName(r.Service) {
		fail(n.Line, "service %q must not contain spaces or control characters", r.Service)
	}
	if r.Streams != nil {
		r.streamSet = make(map[string]struct{}, len(r.Streams))
		for _, s := range r.Streams {
			r.streamSet[s] = struct{}{}
		}
	}
	if matchSrc.node != nil {
		r.MatchExpr = matchSrc.src
		p, err := compileExpr(matchSrc.src, reflect.Bool)
		if err != nil {
			fail(exprLine(matchSrc.node, err), "match: %v", err)
		} else {
			r.match, r.eval = p, p.prog
			r.readsBody = p.uses&usesBody != 0
			r.fast = buildPred(p.tree, -1)
		}
	}
	if batchLine > 0 && pathSrc.node != nil {
		fail(batchLine, "batch: cannot be combined with path_expr (one request goes to one path)")
	}
	if pathSrc.node != nil {
		r.PathExpr = pathSrc.src
		p, err := compileExpr(pathSrc.src, reflect.String)
		if err != nil {
			fail(exprLine(pathSrc.node, err), "path_expr: %v", err)
		} else {
			r.pathExpr = p
		}
	}
	if keySrc.node != nil {
		r.OrderKey = keySrc.src
		p, err := compileExpr(keySrc.src, reflect.String)
		if err != nil {
			fail(exprLine(keySrc.node, err), "order_key: %v", err)
		} else {
			r.orderKey = p
		}
	}
	if r.Schema != "" {
		sch, err := c.loadSchema(file, r.Schema)
		if err != nil {
			fail(schemaLine, "schema: %v", err)
		}
		r.schema = sch
	}
	if len(c.problems) > before {
		return nil
	}
	return r
}

// exprLine maps an expression error to a rules file line: the value's line
// plus the error's line inside the expression (block scalars start on the
// line after their key).
func exprLine(v *yaml.Node, err error) int {
	line := v.Line
	var ee *exprError
	if !errors.As(err, &ee) || ee.line == 0 {
		return line
	}
	if v.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++
	}
	return line + ee.line - 1
}

// validStreamName reports whether s can name a Redis stream the gateway
// writes to: non-empty, printable, without spaces (as route names).
func validStreamName(s string) bool { return validName(s) }

// validName reports whether a route or service name is usable in headers,
// metric labels and idempotency keys: printable, without spaces.
func validName(s string) bool {
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return s != ""
}
