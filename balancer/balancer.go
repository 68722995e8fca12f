package balancer

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msgroute/gateway/discovery"
)

// ErrNoInstances is returned by Pick when the service has no instance that
// carries the requested tags. Decide with errors.Is.
var ErrNoInstances = errors.New("no eligible instances")

// Outcome classifies a finished attempt for Done.
type Outcome int

const (
	// Success: the instance answered with anything that is not transient,
	// including 4xx other than 408 and 429.
	Success Outcome = iota
	// Failure: 408, 429, 5xx, timeout or connection error.
	Failure
	// Canceled: the attempt was abandoned by the gateway itself (shutdown);
	// it only releases the in-flight slot and says nothing about the instance.
	Canceled
)

// Balancer picks instances for services. It is safe for concurrent use;
// the zero value is not usable, construct with New.
type Balancer struct {
	cfg        Config
	epoch      time.Time
	tau        float64 // DecayTime in ns
	slowStart  int64   // ns; <= 0 disables
	baseEject  int64
	maxEject   int64
	threshold  int32
	minRetries float64

	mu       sync.Mutex // serializes adding services
	services atomic.Pointer[map[string]*service]
}

// service is one service's state: the current pool and every endpoint seen
// recently, including ones that left the pool (their stats are kept for
// forgetAfter in case they come back, as flapping instances do).
type service struct {
	name string
	pool atomic.Pointer[pool]
	ref  atomic.Uint64 // sampled EWMA of successful latencies, ns (float64 bits)

	budget retryBudget

	mu        sync.Mutex // guards endpoints, updated and ejection decisions
	endpoints map[instKey]*Endpoint
	updated   bool
}

// forgetAfter is how long stats of an instance that left the pool are kept.
const forgetAfter = 10 * time.Minute

// New returns a Balancer for cfg (see Config for defaults).
func New(cfg Config) (*Balancer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Balancer{
		cfg:        cfg,
		epoch:      cfg.Now(),
		tau:        float64(cfg.DecayTime),
		slowStart:  int64(cfg.SlowStart),
		baseEject:  int64(cfg.BaseEjection),
		maxEject:   int64(cfg.MaxEjection),
		threshold:  int32(min(cfg.ConsecutiveFailures, math.MaxInt32)),
		minRetries: float64(cfg.RetryBudget.MinPerSecond),
	}
	b.services.Store(&map[string]*service{})
	return b, nil
}

// now is the balancer clock: nanoseconds since New (monotonic with time.Now).
func (b *Balancer) now() int64 { return int64(b.cfg.Now().Sub(b.epoch)) }

func (b *Balancer) lookup(name string) *service { return (*b.services.Load())[name] }

