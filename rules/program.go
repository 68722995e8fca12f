package rules

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/vm"
)

// maxExprLen bounds an expression's source. Rules are hand-written; anything
// longer is a mistake or an attack on the compiler.
const maxExprLen = 4 << 10

// program is a compiled expression with what the index and the lazy body
// decoding need to know about it.
type program struct {
	src   string
	prog  *vm.Program
	uses  varSet
	conds []cond // top-level equality conjuncts usable as index keys
	// alts, for an expression that is a disjunction (a || b || ...) each
	// of whose disjuncts has equality conjuncts: those conjuncts, one list
	// per disjunct. The expression can only hold when one of the lists
	// has a conjunct that holds.
	alts [][]cond
	// canon is the expression re-printed from its syntax tree, so that
	// spacing and parentheses do not hide two identical conditions.
	canon  string
	always bool // the expression is the literal true
	// bodyPaths are the parts of body the expression observes; an empty
	// path means all of it.
	bodyPaths [][]string
	// tree is the expression as written (parsed, not checked), for
	// buildPred.
	tree ast.Node
}

// exprError is a compile error with its position inside the expression, so
// the caller can turn it into a rules file line.
type exprError struct {
	line int // 1-based line within the expression; 0 when unknown
	msg  string
}

func (e *exprError) Error() string { return e.msg }

// compileExpr compiles src against the typed environment. kind is the result
// kind the expression must have (reflect.Bool for match, reflect.String for
// path_expr); results of unknown static type are checked again at run time.
func compileExpr(src string, kind reflect.Kind) (*program, error) {
	if strings.TrimSpace(src) == "" {
		return nil, &exprError{msg: "empty expression"}
	}
	if len(src) > maxExprLen {
		return nil, &exprError{msg: fmt.Sprintf("expression is %d bytes, longer than the limit of %d", len(src), maxExprLen)}
	}
	opts := []expr.Option{expr.Env(exprEnv), bodyGetOption, expr.Patch(bodyFetch{})}
	if kind == reflect.Bool {
		opts = append(opts, expr.AsBool())
	} else {
		opts = append(opts, expr.AsKind(kind))
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, toExprError(err)
	}
	// The checked tree may be rewritten by the optimizer; the index analysis
	// wants the expression as written, so parse it again (it already parsed once).
	tree, err := parser.Parse(src)
	if err != nil {
		return nil, toExprError(err)
	}
	p := &program{prog: prog, uses: usedVars(tree.Node), canon: tree.Node.String(), bodyPaths: bodyPaths(tree.Node), tree: tree.Node}
	if b, ok := tree.Node.(*ast.BoolNode); ok && b.Value {
		p.always = true
	}
	p.src = src
	p.conds = equalityConds(tree.Node, nil)
	p.alts = disjunctConds(tree.Node)
	for i := range p.conds {
		p.conds[i].whole = tree.Node.Location().From == p.conds[i].loc
	}
	return p, nil
}

// residual compiles the program with one indexed conjunct replaced by true,
// for routes the index only offers when that conjunct holds. For those
// messages it is the same condition, minus a map lookup and a comparison
// (the optimizer folds the `true &&` away). It returns nil when nothing is
// left to evaluate, and the program itself if recompiling fails (it cannot:
// replacing a boolean comparison with true keeps the expression well typed).
func (p *program) residual(c cond) (*vm.Program, bool) {
	if c.whole {
		return nil, false
	}
	prog, err := expr.Compile(p.src, expr.Env(exprEnv), expr.AsBool(), expr.Patch(dropConjunct{loc: c.loc}), bodyGetOption, expr.Patch(bodyFetch{}))
	if err != nil {
		return p.prog, p.uses&usesBody != 0
	}
	return prog, usedVars(prog.Node())&usesBody != 0
}

// dropConjunct replaces the binary node at loc with true.
type dropConjunct struct{ loc int }

func (d dropConjunct) Visit(node *ast.Node) {
	if b, ok := (*node).(*ast.BinaryNode); ok && b.Location().From == d.loc {
		ast.Patch(node, &ast.BoolNode{Value: true})
	}
}

func toExprError(err error) *exprError {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 0 {
			return &exprError{line: fe.Line, msg: fmt.Sprintf("%s (column %d)", fe.Message, fe.Column+1)}
		}
		return &exprError{msg: fe.Message}
	}
	return &exprError{msg: err.Error()}
}

// usedVars reports which environment variables the expression reads. Reading
// the whole environment ($env) counts as reading everything.
func usedVars(n ast.Node) varSet {
	v := &varVisitor{}
	ast.Walk(&n, v)
	return v.uses
}

type varVisitor struct{ uses varSet }

func (v *varVisitor) Visit(node *ast.Node) {
	id, ok := (*node).(*ast.IdentifierNode)
	if !ok {
		return
	}
	if id.Value == "$env" {
		v.uses = ^varSet(0)
		return
	}
	v.uses |= varBit(id.Value)
}

