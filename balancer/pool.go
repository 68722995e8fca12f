package balancer

import (
	"math"
	"slices"
	"sync/atomic"
)

// pool is one immutable snapshot of a service's instances. Subsets for tag
// filters are built on first use and cached on the pool, so a new snapshot
// starts with an empty cache.
type pool struct {
	all     *subset
	subsets atomic.Pointer[[]*subset] // copy-on-write; never more than maxSubsets
}

// maxSubsets bounds the tag-filter cache; rules name few distinct tag sets.
// Beyond it, filtered subsets are built per pick (allocating).
const maxSubsets = 64

// subset is the instances eligible for one tag filter, with their static
// weights and cumulative weights for weighted random and round robin.
type subset struct {
	tags    []string
	eps     []*Endpoint
	weights []float64
	cum     []float64 // cum[i] = sum of weights[0..i]
	total   float64
	equal   bool          // all weights equal: index arithmetic instead of search
	rr      atomic.Uint64 // round-robin counter
}

func newPool(eps []*Endpoint) *pool {
	return &pool{all: newSubset(nil, eps)}
}

func newSubset(tags []string, eps []*Endpoint) *subset {
	s := &subset{
		tags:    tags,
		eps:     eps,
		weights: make([]float64, len(eps)),
		cum:     make([]float64, len(eps)),
		equal:   true,
	}
	for i, e := range eps {
		w := sanitizeWeight(e.info.Load().inst.Weight)
		s.weights[i] = w
		s.total += w
		s.cum[i] = s.total
		if w != s.weights[0] {
			s.equal = false
		}
	}
	return s
}

// sanitizeWeight guards against weights discovery should never publish.
func sanitizeWeight(w float64) float64 {
	if !(w > 0) || math.IsInf(w, 0) {
		return 1
	}
	return w
}

// subset returns the instances carrying every tag in tags (in any order).
func (p *pool) subset(tags []string) *subset {
	if len(tags) == 0 {
		return p.all
	}
	cached := p.subsets.Load()
	if cached != nil {
		for _, s := range *cached {
			if sameTagSet(s.tags, tags) {
				return s
			}
		}
	}
	var eps []*Endpoint
	for _, e := range p.all.eps {
		if hasAllTags(e.info.Load().inst.Tags, tags) {
			eps = append(eps, e)
		}
	}
	s := newSubset(slices.Clone(tags), eps)
	for {
		var next []*subset
		if cached != nil {
			if len(*cached) >= maxSubsets {
				return s
			}
			next = append(slices.Clone(*cached), s)
		} else {
			next = []*subset{s}
		}
		if p.subsets.CompareAndSwap(cached, &next) {
			return s
		}
		cached = p.subsets.Load()
		for _, c := range *cached {
			if sameTagSet(c.tags, tags) {
				return c
			}
		}
	}
}

func hasAllTags(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// sameTagSet reports whether a and b hold the same tags, ignoring order.
// Tag lists are short, so the quadratic scan beats any allocation.
func sameTagSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	return hasAllTags(a, b) && hasAllTags(b, a)
}

// weightedIndex maps u in [0, total) to an index by cumulative weight.
func (s *subset) weightedIndex(u float64) int {
	if s.equal {
		i := int(u / s.weights[0])
		return min(i, len(s.eps)-1)
	}
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if s.cum[mid] <= u {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}
