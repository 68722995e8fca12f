package rules

import (
	"fmt"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Reading a field of the decoded body is the commonest operation of
// realistic rules (`body.customer.tier in [...]`, `body.total > 100`).
// expr reads a member of an `any` with reflection (runtime.Fetch: a
// reflect.Value per step, a method-set check, a boxed copy of the result),
// which cost a third of a body-reading rule set's match time. Member
// chains rooted at `body` are therefore compiled into one call of
// bodyGet, which walks the JSON decoder's own types (map[string]any,
// []any) with type switches, with runtime.Fetch's results (and its errors'
// causes) for them; any other value is left to runtime.Fetch.

// bodyGetName is the function the patch calls. The name cannot be written
// in a rule (identifiers cannot start with `$`).
const bodyGetName = "$body"

// bodyGetOption registers bodyGet with the compiler.
var bodyGetOption = expr.Function(bodyGetName, bodyGet)

// bodyGet returns args[0] followed along the keys and indexes args[1:].
func bodyGet(args ...any) (any, error) {
	return bodyWalk(args[0], args[1:])
}

// bodyWalk returns v followed along keys (strings and ints).
func bodyWalk(v any, keys []any) (any, error) {
	for _, k := range keys {
		switch from := v.(type) {
		case map[string]any:
			s, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("cannot use %T as a key of %T", k, from)
			}
			v = from[s] // a missing key reads as nil, as in runtime.Fetch
		case []any:
			i, ok := k.(int)
			if !ok {
				return nil, fmt.Errorf("cannot use %T as an index of %T", k, from)
			}
			if i < 0 {
				i += len(from)
			}
			if i < 0 || i >= len(from) {
				return nil, fmt.Errorf("index out of range: %v (array length is %v)", k, len(from))
			}
			v = from[i]
		default: // anything else (a string, nil): expr's own rules
			var err error
			if v, err = fetchSlow(v, k); err != nil {
				return nil, err
			}
		}
	}
	return v, nil
}

// fetchSlow is runtime.Fetch, with its panic turned into an error.
func fetchSlow(from, k any) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return runtime.Fetch(from, k), nil
}

// bodyFetch is the patch: it replaces each longest member chain
// `body.a.b[0]["c"]` whose properties are constants, and that has no
// optional step (`?.`, whose nil handling stays expr's), with
// `$body(body, "a", "b", 0, "c")`.
type bodyFetch struct{}

func (bodyFetch) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	keys, ok := bodyChain(m)
	if !ok {
		return
	}
	args := append([]ast.Node{&ast.IdentifierNode{Value: varBody}}, keys...)
	ast.Patch(node, &ast.CallNode{Callee: &ast.IdentifierNode{Value: bodyGetName}, Arguments: args})
}

// bodyChain returns the constant properties of a member chain rooted at
// the identifier body, outermost last.
func bodyChain(m *ast.MemberNode) ([]ast.Node, bool) {
	if m.Optional || m.Method {
		return nil, false
	}
	var key ast.Node
	switch p := m.Property.(type) {
	case *ast.StringNode:
		key = &ast.StringNode{Value: p.Value}
	case *ast.IntegerNode:
		key = &ast.IntegerNode{Value: p.Value}
	default:
		return nil, false
	}
	switch base := m.Node.(type) {
	case *ast.CallNode: // an inner part of the chain, already patched
		if id, ok := base.Callee.(*ast.IdentifierNode); ok && id.Value == bodyGetName {
			return append(append([]ast.Node(nil), base.Arguments[1:]...), key), true
		}
		return nil, false
	case *ast.IdentifierNode:
		if base.Value != varBody {
			return nil, false
		}
		return []ast.Node{key}, true
	case *ast.MemberNode:
		keys, ok := bodyChain(base)
		if !ok {
			return nil, false
		}
		return append(keys, key), true
	}
	return nil, false
}
