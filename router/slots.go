package router

import (
	"context"
	"sync"
)

// slots counts the pipeline's free in-flight places (max_inflight). A
// reader takes as many as it may read in one call and gives back what the
// read did not fill, so taking and giving n places must cost O(1): a
// channel of tokens cost one channel operation per place, which at half
// load (a 256-entry read returning a handful) was ~500 channel operations
// per read and ~3% of the gateway's CPU.
type slots struct {
	mu   sync.Mutex
	free int
	held int
	// wake holds a token while places may be free for a waiter.
	wake chan struct{}
}

func newSlots(n int) *slots {
	return &slots{free: n, wake: make(chan struct{}, 1)}
}

// take waits until at least one place is free, then takes up to max of
// the free ones. It returns how many it took, or 0 when ctx ends first.
func (s *slots) take(ctx context.Context, max int) int {
	for {
		s.mu.Lock()
		if s.free > 0 {
			n := min(s.free, max)
			s.free -= n
			s.held += n
			more := s.free > 0
			s.mu.Unlock()
			if more {
				s.signal() // another waiter may take the rest
			}
			return n
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return 0
		}
	}
}

// give returns n places.
func (s *slots) give(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	s.held -= n
	s.mu.Unlock()
	s.signal()
}

// inUse reports how many places are taken.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *slots) signal() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}
