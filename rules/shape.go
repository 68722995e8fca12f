package rules

import (
	"strings"

	"github.com/expr-lang/expr/ast"
)

// A shape is the part of a JSON body a rule set's expressions can observe.
// Decoding only that part (skipping, but still validating, the rest) is the
// largest saving in matching: payloads carry many fields, rules read few.
//
// A nil *shape means "everything below here". A non-nil shape is an object
// of which only keys are observable, or an array whose elements are each
// observable only as far as elems says; any other value found where a
// partial object or array is expected (a string, ...) is decoded whole,
// because an expression may react to its type.
//
// Rules read arrays by constant index (body.items[0].sku, items[-1]): such
// a read observes the array's length and part of one element, so every
// element is kept (the length, negative indexes and out-of-range errors
// stay the same) and each is cut to elems. Anything else that reads an
// array (len, in, any, a variable index) ends the path there: the array is
// decoded whole.
type shape struct {
	keys map[string]*shape
	// elems, when non-nil, is the part of every element of an array found
	// here that is observable; nil: arrays are decoded whole.
	elems *shape
	// elemsWhole records that some path observes whole elements, so a
	// later, deeper path must not set elems.
	elemsWhole bool
	// id numbers the node within its tree (see number), so a pooled
	// evalState can keep one reusable map per node. Nodes below an elems
	// match one object per element, so they have no id (-1) and take
	// their maps from the decoder's spares.
	id int
	// names and kids are keys as parallel slices, filled by number: a
	// linear scan of a few names beats hashing every payload key.
	names []string
	kids  []*shape
}

// lookup is keys[k] (with a numbered shape, a scan of names).
func (s *shape) lookup(k string) (*shape, bool) {
	if s.names == nil {
		child, ok := s.keys[k]
		return child, ok
	}
	for i, n := range s.names {
		if n == k {
			return s.kids[i], true
		}
	}
	return nil, false
}

// number gives every node of the tree rooted at s that matches at most
// one object of a payload a distinct id from 0, and returns how many there
// are; the nodes below an elems get -1.
func (s *shape) number() int {
	n := 0
	var walk func(sh *shape, many bool)
	walk = func(sh *shape, many bool) {
		sh.id = -1
		if !many {
			sh.id = n
			n++
		}
		sh.names, sh.kids = nil, nil
		if len(sh.keys) > 0 && len(sh.keys) <= 8 {
			for k, child := range sh.keys {
				sh.names = append(sh.names, k)
				sh.kids = append(sh.kids, child)
			}
		}
		for _, child := range sh.keys {
			if child != nil {
				walk(child, many)
			}
		}
		if sh.elems != nil {
			walk(sh.elems, true)
		}
	}
	walk(s, false)
	return n
}

// add marks path as observed in full; an elemKey step is any element of an
// array. An empty path makes the whole body observable, which the caller
// represents by dropping the shape (nil).
func (s *shape) add(path []string) {
	node := s
	for i, k := range path {
		if k == elemKey {
			switch {
			case node.elemsWhole:
				return
			case i == len(path)-1:
				node.elems, node.elemsWhole = nil, true
				return
			case node.elems == nil:
				node.elems = &shape{keys: map[string]*shape{}}
			}
			node = node.elems
			continue
		}
		child, seen := node.keys[k]
		switch {
		case seen && child == nil: // already whole
			return
		case i == len(path)-1:
			node.keys[k] = nil
			return
		case !seen:
			child = &shape{keys: map[string]*shape{}}
			node.keys[k] = child
		}
		node = child
	}
}

// elemKey is the path step of a constant array index (body.items[0]): any
// element, since shapes keep them all. It cannot be confused with a key:
// bodyPaths ends a path at a key starting with indexMark.
const elemKey = indexMark

// bodyPaths lists the body paths an expression observes: for every use of
// body, the constant member chain it starts (body.a.b, body["a"]?.b,
// body.items[0].sku, where the index is the step elemKey). An empty path
// means the expression uses body as a whole (passes it to a
// function, indexes it with a variable, reads $env...), so the whole body
// must be decoded. ast.Walk visits every node, so no use is missed.
func bodyPaths(root ast.Node) [][]string {
	v := &bodyPathVisitor{paths: map[ast.Node][]string{}, inner: map[ast.Node]bool{}}
	ast.Walk(&root, v)
	var out [][]string
	for n, p := range v.paths {
		if !v.inner[n] {
			out = append(out, p)
		}
	}
	if v.all {
		out = append(out, []string{})
	}
	return out
}

type bodyPathVisitor struct {
	paths map[ast.Node][]string // body identifiers and constant member chains on them
	inner map[ast.Node]bool     // those continued by a longer chain
	all   bool                  // $env used: everything is observable
}

// Visit runs children first (ast.Walk is post-order), so a member's base is
// already classified when the member is seen.
func (v *bodyPathVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		switch n.Value {
		case varBody:
			v.paths[n] = []string{}
		case "$env":
			v.all = true
		}
	case *ast.MemberNode:
		base, ok := v.paths[n.Node]
		step, isConst := constStep(n.Property)
		if !ok || !isConst || n.Method {
			return // the base, if a body path, stays an endpoint
		}
		v.paths[n] = append(append([]string(nil), base...), step)
		v.inner[n.Node] = true
	}
}

// constStep is the path step of a constant member property: a key, or
// elemKey for an integer index (negative ones too). Keys that could be
// mistaken for elemKey are not steps.
func constStep(prop ast.Node) (string, bool) {
	switch p := prop.(type) {
	case *ast.StringNode:
		if strings.HasPrefix(p.Value, indexMark) {
			return "", false
		}
		return p.Value, true
	case *ast.IntegerNode:
		return elemKey, true
	case *ast.UnaryNode:
		if _, ok := p.Node.(*ast.IntegerNode); ok && (p.Operator == "-" || p.Operator == "+") {
			return elemKey, true
		}
	}
	return "", false
}
