package router

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSlotsTakeGive(t *testing.T) {
	s := newSlots(10)
	ctx := context.Background()
	if n := s.take(ctx, 1, 4); n != 4 {
		t.Fatalf("take(4) of 10 free = %d", n)
	}
	if n := s.take(ctx, 1, 100); n != 6 {
		t.Fatalf("take(100) of 6 free = %d", n)
	}
	if n := s.inUse(); n != 10 {
		t.Fatalf("inUse = %d, want 10", n)
	}
	// Nothing free: take waits for a give.
	got := make(chan int)
	go func() { got <- s.take(ctx, 1, 100) }()
	select {
	case n := <-got:
		t.Fatalf("take returned %d with nothing free", n)
	case <-time.After(50 * time.Millisecond):
	}
	s.give(3)
	if n := <-got; n != 3 {
		t.Fatalf("take after give(3) = %d, want 3", n)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if n := s.take(cctx, 1, 1); n != 0 {
		t.Fatalf("take on a done context with nothing free = %d, want 0", n)
	}
	s.give(10)
	if n := s.inUse(); n != 0 {
		t.Fatalf("inUse after giving all back = %d", n)
	}
}

// TestSlotsEveryWaiterWakes: two waiters blocked on an empty semaphore
// both get places when enough are given back at once.
func TestSlotsEveryWaiterWakes(t *testing.T) {
	s := newSlots(4)
	ctx := context.Background()
	s.take(ctx, 1, 4)
	var wg sync.WaitGroup
	res := make(chan int, 2)
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); res <- s.take(ctx, 1, 2) }()
	}
	time.Sleep(20 * time.Millisecond) // both are waiting
	s.give(4)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("a waiter was not woken though places were free")
	}
	if a, b := <-res, <-res; a+b != 4 {
		t.Fatalf("waiters took %d and %d, want 4 in all", a, b)
	}
}

// TestSlotsConcurrentNeverOversubscribe: many takers and givers never hold
// more than the capacity, and everything is given back.
func TestSlotsConcurrentNeverOversubscribe(t *testing.T) {
	const capacity = 16
	s := newSlots(capacity)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2000 {
				n := s.take(ctx, 1, 5)
				if h := s.inUse(); h > capacity {
					t.Errorf("inUse %d > capacity %d", h, capacity)
				}
				s.give(n)
			}
		}()
	}
	wg.Wait()
	if n := s.inUse(); n != 0 {
		t.Fatalf("inUse after all gave back = %d", n)
	}
}

// TestSlotsWaitForWant: a taker wanting n places waits until n are free,
// then takes what is free up to its maximum; places given back one at a
// time do not wake it before that.
func TestSlotsWaitForWant(t *testing.T) {
	s := newSlots(8)
	ctx := context.Background()
	s.take(ctx, 1, 8)
	got := make(chan int, 1)
	go func() { got <- s.take(ctx, 4, 6) }()
	for i := 0; i < 3; i++ {
		s.give(1)
		select {
		case n := <-got:
			t.Fatalf("take(want 4) returned %d with %d free", n, i+1)
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.give(4) // 7 free
	if n := <-got; n != 6 {
		t.Fatalf("take(want 4, most 6) with 7 free = %d, want 6", n)
	}
	if n := s.inUse(); n != 7 {
		t.Fatalf("inUse = %d, want 7", n)
	}
}

// TestSlotsServeWaitersInOrder: a small taker does not overtake an earlier
// one waiting for more, and a cancelled waiter leaves the queue holding
// nothing.
func TestSlotsServeWaitersInOrder(t *testing.T) {
	s := newSlots(4)
	ctx := context.Background()
	s.take(ctx, 1, 4)
	big := make(chan int, 1)
	go func() { big <- s.take(ctx, 3, 4) }()
	time.Sleep(20 * time.Millisecond) // big is queued first
	cctx, cancel := context.WithCancel(ctx)
	gone := make(chan int, 1)
	go func() { gone <- s.take(cctx, 1, 1) }()
	time.Sleep(20 * time.Millisecond)
	s.give(1)
	select {
	case n := <-gone:
		t.Fatalf("a later small taker overtook the earlier big one (got %d)", n)
	case <-time.After(20 * time.Millisecond):
	}
	cancel()
	if n := <-gone; n != 0 {
		t.Fatalf("cancelled take = %d, want 0", n)
	}
	s.give(2) // 3 free: big is served
	if n := <-big; n != 3 {
		t.Fatalf("big take = %d, want 3", n)
	}
	s.give(3)
	if n := s.inUse(); n != 1 { // 4 taken, 3 given back before big, 3 to big, 3 back
		t.Fatalf("inUse = %d, want 1", n)
	}
}

// TestSlotsCancelledWaitsGiveBack: takers whose contexts end at any moment
// (before, while or just after they are served) never keep places they
// did not return, and recycled waiters carry nothing over: once all give
// back, every place is free again, and a later wait is served normally.
func TestSlotsCancelledWaitsGiveBack(t *testing.T) {
	s := newSlots(3)
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 400 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration((g*7+i)%5)*10*time.Microsecond)
				if n := s.take(ctx, 1+i%2, 2); n > 0 {
					if n > 2 {
						t.Errorf("took %d places, at most 2 asked", n)
					}
					s.give(n)
				}
				cancel()
			}
		}()
	}
	wg.Wait()
	if n := s.inUse(); n != 0 {
		t.Fatalf("inUse after every taker gave back = %d, want 0", n)
	}
	s.take(context.Background(), 3, 3)
	got := make(chan int, 1)
	go func() { got <- s.take(context.Background(), 2, 3) }()
	time.Sleep(10 * time.Millisecond)
	s.give(1)
	select {
	case n := <-got:
		t.Fatalf("take(want 2) served with 1 free (got %d)", n)
	case <-time.After(10 * time.Millisecond):
	}
	s.give(2)
	if n := <-got; n != 3 {
		t.Fatalf("take after 3 given back = %d, want 3", n)
	}
}
