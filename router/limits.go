package router

import (
	"context"
	"sync"
)

// serviceLimits gives each service two bounds:
//   - a queue (admission): at most 4 x cap messages for the service are
//     in the pipeline at once. A stream's reader waits for room before it
//     hands a message on, so a burst for a saturated service waits in its
//     stream, in Redis, while other streams keep flowing.
//   - a concurrency cap: at most cap requests to the service in flight.
type serviceLimits struct {
	limit     int
	overrides map[string]int
	// sems maps a service to its *serviceSem. A message looks its
	// services up once (prepare) and keeps the pointers; the lookup must
	// not take a lock shared by all workers.
	sems sync.Map
}

type serviceSem struct {
	name  string
	slots chan struct{} // concurrency tokens
	queue chan struct{} // admission tokens
}

// queueFactor sizes a service's queue relative to its concurrency cap.
const queueFactor = 4

func newServiceLimits(limit int, overrides map[string]int) *serviceLimits {
	return &serviceLimits{limit: limit, overrides: overrides}
}

func (l *serviceLimits) sem(svc string) *serviceSem {
	if s, ok := l.sems.Load(svc); ok {
		return s.(*serviceSem)
	}
	n := l.limit
	if o, ok := l.overrides[svc]; ok && o > 0 {
		n = o
	}
	s, _ := l.sems.LoadOrStore(svc, &serviceSem{name: svc, slots: make(chan struct{}, n), queue: make(chan struct{}, queueFactor*n)})
	return s.(*serviceSem)
}

// admit takes one queue token of each service in sems (sorted by name, so
// two readers never wait on each other in a cycle). It returns false,
// holding nothing, when ctx ends first.
func admit(ctx context.Context, sems []*serviceSem) bool {
	for i, s := range sems {
		q := s.queue
		select {
		case q <- struct{}{}: // room: take it even if ctx is done, so a stop
			continue // does not strand entries already read
		default:
		}
		select {
		case q <- struct{}{}:
		case <-ctx.Done():
			leave(sems[:i])
			return false
		}
	}
	return true
}

// leave returns the queue tokens taken by admit.
func leave(sems []*serviceSem) {
	for _, s := range sems {
		<-s.queue
	}
}

// acquire takes a concurrency slot of the service, waiting for one. It
// returns false when ctx ends first.
func (s *serviceSem) acquire(ctx context.Context) bool {
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// release frees a concurrency slot of the service.
func (s *serviceSem) release() { <-s.slots }
