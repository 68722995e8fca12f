package router

import (
	"context"
	"sync"
)

// serviceLimits caps requests in flight per service, so one slow service
// cannot occupy every pipeline slot. A bounded number of messages may wait
// for a service's slot; beyond that acquire fails at once and the message
// is parked in Redis instead.
type serviceLimits struct {
	limit   int
	waiters int // bound on messages waiting per service
	mu      sync.Mutex
	sems    map[string]*serviceSem
}

type serviceSem struct {
	slots   chan struct{}
	waiting int // guarded by serviceLimits.mu
}

func newServiceLimits(limit int) *serviceLimits {
	return &serviceLimits{limit: limit, waiters: 2 * limit, sems: make(map[string]*serviceSem)}
}

func (l *serviceLimits) sem(svc string) *serviceSem {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sems[svc]
	if s == nil {
		s = &serviceSem{slots: make(chan struct{}, l.limit)}
		l.sems[svc] = s
	}
	return s
}

// acquire takes a slot of svc, waiting if a few others wait too. It
// returns false when too many already wait or ctx ends.
func (l *serviceLimits) acquire(ctx context.Context, svc string) bool {
	s := l.sem(svc)
	select {
	case s.slots <- struct{}{}:
		return true
	default:
	}
	l.mu.Lock()
	if s.waiting >= l.waiters {
		l.mu.Unlock()
		return false
	}
	s.waiting++
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		s.waiting--
		l.mu.Unlock()
	}()
	select {
	case s.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *serviceLimits) release(svc string) { <-l.sem(svc).slots }
