package balancer

import (
	"math"
	"slices"
	"sync/atomic"

	"github.com/msgroute/gateway/discovery"
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
	unit    []float64 // mean weight / weight: what one request in flight adds to the load
	total   float64
	equal   bool // all weights equal: index arithmetic instead of search
	// lastRamp is the latest slow-start beginning among eps. Endpoints
	// start ramping only as they join a pool, which is built after, so it
	// does not change.
	lastRamp int64
	rr       atomic.Uint64 // round-robin counter
}

func newPool(eps []*Endpoint) *pool {
	return &pool{all: newSubset(nil, eps)}
}

func newSubset(tags []string, eps []*Endpoint) *subset {
	s := &subset{
		tags:     tags,
		eps:      eps,
		weights:  make([]float64, len(eps)),
		cum:      make([]float64, len(eps)),
		unit:     make([]float64, len(eps)),
		equal:    true,
		lastRamp: noRamp,
	}
	for i, e := range eps {
		w := sanitizeWeight(e.info.Load().inst.Weight)
		s.weights[i] = w
		s.total += w
		s.cum[i] = s.total
		if w != s.weights[0] {
			s.equal = false
		}
		s.lastRamp = max(s.lastRamp, e.rampStart.Load())
	}
	for i, w := range s.weights {
		s.unit[i] = s.total / float64(len(eps)) / w
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
		if eligible(e.info.Load().inst, tags) {
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

// eligible reports whether inst carries every tag in want, where a
// subscription declaration's Key counts as a tag (subscription routes ask
// for the instances declaring them that way).
func eligible(inst discovery.Instance, want []string) bool {
	for _, w := range want {
		if !slices.Contains(inst.Tags, w) && !slices.ContainsFunc(inst.Declarations, func(d discovery.Declaration) bool { return d.Key == w }) {
			return false
		}
	}
	return true
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

// drawBits is the resolution of one draw: three draws and a coin come out
// of one random word.
const (
	drawBits = 21
	drawMask = 1<<drawBits - 1
)

// draw maps u, uniform in [0, 2^drawBits), to an index with probability
// proportional to its weight.
func (s *subset) draw(u uint64) int {
	if s.equal {
		return int(u * uint64(len(s.eps)) >> drawBits)
	}
	return s.weightedIndex(float64(u) * (s.total / (1 << drawBits)))
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
