package router

import (
	"context"
	"sync"
)

// slots counts the pipeline's free in-flight places (max_inflight). A
// reader takes as many as it may read in one call and gives back what the
// read did not fill, so taking and giving n places costs O(1) (a channel
// of tokens cost one channel operation per place: ~500 per small read).
//
// A taker names how many places it wants at least. Under a backlog the
// readers want a good share of a batch, so that the pipeline refills with
// a few large XREADGROUPs instead of one tiny read (a Redis round trip
// for one entry) per finished message. Waiters are served in order, each
// woken once, when enough places are free.
type slots struct {
	mu      sync.Mutex
	free    int
	size    int
	waiters []*slotWaiter // FIFO
}

type slotWaiter struct {
	want, most int
	got        int           // places granted; set before ready is closed
	ready      chan struct{} // closed when the places are granted
}

func newSlots(n int) *slots { return &slots{size: n, free: n} }

// take waits until at least want places are free (and earlier waiters are
// served), then takes up to max of the free ones. It returns how many it
// took, or 0 when ctx ends first. want is clamped to [1, most].
func (s *slots) take(ctx context.Context, want, most int) int {
	want = min(max(want, 1), most)
	s.mu.Lock()
	if len(s.waiters) == 0 && s.free >= want {
		n := min(s.free, most)
		s.free -= n
		s.mu.Unlock()
		return n
	}
	w := &slotWaiter{want: want, most: most, ready: make(chan struct{})}
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return w.got
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, x := range s.waiters {
		if x == w { // not served yet: leave the queue
			s.waiters = append(s.waiters[:i], s.waiters[i+1:]...)
			s.grant() // the next waiter may be satisfiable now
			s.mu.Unlock()
			return 0
		}
	}
	s.mu.Unlock()
	// Served while ctx ended: give the places back.
	s.give(w.got)
	return 0
}

// give returns n places and serves the waiters they satisfy.
func (s *slots) give(n int) {
	if n <= 0 {
		return
	}
	s.mu.Lock()
	s.free += n
	s.grant()
	s.mu.Unlock()
}

// grant serves waiters in order while the first one's want is free.
// Called with mu held.
func (s *slots) grant() {
	for len(s.waiters) > 0 && s.free >= s.waiters[0].want {
		w := s.waiters[0]
		s.waiters[0] = nil
		s.waiters = s.waiters[1:]
		w.got = min(s.free, w.most)
		s.free -= w.got
		close(w.ready)
	}
}

// inUse reports how many places are taken.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free
}
