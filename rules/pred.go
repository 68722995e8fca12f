package rules

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm/runtime"
)

// Most match expressions are a few comparisons of a field with constants
// joined by && and || (`body.total > 100 && body.region == "eu"`). Running
// such an expression on the VM costs more than the comparisons: a stack
// machine, a variadic call per field read, boxed constants. A pred is the
// same expression as a small tree evaluated directly, built only from the
// shapes below, whose results and errors are expr's own:
//
//   - a && b, a || b (left to right, short-circuit), !a / not a;
//   - SEL op CONST and CONST op SEL, op one of == != < <= > >=, CONST a
//     string, integer or float literal;
//   - SEL in ["a", "b", ...] (string literals);
//
// where SEL is stream, headers.NAME or a member chain body.a.b[0].c of
// constant keys and indexes without ?. (what expr reads through bodyGet).
// Each comparison takes a fast path for the types JSON gives (a string, a
// float64) and otherwise calls expr's runtime function, so every case,
// including the type errors that make a route fail, is expr's. Anything
// else (calls, arithmetic, ?., let, closures) keeps the VM.
// TestPredAgreesWithExpr holds the two to the same results.

// predOp is what a pred node does.
type predOp uint8

const (
	predTrue predOp = iota // a conjunct the index already checked
	predAnd
	predOr
	predNot
	predEq
	predNe
	predLt
	predLe
	predGt
	predGe
	predIn
)

// pred is one node of a directly evaluated match expression. Immutable
// after buildPred, so safe for concurrent use.
type pred struct {
	op   predOp
	l, r *pred // predAnd, predOr; predNot uses l
	sel  predSel
	// c is the constant (string, int or float64, as expr types it);
	// constLeft records that it was written first (CONST op SEL), which
	// the fallback keeps.
	c         any
	constLeft bool
	set       map[string]struct{} // predIn: expr's own optimized form of the list
}

// predSel is the field a comparison reads.
type predSel struct {
	kind dimKind
	name string // header name
	keys []any  // body keys (string) and indexes (int), for bodyWalk
}

// buildPred returns the pred of the expression n with the binary node at
// source offset drop (a conjunct the index checks; -1: none) read as true,
// or nil when n has a shape it does not cover.
func buildPred(n ast.Node, drop int) *pred {
	switch n := n.(type) {
	case *ast.UnaryNode:
		if n.Operator != "!" && n.Operator != "not" {
			return nil
		}
		if l := buildPred(n.Node, drop); l != nil {
			return &pred{op: predNot, l: l}
		}
	case *ast.BinaryNode:
		if n.Location().From == drop {
			return &pred{op: predTrue}
		}
		switch n.Operator {
		case "&&", "and", "||", "or":
			l, r := buildPred(n.Left, drop), buildPred(n.Right, drop)
			if l == nil || r == nil {
				return nil
			}
			op := predAnd
			if n.Operator == "||" || n.Operator == "or" {
				op = predOr
			}
			return &pred{op: op, l: l, r: r}
		case "in":
			return inPred(n)
		}
		return cmpPred(n)
	}
	return nil
}

var cmpOps = map[string]predOp{"==": predEq, "!=": predNe, "<": predLt, "<=": predLe, ">": predGt, ">=": predGe}

// cmpPred covers SEL op CONST and CONST op SEL.
func cmpPred(n *ast.BinaryNode) *pred {
	op, ok := cmpOps[n.Operator]
	if !ok {
		return nil
	}
	if sel, ok := predSelector(n.Left); ok {
		if c, ok := predConst(n.Right); ok {
			return &pred{op: op, sel: sel, c: c}
		}
	}
	if sel, ok := predSelector(n.Right); ok {
		if c, ok := predConst(n.Left); ok {
			return &pred{op: op, sel: sel, c: c, constLeft: true}
		}
	}
	return nil
}

// inPred covers SEL in [string literals].
func inPred(n *ast.BinaryNode) *pred {
	sel, ok := predSelector(n.Left)
	arr, isArr := n.Right.(*ast.ArrayNode)
	if !ok || !isArr || len(arr.Nodes) == 0 {
		return nil
	}
	set := make(map[string]struct{}, len(arr.Nodes))
	for _, e := range arr.Nodes {
		s, ok := e.(*ast.StringNode)
		if !ok {
			return nil
		}
		set[s.Value] = struct{}{}
	}
	return &pred{op: predIn, sel: sel, set: set}
}

