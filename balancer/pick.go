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

// pickP2C is power of two choices with the weights in the draw: it draws
// two candidates by weight and keeps the cheaper. Candidates that are alike
// (see tieSlack) tie and a coin settles it, so that equally fast instances
// at low load, whose costs do not tell them apart, get traffic in
// proportion to their weights. Dividing the cost by the weight instead, as
// Finagle does, makes the heavier of two idle instances win every duel.
//
// With equal weights and no instance ramping the two draws are distinct, as
// usual. Otherwise they are independent: with (ramped) weights summing to
// 1, i is drawn twice with probability w_i^2 and wins half of its tied
// duels with others, w_i*(1-w_i), w_i in all. An instance drawn twice
// still faces a uniformly drawn peer, so a slow heavy instance is avoided
// like any other, but counts one request fewer in flight (see duel).
func (b *Balancer) pickP2C(sub *subset, avoid *Endpoint, now int64) *Endpoint {
	n := len(sub.eps)
	if n == 1 {
		return sub.eps[0]
	}
	// Fast path: one random word gives both draws, a peer for a double
	// draw and the coin; when both draws are usable and kept (the common
	// case) no further draws are needed. Otherwise both are drawn again,
	// as candidate does, so that the pair keeps its distribution.
	r := rand.Uint64()
	distinct := sub.equal && b.rampedSince(sub.lastRamp, now)
	var i, j int
	if distinct {
		i = int((r & drawMask) * uint64(n) >> drawBits)
		if j = int((r >> drawBits & drawMask) * uint64(n-1) >> drawBits); j >= i {
			j++
		}
	} else {
		i, j = sub.draw(r&drawMask), sub.draw(r>>drawBits&drawMask)
	}
	if ei, ej := sub.eps[i], sub.eps[j]; usable(ei, avoid, strict, now) && usable(ej, avoid, strict, now) &&
		(b.ramped(ei, now) || b.keep(ei, now)) && (b.ramped(ej, now) || b.keep(ej, now)) {
		if i != j {
			return sub.eps[b.choose(sub, i, j, 0, r>>63 != 0, now)]
		}
		peer := int((r >> (2 * drawBits) & drawMask) * uint64(n-1) >> drawBits)
		if peer >= i {
			peer++
		}
		return b.duel(sub, avoid, strict, i, i, peer, false, now)
	}
	for level := range levels {
		i := b.candidate(sub, avoid, level, now, -1)
		if i < 0 {
			continue
		}
		not := -1
		if distinct {
			not = i
		}
		j := b.candidate(sub, avoid, level, now, not)
		if j < 0 {
			return sub.eps[i]
		}
		return b.duel(sub, avoid, level, i, j, -1, rand.Uint64()&1 != 0, now)
	}
	return sub.eps[0] // unreachable: level anyEndpoint accepts every endpoint
}

// duel picks between draws i and j, both usable at level. Distinct draws
// face each other, coin settling a tie. An instance drawn twice is what
// the weights ask for: it faces a peer (peer if usable at level, else one
// found by sample) and keeps the pick on a tie, counting one request fewer
// in flight. Without that discount a heavy instance with one request in
// flight would lose every duel to an idle lighter one, which at low load
// (in flight mostly 0 or 1) pulls shares toward equal; under load it is a
// small grace.
func (b *Balancer) duel(sub *subset, avoid *Endpoint, level, i, j, peer int, coin bool, now int64) *Endpoint {
	if i != j {
		return sub.eps[b.choose(sub, i, j, 0, coin, now)]
	}
	if peer < 0 || !usable(sub.eps[peer], avoid, level, now) {
		if peer = sample(sub, avoid, level, now, i); peer < 0 {
			return sub.eps[i]
		}
	}
	return sub.eps[b.choose(sub, i, peer, 1, true, now)]
}

// candidate draws the index of an endpoint other than not (-1 for none)
// usable at level, by weight, keeping a ramping endpoint with the
// probability of its ramp factor; after randomDraws misses it falls back to
// a uniform scan. -1 when none is usable.
func (b *Balancer) candidate(sub *subset, avoid *Endpoint, level int, now int64, not int) int {
	for range randomDraws {
		i := sub.draw(rand.Uint64() & drawMask)
		if i != not && usable(sub.eps[i], avoid, level, now) && b.keep(sub.eps[i], now) {
			return i
		}
	}
	return sample(sub, avoid, level, now, not)
}

// choose returns whichever of i and j is cheaper, with discount requests
// fewer counted in flight at i; on a tie i if tieToI, else j.
func (b *Balancer) choose(sub *subset, i, j int, discount int64, tieToI bool, now int64) int {
	if c := b.compare(sub, j, i, discount, now); c < 0 || c == 0 && !tieToI {
		return j
	}
	return i
}

