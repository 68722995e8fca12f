package router

import (
	"context"
	"slices"
	"sync"
)

// serviceLimits gives each service two bounds:
//   - a concurrency cap: at most cap requests to the service in flight;
//   - a queue (admission): at most queueFactor x cap messages for the
//     service are in the pipeline at once. A stream's reader waits for room
//     before it hands a message on, so a burst for a saturated service
//     waits in its stream, in Redis, while other streams keep flowing.
//
// A service's cap is its override (ServiceLimits), else ServiceConcurrency
// when set, else derived from what discovery knows: InstanceConcurrency per
// instance in the service's pool (at least one). A fixed cap for every
// service held a service of ten instances to the throughput of a few, and
// a user who keeps the defaults should get what the instances can take.
type serviceLimits struct {
	fixed       int // ServiceConcurrency; 0: derived
	perInstance int // InstanceConcurrency
	overrides   map[string]int
	instances   func(service string) int // healthy instances known; may be nil
	// sems maps a service to its *serviceSem. A message looks its
	// services up once (prepare) and keeps the pointers; the lookup must
	// not take a lock shared by all workers.
	sems sync.Map
}

// queueFactor sizes a service's queue relative to its concurrency cap.
const queueFactor = 4

func newServiceLimits(fixed, perInstance int, overrides map[string]int, instances func(string) int) *serviceLimits {
	return &serviceLimits{fixed: fixed, perInstance: perInstance, overrides: overrides, instances: instances}
}

func (l *serviceLimits) sem(svc string) *serviceSem {
	if s, ok := l.sems.Load(svc); ok {
		return s.(*serviceSem)
	}
	s := &serviceSem{name: svc, running: counter{factor: 1}, queued: counter{factor: queueFactor}}
	switch o, ok := l.overrides[svc]; {
	case ok && o > 0:
		s.fixed = o
	case l.fixed > 0:
		s.fixed = l.fixed
	default:
		s.limits = l
	}
	v, _ := l.sems.LoadOrStore(svc, s)
	return v.(*serviceSem)
}

// capOf is service svc's concurrency cap now.
func (l *serviceLimits) capOf(svc string) int {
	n := 1
	if l.instances != nil {
		n = max(n, l.instances(svc))
	}
	return n * l.perInstance
}

// serviceSem holds one service's counts. Both bounds are checked against
// the cap at the time of each acquisition, so a derived cap follows the
// service's pool as instances come and go; places already held are
// returned as usual.
type serviceSem struct {
	name   string
	fixed  int            // the cap when set; else derived from limits
	limits *serviceLimits // nil when fixed

	mu      sync.Mutex
	running counter // requests in flight, bound: the cap
	queued  counter // messages admitted to the pipeline, bound: queueFactor x cap
}

// counter is one bounded count and its waiters (FIFO).
type counter struct {
	n       int
	factor  int
	waiters []chan struct{}
}

// capacity is the service's concurrency cap now.
func (s *serviceSem) capacity() int {
	if s.limits == nil {
		return s.fixed
	}
	return s.limits.capOf(s.name)
}

// take increments c when it is below its bound, waiting otherwise. Room
// that is there is taken even when ctx is done (so a stop does not strand
// entries already read); it returns false, holding nothing, when ctx ends
// while waiting.
func (s *serviceSem) take(ctx context.Context, c *counter) bool {
	s.mu.Lock()
	for {
		if c.n < c.factor*s.capacity() {
			c.n++
			// A cap that grew may leave room for the next waiter too.
			s.wakeIfRoom(c)
			s.mu.Unlock()
			return true
		}
		ch := make(chan struct{})
		c.waiters = append(c.waiters, ch)
		s.mu.Unlock()
		select {
		case <-ch:
			s.mu.Lock()
		case <-ctx.Done():
			s.mu.Lock()
			if i := slices.Index(c.waiters, ch); i >= 0 {
				c.waiters = slices.Delete(c.waiters, i, i+1)
			} else {
				s.wakeIfRoom(c) // woken meanwhile: pass the wake-up on
			}
			s.mu.Unlock()
			return false
		}
	}
}

// give decrements c and wakes its first waiter.
func (s *serviceSem) give(c *counter) {
	s.mu.Lock()
	c.n--
	s.wakeIfRoom(c)
	s.mu.Unlock()
}

// wakeIfRoom wakes c's first waiter when c is below its bound. Called with
// mu held.
func (s *serviceSem) wakeIfRoom(c *counter) {
	if len(c.waiters) > 0 && c.n < c.factor*s.capacity() {
		close(c.waiters[0])
		c.waiters = slices.Delete(c.waiters, 0, 1)
	}
}

// admit takes one queue place of each service in sems (sorted by name, so
// two readers never wait on each other in a cycle). It returns false,
// holding nothing, when ctx ends first.
func admit(ctx context.Context, sems []*serviceSem) bool {
	for i, s := range sems {
		if !s.take(ctx, &s.queued) {
			leave(sems[:i])
			return false
		}
	}
	return true
}

// leave returns the queue places taken by admit.
func leave(sems []*serviceSem) {
	for _, s := range sems {
		s.give(&s.queued)
	}
}

// acquire takes a concurrency slot of the service, waiting for one. It
// returns false when ctx ends first.
func (s *serviceSem) acquire(ctx context.Context) bool { return s.take(ctx, &s.running) }

// release frees a concurrency slot of the service.
func (s *serviceSem) release() { s.give(&s.running) }
