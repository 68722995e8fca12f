package balancer

import (
	"math"
	"math/rand/v2"
)

// Usability levels, tried in order: the strictest that yields a candidate
// wins. Level strict excludes ejected instances and avoid; noEjected lets
// avoid back in (a retry with a single healthy instance); anyEndpoint is
// the panic mode when every eligible instance is ejected.
const (
	strict = iota
	noEjected
	anyEndpoint
	levels
)

// randomDraws is how many random draws are tried before falling back to a
// scan; with at most half the instances ejected the scan is rare.
const randomDraws = 4

func usable(e, avoid *Endpoint, level int, now int64) bool {
	switch level {
	case strict:
		return e != avoid && !e.ejected(now)
	case noEjected:
		return !e.ejected(now)
	default:
		return true
	}
}

// sample returns the index of a uniformly drawn endpoint usable at level,
// other than index not (-1 for none), or -1 when there is none.
func sample(sub *subset, avoid *Endpoint, level int, now int64, not int) int {
	n := len(sub.eps)
	for range randomDraws {
		i := rand.IntN(n)
		if i != not && usable(sub.eps[i], avoid, level, now) {
			return i
		}
	}
	start := rand.IntN(n)
	for k := range n {
		i := start + k
		if i >= n {
			i -= n
		}
		if i != not && usable(sub.eps[i], avoid, level, now) {
			return i
		}
	}
	return -1
}

// pickP2C draws two distinct usable instances and keeps the cheaper one
// (power of two choices).
func (b *Balancer) pickP2C(sub *subset, avoid *Endpoint, now int64) *Endpoint {
	// Fast path: one random word gives two distinct indices; when both
	// are usable (the common case) no further draws are needed.
	if n := uint64(len(sub.eps)); n > 1 {
		r := rand.Uint64()
		i := int((r >> 32) * n >> 32)
		j := int((r & 0xffffffff) * (n - 1) >> 32)
		if j >= i {
			j++
		}
		if usable(sub.eps[i], avoid, strict, now) && usable(sub.eps[j], avoid, strict, now) {
			if b.cheaper(sub, j, i, now) {
				return sub.eps[j]
			}
			return sub.eps[i]
		}
	}
	for level := range levels {
		i := sample(sub, avoid, level, now, -1)
		if i < 0 {
			continue
		}
		j := sample(sub, avoid, level, now, i)
		if j < 0 {
			return sub.eps[i]
		}
		if b.cheaper(sub, j, i, now) {
			return sub.eps[j]
		}
		return sub.eps[i]
	}
	return sub.eps[0] // unreachable: level anyEndpoint accepts every endpoint
}

// unsampled is the cost of an instance without a latency estimate that
// already has requests in flight (Finagle's penalty): it gets one request
// at a time until its first answer.
const unsampled = float64(math.MaxInt64 >> 16)

// cheaper reports whether candidate j costs less than candidate i.
//
// For peak_ewma both estimates decay with the same time constant, so
// a_j*exp(-(now-s_j)/tau) < a_i*exp(-(now-s_i)/tau) reduces to
// a_j*exp((s_j-s_i)/tau) < a_i, with a = estimate*(pending+1)/weight and s
// the time of the last sample: one decay over the gap between the two
// samples, which under load is tiny and costs one Taylor step.
func (b *Balancer) cheaper(sub *subset, j, i int, now int64) bool {
	if b.cfg.Algorithm == LeastPending {
		return b.cost(sub, j, now) < b.cost(sub, i, now)
	}
	ej, ei := sub.eps[j], sub.eps[i]
	lj, li := math.Float64frombits(ej.est.Load()), math.Float64frombits(ei.est.Load())
	sj, si := ej.stamp.Load(), ei.stamp.Load()
	if lj == 0 || li == 0 || sj > now || si > now {
		return b.cost(sub, j, now) < b.cost(sub, i, now) // unsampled: penalty rules
	}
	aj := lj * float64(ej.inflight.Load()+1) / (sub.weights[j] * ej.rampFactor(now, b.slowStart))
	ai := li * float64(ei.inflight.Load()+1) / (sub.weights[i] * ei.rampFactor(now, b.slowStart))
	if d := sj - si; d >= 0 {
		return aj < ai*decay(d, b.tau)
	}
	return aj*decay(si-sj, b.tau) < ai
}

// cost is an instance's current cost: (pending+1)/weight for
// least_pending, decayed latency * (pending+1) / weight for peak_ewma.
func (b *Balancer) cost(sub *subset, i int, now int64) float64 {
	e := sub.eps[i]
	pending := float64(e.inflight.Load())
	w := sub.weights[i] * e.rampFactor(now, b.slowStart)
	if b.cfg.Algorithm == LeastPending {
		return (pending + 1) / w
	}
	l := e.latency(now, b.tau)
	if l == 0 {
		if pending > 0 {
			return unsampled + pending
		}
		return 0
	}
	return l * (pending + 1) / w
}

// pickRandom draws by weight; ramping instances are accepted with the
// probability of their ramp factor.
func (b *Balancer) pickRandom(sub *subset, avoid *Endpoint, now int64) *Endpoint {
	for range randomDraws {
		i := sub.weightedIndex(rand.Float64() * sub.total)
		if b.accept(sub.eps[i], avoid, now) {
			return sub.eps[i]
		}
	}
	return b.fallback(sub, avoid, now)
}

// pickRoundRobin walks the pool with one shared counter. With equal
// weights it is a plain rotation; otherwise the counter drives a
// golden-ratio sequence over the cumulative weights, which interleaves
// instances in proportion to their weights.
func (b *Balancer) pickRoundRobin(sub *subset, avoid *Endpoint, now int64) *Endpoint {
	n := len(sub.eps)
	for range n {
		c := sub.rr.Add(1) - 1
		var i int
		if sub.equal {
			i = int(c % uint64(n))
		} else {
			_, frac := math.Modf(float64(c) * invPhi)
			i = sub.weightedIndex(frac * sub.total)
		}
		if b.accept(sub.eps[i], avoid, now) {
			return sub.eps[i]
		}
	}
	return b.fallback(sub, avoid, now)
}

// invPhi is 1/φ, whose multiples modulo 1 are the most evenly spread.
const invPhi = 0.6180339887498949

func (b *Balancer) accept(e, avoid *Endpoint, now int64) bool {
	if !usable(e, avoid, strict, now) {
		return false
	}
	f := e.rampFactor(now, b.slowStart)
	return f >= 1 || rand.Float64() < f
}

// fallback picks uniformly at the strictest level that has a candidate.
func (b *Balancer) fallback(sub *subset, avoid *Endpoint, now int64) *Endpoint {
	for level := range levels {
		if i := sample(sub, avoid, level, now, -1); i >= 0 {
			return sub.eps[i]
		}
	}
	return sub.eps[0]
}
