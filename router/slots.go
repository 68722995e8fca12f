package router

import (
	"context"
	"slices"
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
	// spare recycles waiters: a reader waiting for places waits about once
	// per message finished when the pipeline is full, and a fresh waiter
	// and channel each time were most of the router's own allocations.
	spare sync.Pool
}

type slotWaiter struct {
	want, most int
	got        int           // places granted; set before the token is sent
	ready      chan struct{} // capacity 1: gets one token when the places are granted
}

func newSlots(n int) *slots { return &slots{size: n, free: n} }

// waiter returns an unqueued waiter, its ready channel empty.
func (s *slots) waiter(want, most int) *slotWaiter {
	w, _ := s.spare.Get().(*slotWaiter)
	if w == nil {
		w = &slotWaiter{ready: make(chan struct{}, 1)}
	}
	w.want, w.most, w.got = want, most, 0
	return w
}

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
	w := s.waiter(want, most)
	s.waiters = append(s.waiters, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		n := w.got
		s.spare.Put(w)
		return n
	case <-ctx.Done():
	}
	s.mu.Lock()
	for i, x := range s.waiters {
		if x == w { // not served yet: leave the queue
			s.waiters = slices.Delete(s.waiters, i, i+1)
			s.grant() // the next waiter may be satisfiable now
			s.mu.Unlock()
			s.spare.Put(w)
			return 0
		}
	}
	s.mu.Unlock()
	// Served while ctx ended (the token was sent under mu): give the
	// places back.
	<-w.ready
	s.give(w.got)
	s.spare.Put(w)
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
		// Shift the queue (it holds a waiter or two) rather than slice
		// its head off, so that append keeps reusing its array.
		s.waiters = slices.Delete(s.waiters, 0, 1)
		w.got = min(s.free, w.most)
		s.free -= w.got
		w.ready <- struct{}{}
	}
}

// inUse reports how many places are taken.
func (s *slots) inUse() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size - s.free
}