// dimKind is what an index dimension selects on.
type dimKind uint8

const (
	dimStream dimKind = iota // the entry's stream
	dimHeader                // one attribute, headers.<name>
	dimBody                  // one string field of the decoded body, body.<path>
)

// dimKey names an index dimension: the kind and, for headers and body, the
// attribute name or the body path joined with ".".
type dimKey struct {
	kind dimKind
	name string
}

// cond says: the route can only match when the message's value on dimension
// key is one of values. path is the split body path for dimBody.
type cond struct {
	key    dimKey
	path   []string
	values []string
	// loc is the source offset of the conjunct's operator, which identifies
	// it in a fresh parse of the same source; -1 for a streams filter.
	loc int
	// whole is true when the conjunct is the entire expression.
	whole bool
}

// equalityConds collects the index-usable conjuncts of a top-level && chain:
// `sel == "const"`, `"const" == sel` and `sel in ["a", "b"]`, where sel is
// stream, headers.NAME or body.a.b. Anything else contributes nothing, which is
// always safe: a route without conds is evaluated for every message.
func equalityConds(n ast.Node, out []cond) []cond {
	b, ok := n.(*ast.BinaryNode)
	if !ok {
		return out
	}
	switch b.Operator {
	case "&&", "and":
		out = equalityConds(b.Left, out)
		return equalityConds(b.Right, out)
	case "==":
		if c, ok := selectorCond(b.Left); ok {
			if s, ok := b.Right.(*ast.StringNode); ok {
				c.values, c.loc = []string{s.Value}, b.Location().From
				return append(out, c)
			}
		}
		if c, ok := selectorCond(b.Right); ok {
			if s, ok := b.Left.(*ast.StringNode); ok {
				c.values, c.loc = []string{s.Value}, b.Location().From
				return append(out, c)
			}
		}
	case "in":
		c, ok := selectorCond(b.Left)
		arr, isArr := b.Right.(*ast.ArrayNode)
		if !ok || !isArr || len(arr.Nodes) == 0 {
			return out
		}
		for _, e := range arr.Nodes {
			s, ok := e.(*ast.StringNode)
			// expr's `in` finds a nil (a missing or null body field) in
			// a list of strings holding "": such a cond would exclude
			// messages the expression matches.
			if !ok || s.Value == "" && c.key.kind == dimBody {
				return out
			}
			c.values = append(c.values, s.Value)
		}
		c.loc = b.Location().From
		return append(out, c)
	}
	return out
}

// disjunctConds returns the equality conjuncts of each disjunct of a
// top-level || chain, or nil unless every disjunct has some (a disjunct
// without one could hold for any message).
func disjunctConds(n ast.Node) [][]cond {
	b, ok := n.(*ast.BinaryNode)
	if !ok || (b.Operator != "||" && b.Operator != "or") {
		return nil
	}
	var out [][]cond
	for _, side := range []ast.Node{b.Left, b.Right} {
		if alts := disjunctConds(side); alts != nil {
			out = append(out, alts...)
			continue
		}
		conds := equalityConds(side, nil)
		if len(conds) == 0 {
			return nil
		}
		out = append(out, conds)
	}
	return out
}

// indexMark starts a body path element that is an array index
// (`body.items[0]`) rather than an object key.
const indexMark = "\x01#"

// selectorCond recognises stream, headers.NAME (or headers["NAME"]) and
// body.a.b (optionally with ?.) as index dimensions.
func selectorCond(n ast.Node) (cond, bool) {
	if ch, ok := n.(*ast.ChainNode); ok {
		n = ch.Node
	}
	switch n := n.(type) {
	case *ast.IdentifierNode:
		if n.Value == varStream {
			return cond{key: dimKey{kind: dimStream}}, true
		}
	case *ast.MemberNode:
		var path []string
		for {
			if n.Method {
				return cond{}, false
			}
			switch prop := n.Property.(type) {
			case *ast.StringNode:
				if strings.HasPrefix(prop.Value, indexMark) || strings.Contains(prop.Value, "\x00") {
					return cond{}, false // would be ambiguous in the path encoding
				}
				path = append(path, prop.Value)
			case *ast.IntegerNode:
				if prop.Value < 0 {
					return cond{}, false
				}
				path = append(path, indexMark+strconv.Itoa(prop.Value))
			default:
				return cond{}, false
			}
			switch inner := n.Node.(type) {
			case *ast.MemberNode:
				n = inner
				continue
			case *ast.IdentifierNode:
				slices.Reverse(path)
				switch {
				case inner.Value == varHeaders && len(path) == 1:
					return cond{key: dimKey{kind: dimHeader, name: path[0]}}, true
				case inner.Value == varBody:
					return cond{key: dimKey{kind: dimBody, name: strings.Join(path, "\x00")}, path: path}, true
				}
			}
			return cond{}, false
		}
	}
	return cond{}, false
}
