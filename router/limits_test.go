package router

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// tryAcquire reports whether s.acquire succeeds within d.
func tryAcquire(s *serviceSem, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return s.acquire(ctx)
}

func TestServiceCapFixedAndOverride(t *testing.T) {
	l := newServiceLimits(3, 32, map[string]int{"legacy": 1}, func(string) int { return 10 })
	cases := []struct {
		svc  string
		want int
	}{{"orders", 3}, {"legacy", 1}}
	for _, c := range cases {
		s := l.sem(c.svc)
		for i := range c.want {
			if !tryAcquire(s, time.Second) {
				t.Fatalf("%s: acquire %d of %d failed", c.svc, i+1, c.want)
			}
		}
		if tryAcquire(s, 20*time.Millisecond) {
			t.Fatalf("%s: acquire %d succeeded, want cap %d", c.svc, c.want+1, c.want)
		}
	}
}

// TestServiceCapFollowsInstances: with no fixed cap, a service may have
// InstanceConcurrency requests in flight per instance, and the cap moves
// with the pool.
func TestServiceCapFollowsInstances(t *testing.T) {
	var n atomic.Int64
	n.Store(2)
	l := newServiceLimits(0, 3, nil, func(string) int { return int(n.Load()) })
	s := l.sem("orders")
	for i := range 6 {
		if !tryAcquire(s, time.Second) {
			t.Fatalf("acquire %d of 6 (2 instances x 3) failed", i+1)
		}
	}
	if tryAcquire(s, 20*time.Millisecond) {
		t.Fatal("acquire 7 succeeded with 2 instances x 3")
	}
	// Two waiters; the pool grows to 4 instances (cap 12): one release
	// wakes the first, which passes the wake-up on to the second.
	got := make(chan bool, 2)
	for range 2 {
		go func() { got <- tryAcquire(s, 5*time.Second) }()
	}
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.running.waiters) == 2
	})
	n.Store(4)
	s.release()
	for range 2 {
		if !<-got {
			t.Fatal("a waiter was not served after the pool grew")
		}
	}
	if s.running.n != 7 {
		t.Fatalf("running = %d, want 7", s.running.n)
	}
	// No instance known yet: one instance's share, not nothing.
	n.Store(0)
	z := newServiceLimits(0, 3, nil, func(string) int { return int(n.Load()) }).sem("new")
	for i := range 3 {
		if !tryAcquire(z, time.Second) {
			t.Fatalf("service without instances: acquire %d of 3 failed", i+1)
		}
	}
}

func TestAdmitBoundsQueueAndCancels(t *testing.T) {
	l := newServiceLimits(2, 32, nil, nil)
	a, b := l.sem("a"), l.sem("b")
	ctx := context.Background()
	for i := range queueFactor * 2 {
		if !admit(ctx, []*serviceSem{a, b}) {
			t.Fatalf("admit %d failed", i+1)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if admit(short, []*serviceSem{a, b}) {
		t.Fatal("admit beyond the queue succeeded")
	}
	if a.queued.n != queueFactor*2 || b.queued.n != queueFactor*2 || len(a.queued.waiters) != 0 {
		t.Fatalf("a failed admit left counts a=%d b=%d, waiters %d", a.queued.n, b.queued.n, len(a.queued.waiters))
	}
	leave([]*serviceSem{a, b})
	if !admit(ctx, []*serviceSem{a, b}) {
		t.Fatal("admit after leave failed")
	}
}

// waitFor polls cond until it holds, failing the test after 5 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
