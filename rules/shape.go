package rules

import "github.com/expr-lang/expr/ast"

// A shape is the part of a JSON body a rule set's expressions can observe.
// Decoding only that part (skipping, but still validating, the rest) is the
// largest saving in matching: payloads carry many fields, rules read few.
//
// A nil *shape means "everything below here". A non-nil shape is an object
// of which only keys are observable; any other value found where a partial
// object is expected (array, string, ...) is decoded whole, because an
// expression may react to its type.
type shape struct {
	keys map[string]*shape
	// id numbers the node within its tree (see number), so a pooled
	// evalState can keep one reusable map per node.
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

// number gives every node of the tree rooted at s a distinct id from 0 and
// returns how many there are.
func (s *shape) number() int {
	n := 0
	var walk func(*shape)
	walk = func(sh *shape) {
		sh.id = n
		n++
		if len(sh.keys) > 0 && len(sh.keys) <= 8 {
			sh.names, sh.kids = nil, nil
			for k, child := range sh.keys {
				sh.names = append(sh.names, k)
				sh.kids = append(sh.kids, child)
			}
		}
		for _, child := range sh.keys {
			if child != nil {
				walk(child)
			}
		}
	}
	walk(s)
	return n
}

// add marks path as observed in full. An empty path makes the whole body
// observable, which the caller represents by dropping the shape (nil).
func (s *shape) add(path []string) {
	node := s
	for i, k := range path {
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

// bodyPaths lists the body paths an expression observes: for every use of
// body, the constant member chain it starts (body.a.b, body["a"]?.b). An
// empty path means the expression uses body as a whole (passes it to a
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
		prop, isConst := n.Property.(*ast.StringNode)
		if !ok || !isConst || n.Method {
			return // the base, if a body path, stays an endpoint
		}
		v.paths[n] = append(append([]string(nil), base...), prop.Value)
		v.inner[n.Node] = true
	}
}