func predConst(n ast.Node) (any, bool) {
	switch n := n.(type) {
	case *ast.StringNode:
		return n.Value, true
	case *ast.IntegerNode:
		return n.Value, true
	case *ast.FloatNode:
		return n.Value, true
	}
	return nil, false
}

// predSelector recognises stream, headers.NAME and body member chains of
// constant keys and indexes with no optional step.
func predSelector(n ast.Node) (predSel, bool) {
	var keys []any
	for {
		switch m := n.(type) {
		case *ast.IdentifierNode:
			switch {
			case m.Value == varStream && keys == nil:
				return predSel{kind: dimStream}, true
			case m.Value == varBody && keys != nil:
				for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
					keys[i], keys[j] = keys[j], keys[i]
				}
				return predSel{kind: dimBody, keys: keys}, true
			case m.Value == varHeaders && len(keys) == 1:
				if name, ok := keys[0].(string); ok {
					return predSel{kind: dimHeader, name: name}, true
				}
			}
			return predSel{}, false
		case *ast.MemberNode:
			if m.Optional || m.Method {
				return predSel{}, false
			}
			switch p := m.Property.(type) {
			case *ast.StringNode:
				keys = append(keys, p.Value)
			case *ast.IntegerNode:
				keys = append(keys, p.Value)
			default:
				return predSel{}, false
			}
			n = m.Node
		default:
			return predSel{}, false
		}
	}
}

// eval evaluates p for the message of st, whose body (when p reads it) is
// already decoded. An error is what makes expr's Run fail.
func (p *pred) eval(st *evalState) (bool, error) {
	switch p.op {
	case predTrue:
		return true, nil
	case predAnd, predOr:
		l, err := p.l.eval(st)
		if err != nil || l == (p.op == predOr) {
			return l, err
		}
		return p.r.eval(st)
	case predNot:
		l, err := p.l.eval(st)
		return !l && err == nil, err
	}
	v, err := p.sel.value(st)
	if err != nil {
		return false, err
	}
	if p.op == predIn {
		if s, ok := v.(string); ok {
			_, in := p.set[s]
			return in, nil
		}
		return p.fallback(v)
	}
	switch x := v.(type) {
	case string:
		if c, ok := p.c.(string); ok {
			return p.compare(x < c, x == c, c < x), nil
		}
	case float64:
		switch c := p.c.(type) {
		case float64:
			return p.compare(x < c, x == c, c < x), nil
		case int:
			return p.compare(x < float64(c), x == float64(c), float64(c) < x), nil
		}
	}
	if p.op == predEq || p.op == predNe {
		return runtime.Equal(v, p.c) == (p.op == predEq), nil
	}
	return p.fallback(v)
}

// compare is the comparison's result given how the field's value
// compares with the constant (less: value < constant, more: value >
// constant), for comparable operands.
func (p *pred) compare(less, equal, more bool) bool {
	if p.constLeft { // CONST op SEL
		less, more = more, less
	}
	switch p.op {
	case predEq:
		return equal
	case predNe:
		return !equal
	case predLt:
		return less
	case predLe:
		return less || equal
	case predGt:
		return more
	}
	return more || equal // predGe
}

// fallback is expr's runtime function for the comparison, with its panic
// (a type error) turned into an error, as the VM does.
func (p *pred) fallback(v any) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	a, b := v, p.c
	if p.constLeft {
		a, b = b, a
	}
	switch p.op {
	case predIn:
		return runtime.In(v, p.set), nil
	case predLt:
		return runtime.Less(a, b), nil
	case predLe:
		return runtime.LessOrEqual(a, b), nil
	case predGt:
		return runtime.More(a, b), nil
	}
	return runtime.MoreOrEqual(a, b), nil
}

// value reads the selected field as the VM would.
func (s *predSel) value(st *evalState) (any, error) {
	switch s.kind {
	case dimStream:
		return st.msg.Stream, nil
	case dimHeader:
		return st.msg.Headers[s.name], nil
	}
	return bodyWalk(st.body, s.keys)
}