func (b *Balancer) serviceFor(name string) *service {
	if s := b.lookup(name); s != nil {
		return s
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.services.Load()
	if s := old[name]; s != nil {
		return s
	}
	next := make(map[string]*service, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	s := &service{name: name, endpoints: map[instKey]*Endpoint{}}
	next[name] = s
	b.services.Store(&next)
	return s
}

// Instances reports how many instances service has in its pool now
// (healthy in Consul; ejected ones included), 0 for a service never
// updated. Safe for concurrent use; it does not allocate.
func (b *Balancer) Instances(service string) int {
	s := b.lookup(service)
	if s == nil {
		return 0
	}
	if p := s.pool.Load(); p != nil {
		return len(p.all.eps)
	}
	return 0
}

// Update replaces service's instances with a new snapshot (as published by
// discovery; instances is not modified or retained beyond copies of its
// elements). Endpoints of instances already known keep their statistics;
// new ones are seeded with the median latency of their peers and, unless
// this is the service's first snapshot, ramp up during SlowStart. Safe for
// concurrent use with everything else; calls for one service are serialized.
func (b *Balancer) Update(service string, instances []discovery.Instance) {
	s := b.serviceFor(service)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := b.now()
	first := !s.updated
	s.updated = true

	seed := -1.0 // computed on first need
	members := make([]*Endpoint, 0, len(instances))
	seen := make(map[instKey]bool, len(instances))
	for _, inst := range instances {
		k := instKey{node: inst.Node, id: inst.ID}
		if seen[k] {
			continue
		}
		seen[k] = true
		e := s.endpoints[k]
		switch {
		case e == nil:
			if seed < 0 {
				seed = b.medianLatency(s, now)
			}
			e = &Endpoint{svc: s, key: k}
			e.est.Store(math.Float64bits(seed))
			e.avg.Store(math.Float64bits(seed))
			e.stamp.Store(now)
			e.rampStart.Store(noRamp)
			s.endpoints[k] = e
			if !first {
				e.rampStart.Store(now)
			}
		case !e.inPool && !first:
			e.rampStart.Store(now) // back after a health-check failure: ramp again
		}
		e.inPool = true
		if old := e.info.Load(); old == nil || !sameInstance(old.inst, inst) {
			inst.Tags = slices.Clone(inst.Tags)
			e.info.Store(&endpointInfo{inst: inst, addr: inst.Addr()})
		}
		members = append(members, e)
	}
	for k, e := range s.endpoints {
		if seen[k] {
			continue
		}
		if e.inPool {
			e.inPool, e.removedAt = false, now
		} else if now-e.removedAt > int64(forgetAfter) {
			delete(s.endpoints, k)
		}
	}
	s.pool.Store(newPool(members))
}

func sameInstance(a, b discovery.Instance) bool {
	return a.ID == b.ID && a.Node == b.Node && a.Service == b.Service &&
		a.Address == b.Address && a.Port == b.Port && a.Weight == b.Weight &&
		slices.Equal(a.Tags, b.Tags) && slices.Equal(a.Declarations, b.Declarations)
}

// medianLatency is the median current estimate over the service's pool,
// ignoring instances without one; 0 when there is none. Caller holds s.mu.
func (b *Balancer) medianLatency(s *service, now int64) float64 {
	p := s.pool.Load()
	if p == nil {
		return 0
	}
	var ls []float64
	for _, e := range p.all.eps {
		if l := e.latency(now, b.tau); l > 0 {
			ls = append(ls, l)
		}
	}
	if len(ls) == 0 {
		return 0
	}
	slices.Sort(ls)
	return ls[len(ls)/2]
}

// Pick chooses an instance of service that carries every tag in tags,
// preferring one other than avoid (the endpoint a retry is moving away
// from; nil on a first attempt). It counts the pick as in flight: every
// successful Pick must be followed by exactly one Done. A Pick with a nil
// avoid counts as a request for the retry budget.
//
// Ejected instances are skipped unless every eligible instance is
// ejected, in which case Pick balances over all of them. It returns
// ErrNoInstances when no instance carries the tags. Pick never blocks,
// does no I/O and does not allocate (except once per new tag set and
// snapshot). Safe for concurrent use.
func (b *Balancer) Pick(service string, tags []string, avoid *Endpoint) (*Endpoint, error) {
	return b.pick(service, tags, avoid, b.now())
}

// PickAt is Pick at a time the caller has just read from the clock it gave
// the balancer (Config.Now): a caller that times the attempt anyway saves a
// clock read, which costs more than the pick itself on some virtual
// machines. Safe for concurrent use.
func (b *Balancer) PickAt(service string, tags []string, avoid *Endpoint, now time.Time) (*Endpoint, error) {
	return b.pick(service, tags, avoid, int64(now.Sub(b.epoch)))
}

func (b *Balancer) pick(service string, tags []string, avoid *Endpoint, now int64) (*Endpoint, error) {
	s := b.lookup(service)
	if s == nil {
		return nil, ErrNoInstances
	}
	p := s.pool.Load()
	if p == nil {
		return nil, ErrNoInstances
	}
	sub := p.subset(tags)
	if len(sub.eps) == 0 {
		return nil, ErrNoInstances
	}
	if avoid == nil {
		s.budget.request(now)
	}
	var e *Endpoint
	switch b.cfg.Algorithm {
	case RoundRobin:
		e = b.pickRoundRobin(sub, avoid, now)
	case Random:
		e = b.pickRandom(sub, avoid, now)
	default:
		e = b.pickP2C(sub, avoid, now)
	}
	e.inflight.Add(1)
	return e, nil
}

// Done reports the outcome of an attempt on e that took elapsed. It
// releases e's in-flight slot, feeds the latency estimate and the outlier
// detector. A failure is recorded as a latency of at least failurePenalty
// times the service's typical latency, so that failing fast never makes an
// instance look fast. A nil e is ignored. Safe for concurrent use.
func (b *Balancer) Done(e *Endpoint, o Outcome, elapsed time.Duration) {
	if e == nil {
		return
	}
	var now int64
	if o != Canceled {
		now = b.now() // a canceled attempt learns nothing: no clock read
	}
	b.done(e, o, elapsed, now)
}

// DoneAt is Done at a time the caller has just read from the clock it gave
// the balancer (Config.Now), typically the end of the attempt it timed
// with elapsed: like PickAt, it saves a clock read. Safe for concurrent
// use.
func (b *Balancer) DoneAt(e *Endpoint, o Outcome, elapsed time.Duration, now time.Time) {
	if e == nil {
		return
	}
	b.done(e, o, elapsed, int64(now.Sub(b.epoch)))
}

// done is Done at now on the balancer clock.
func (b *Balancer) done(e *Endpoint, o Outcome, elapsed time.Duration, now int64) {
	e.inflight.Add(-1)
	if o == Canceled {
		return
	}
	x := float64(max(elapsed, 0))
	s := e.svc
	if o == Success {
		if e.consecFail.Load() != 0 {
			e.consecFail.Store(0)
		}
		s.observeRef(x)
		e.observe(now, x, b.tau)
		if e.ejections.Load() > 0 {
			b.forgive(e, now)
		}
		return
	}
	ref := math.Float64frombits(s.ref.Load())
	e.observe(now, max(x, failurePenalty*ref, float64(minFailurePenalty)), b.tau)
	if n := e.consecFail.Add(1); b.threshold > 0 && n >= b.threshold {
		b.eject(e, now)
	}
}

const (
	// failurePenalty scales the service's typical latency into the latency
	// a failed attempt is recorded with.
	failurePenalty = 5.0
	// minFailurePenalty is the least latency a failure is recorded with.
	minFailurePenalty = 10 * time.Millisecond
)

// observeRef folds a successful latency into the service-wide reference,
// sampling one in 16 completions so that concurrent Done calls rarely
// write the shared word. Lost updates under races are harmless.
func (s *service) observeRef(x float64) {
	if rand.Uint32()&15 != 0 && s.ref.Load() != 0 {
		return
	}
	old := math.Float64frombits(s.ref.Load())
	next := x
	if old != 0 {
		next = old + (x-old)/8
	}
	s.ref.Store(math.Float64bits(next))
}

// eject takes e out of rotation for BaseEjection * 2^(n-1) (capped), unless
// that would eject more than MaxEjectionPercent of the service's pool.
func (b *Balancer) eject(e *Endpoint, now int64) {
	s := e.svc
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.ejected(now) || !e.inPool || e.consecFail.Load() < b.threshold {
		return // already ejected, gone, or a success intervened
	}
	p := s.pool.Load()
	ejected := 0
	for _, o := range p.all.eps {
		if o != e && o.ejected(now) {
			ejected++
		}
	}
	if (ejected+1)*100 > b.cfg.MaxEjectionPercent*len(p.all.eps) {
		return
	}
	n := e.ejections.Add(1)
	d := b.baseEject
	for i := int32(1); i < n && d < b.maxEject; i++ {
		d *= 2
	}
	d = min(d, b.maxEject)
	e.ejectedUntil.Store(now + d)
	e.consecFail.Store(0)
}

// forgive resets the ejection backoff of an instance that has been back
// for longer than MaxEjection.
func (b *Balancer) forgive(e *Endpoint, now int64) {
	until := e.ejectedUntil.Load()
	if now-until <= b.maxEject {
		return
	}
	e.svc.mu.Lock()
	if e.ejectedUntil.Load() == until {
		e.ejections.Store(0)
	}
	e.svc.mu.Unlock()
}

// AllowRetry reports whether service's retry budget admits one more retry
// now, and if so spends it. Retries are allowed while retries in the last
// second stay within Ratio * first attempts + MinPerSecond. False for a
// service the balancer has never seen. Safe for concurrent use.
func (b *Balancer) AllowRetry(service string) bool {
	s := b.lookup(service)
	if s == nil {
		return false
	}
	return s.budget.allow(b.now(), b.cfg.RetryBudget.Ratio, b.minRetries)
}
