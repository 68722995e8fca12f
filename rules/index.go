package rules

import (
	"sort"
	"strconv"
	"strings"
)

// index narrows the routes a message must be evaluated against. Each route is
// filed either under one dimension value it requires (stream == "orders",
// headers.type == "order.created", body.kind == "refund", or one of the
// values of an `in` list or a streams filter) or, when it requires none, in
// the generic list. For a message, the candidates are the generic routes plus
// the bucket of the message's own value on each dimension: a handful of short
// sorted lists whatever the number of routes. Merging them by evaluation order
// reproduces a linear scan exactly, because a route outside the candidates
// cannot match.
type index struct {
	generic []int32
	dims    []dimension
}

// dimension is one thing routes select on, with its buckets of route
// positions (ascending) by required value.
type dimension struct {
	key     dimKey
	path    []string // body path for dimBody
	buckets map[string][]int32
}

// buildIndex files every route under its most selective cond: the one whose
// values are shared by the fewest routes. Ties prefer stream, then headers,
// then body, since reading the body needs the payload decoded.
func buildIndex(routes []*Route) index { return indexRoutes(routes, true) }

// indexRoutes is buildIndex; with residuals false it leaves the routes'
// programs alone (each route is then evaluated whole), so routes shared
// with sets already in use can be indexed again without a data race.
func indexRoutes(routes []*Route, residuals bool) index {
	conds := make([][]cond, len(routes))
	popularity := map[dimKey]map[string]int{}
	for i, r := range routes {
		if r.Streams != nil {
			conds[i] = append(conds[i], cond{key: dimKey{kind: dimStream}, values: r.Streams, loc: -1})
		}
		if r.match != nil {
			conds[i] = append(conds[i], r.match.conds...)
		}
		all := conds[i]
		if r.match != nil && len(conds[i]) == 0 {
			for _, alt := range r.match.alts {
				all = append(all, alt...)
			}
		}
		for _, c := range all {
			pv := popularity[c.key]
			if pv == nil {
				pv = map[string]int{}
				popularity[c.key] = pv
			}
			for _, v := range dedup(c.values) {
				pv[v]++
			}
		}
	}

	var idx index
	dimPos := map[dimKey]int{}
	file := func(i int, c cond) {
		p, ok := dimPos[c.key]
		if !ok {
			p = len(idx.dims)
			dimPos[c.key] = p
			idx.dims = append(idx.dims, dimension{key: c.key, path: c.path, buckets: map[string][]int32{}})
		}
		for _, v := range dedup(c.values) {
			b := idx.dims[p].buckets[v]
			if n := len(b); n > 0 && b[n-1] == int32(i) {
				continue // filed here already by another disjunct
			}
			idx.dims[p].buckets[v] = append(b, int32(i))
		}
	}
	for i := range routes {
		best := cheapest(conds[i], popularity)
		if best >= 0 {
			c := conds[i][best]
			if residuals && c.loc >= 0 {
				routes[i].eval, routes[i].readsBody = routes[i].match.residual(c)
				routes[i].fast = nil
				if routes[i].eval != nil {
					routes[i].fast = buildPred(routes[i].match.tree, c.loc)
				}
			}
			file(i, c)
			continue
		}
		// A disjunction is filed under one conjunct of each disjunct: a
		// message is a candidate when it satisfies any of them. The whole
		// expression is still evaluated.
		if m := routes[i].match; m != nil && len(m.alts) > 0 {
			for _, alt := range m.alts {
				file(i, alt[cheapest(alt, popularity)])
			}
			continue
		}
		idx.generic = append(idx.generic, int32(i))
	}
	// Body dimensions last: the others may already rule a message out
	// cheaply, and their order does not change the result.
	sort.SliceStable(idx.dims, func(a, b int) bool { return idx.dims[a].key.kind < idx.dims[b].key.kind })
	return idx
}

// cheapest returns the position of the most selective of conds: the one
// whose values are shared by the fewest routes; ties prefer stream, then
// headers, then body. It returns -1 when conds is empty.
func cheapest(conds []cond, popularity map[dimKey]map[string]int) int {
	best, bestCost := -1, 0
	for j, c := range conds {
		cost := 0
		for _, v := range dedup(c.values) {
			cost += popularity[c.key][v]
		}
		if best < 0 || cost < bestCost || cost == bestCost && c.key.kind < conds[best].key.kind {
			best, bestCost = j, cost
		}
	}
	return best
}

// dedup returns values without repeats, preserving order. Lists are short.
func dedup(values []string) []string {
	for i := 1; i < len(values); i++ {
		for j := 0; j < i; j++ {
			if values[i] == values[j] {
				out := make([]string, 0, len(values))
				seen := map[string]bool{}
				for _, v := range values {
					if !seen[v] {
						seen[v] = true
						out = append(out, v)
					}
				}
				return out
			}
		}
	}
	return values
}

// start fills st.lists with the candidate lists for st.msg.
func (idx *index) start(st *evalState) {
	if len(idx.generic) > 0 {
		st.lists = append(st.lists, idx.generic)
	}
	for i := range idx.dims {
		d := &idx.dims[i]
		v, ok := d.value(st)
		if !ok {
			continue
		}
		if l := d.buckets[v]; len(l) > 0 {
			st.lists = append(st.lists, l)
		}
	}
	for range st.lists {
		st.pos = append(st.pos, 0)
	}
}

// value is the message's value on the dimension, with the semantics of the
// expression that produced the cond: a missing attribute reads as "", a body
// path that is missing or not a string has no value (it can equal no string
// constant).
func (d *dimension) value(st *evalState) (string, bool) {
	switch d.key.kind {
	case dimStream:
		return st.msg.Stream, true
	case dimHeader:
		return st.msg.Headers[d.key.name], true
	}
	body, state := st.decodeBody()
	if state != bodyJSON {
		return "", false
	}
	for _, k := range d.path {
		if i, isIndex := strings.CutPrefix(k, indexMark); isIndex {
			arr, ok := body.([]any)
			n, _ := strconv.Atoi(i)
			if !ok || n >= len(arr) {
				return "", false
			}
			body = arr[n]
			continue
		}
		obj, ok := body.(map[string]any)
		if !ok {
			return "", false
		}
		body = obj[k]
	}
	s, ok := body.(string)
	return s, ok
}

// next returns the next candidate route position in evaluation order.
func (st *evalState) next() (int32, bool) {
	best := -1
	var bestVal int32
	for i, l := range st.lists {
		if st.pos[i] >= len(l) {
			continue
		}
		if v := l[st.pos[i]]; best < 0 || v < bestVal {
			best, bestVal = i, v
		}
	}
	if best < 0 {
		return 0, false
	}
	// A route filed under several dimensions (a disjunction) may head
	// more than one list: take it once.
	for i, l := range st.lists {
		if st.pos[i] < len(l) && l[st.pos[i]] == bestVal {
			st.pos[i]++
		}
	}
	return bestVal, true
}