// tieSlack: two candidates with the same load whose average latencies are
// within this factor of each other are alike, and their duel is a tie.
// The average of equally fast instances with log-normal latencies (sigma
// 0.5) wanders by about 7% (see avgWeight); a 10x slower or a failing
// instance is far outside it.
const tieSlack = 1.25

// unsampled is the cost of an instance without a latency estimate that
// already has requests in flight (Finagle's penalty): it gets one request
// at a time until its first answer.
const unsampled = float64(math.MaxInt64 >> 16)

// compare reports whether candidate j costs less (-1) or more (+1) than
// candidate i, or the same (0), with discount requests fewer counted in
// flight at i. least_pending compares loads. peak_ewma compares peak-EWMA
// costs unless the two are alike (see tieSlack): the alike test uses the
// plain average because the peak estimate grows with traffic (more
// samples, higher peaks), so deciding duels between equally fast instances
// on it would favour the one with less traffic and pull shares toward
// equal whatever the weights.
//
// Both peak estimates decay with the same time constant, so
// a_j*exp(-(now-s_j)/tau) < a_i*exp(-(now-s_i)/tau) reduces to
// a_j*exp((s_j-s_i)/tau) < a_i, with a = estimate*load and s the time of
// the last sample: one decay over the gap between the two samples, which
// under load is tiny and costs one Taylor step.
func (b *Balancer) compare(sub *subset, j, i int, discount int64, now int64) int {
	qj, qi := b.load(sub, j, 0, now), b.load(sub, i, discount, now)
	if b.cfg.Algorithm == LeastPending {
		return order(qj, qi, 1)
	}
	ej, ei := sub.eps[j], sub.eps[i]
	lj, li := math.Float64frombits(ej.est.Load()), math.Float64frombits(ei.est.Load())
	sj, si := ej.stamp.Load(), ei.stamp.Load()
	if lj == 0 || li == 0 || sj > now || si > now {
		return order(b.cost(sub, j, now), b.cost(sub, i, now), 1) // unsampled: penalty rules
	}
	if qj == qi && order(math.Float64frombits(ej.avg.Load()), math.Float64frombits(ei.avg.Load()), tieSlack) == 0 {
		return 0
	}
	if d := sj - si; d >= 0 {
		return order(lj*qj, li*qi*decay(d, b.tau), 1)
	}
	return order(lj*qj*decay(si-sj, b.tau), li*qi, 1)
}

// order is -1 when x*slack < y, +1 when y*slack < x, else 0.
func order(x, y, slack float64) int {
	switch {
	case x*slack < y:
		return -1
	case y*slack < x:
		return 1
	}
	return 0
}

// load is 1 + pending/weight, with discount fewer pending (not below 0),
// weights relative to the subset's mean (so that their scale does not
// matter) and ramped during slow start. The weight scales only the queue:
// an idle instance has load 1 whatever its weight, and weights act through
// the draw instead.
func (b *Balancer) load(sub *subset, i int, discount, now int64) float64 {
	e := sub.eps[i]
	pending := e.inflight.Load() - discount
	if pending <= 0 {
		return 1 // the common case at low load: no division
	}
	return 1 + float64(pending)*sub.unit[i]/e.rampFactor(now, b.slowStart)
}

// cost is an instance's current cost: its load for least_pending, decayed
// peak latency * load for peak_ewma.
func (b *Balancer) cost(sub *subset, i int, now int64) float64 {
	if b.cfg.Algorithm == LeastPending {
		return b.load(sub, i, 0, now)
	}
	e := sub.eps[i]
	l := e.latency(now, b.tau)
	if l == 0 {
		if pending := e.inflight.Load(); pending > 0 {
			return unsampled + float64(pending)
		}
		return 0
	}
	return l * b.load(sub, i, 0, now)
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
	return usable(e, avoid, strict, now) && b.keep(e, now)
}

// ramped reports whether e is past its slow start: keep without a draw.
func (b *Balancer) ramped(e *Endpoint, now int64) bool {
	return b.rampedSince(e.rampStart.Load(), now)
}

// rampedSince reports whether a slow start begun at start is over at now.
func (b *Balancer) rampedSince(start, now int64) bool {
	return b.slowStart <= 0 || now-start >= b.slowStart
}

// keep is true for an endpoint that is not ramping and, with the
// probability of its ramp factor, for one that is.
func (b *Balancer) keep(e *Endpoint, now int64) bool {
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
