package router

import (
	"slices"
	"testing"
	"time"
)

func TestLeasesOlderThanGroupsByStreamAndRestartsTheClock(t *testing.T) {
	l := newLeases()
	t0 := time.Now().Add(-time.Minute)
	old1 := &job{jobState: jobState{e: Entry{Stream: "a", ID: "1-0"}}}
	old2 := &job{jobState: jobState{e: Entry{Stream: "b", ID: "2-0"}}}
	young := &job{jobState: jobState{e: Entry{Stream: "a", ID: "3-0"}}}
	gone := &job{jobState: jobState{e: Entry{Stream: "a", ID: "4-0"}}}
	l.add(old1, t0)
	l.add(old2, t0)
	l.add(gone, t0)
	l.add(young, time.Now())
	l.remove(gone)

	got := l.olderThan(time.Now().Add(-30 * time.Second))
	if len(got) != 2 || !slices.Equal(got["a"], []string{"1-0"}) || !slices.Equal(got["b"], []string{"2-0"}) {
		t.Fatalf("olderThan = %v, want a:[1-0] b:[2-0]", got)
	}
	// Renewed: not due again right away.
	if again := l.olderThan(time.Now().Add(-30 * time.Second)); len(again) != 0 {
		t.Fatalf("olderThan right after a renewal = %v, want none", again)
	}
	l.remove(old1)
	l.remove(old2)
	l.remove(young)
	if n := l.n; n != 0 || l.first != nil {
		t.Fatalf("%d leases left after removing all", n)
	}
}

// TestLeasesListKeepsEveryJob: jobs added one by one and per batch, removed
// in any order (first, middle, last, twice, never added), are counted per
// stream and renewed exactly while they are in.
func TestLeasesListKeepsEveryJob(t *testing.T) {
	l := newLeases()
	t0 := time.Now().Add(-time.Minute)
	mk := func(stream, id string) *job { return &job{jobState: jobState{e: Entry{Stream: stream, ID: id}}} }
	batch := []*job{mk("a", "1"), mk("b", "2"), mk("a", "3"), mk("a", "4")}
	single := mk("b", "5")
	l.addAll(batch, t0)
	l.add(single, t0)
	l.add(batch[1], t0) // again: still one lease
	if a, b := l.count("a"), l.count("b"); a != 3 || b != 2 || l.n != 5 {
		t.Fatalf("count a=%d b=%d n=%d, want 3, 2, 5", a, b, l.n)
	}
	l.remove(single)       // first in the list
	l.remove(batch[2])     // middle
	l.remove(batch[0])     // last
	l.remove(batch[2])     // twice
	l.remove(mk("a", "9")) // never added
	if a, b := l.count("a"), l.count("b"); a != 1 || b != 1 || l.n != 2 {
		t.Fatalf("after removals count a=%d b=%d n=%d, want 1, 1, 2", a, b, l.n)
	}
	got := l.olderThan(time.Now().Add(-30 * time.Second))
	if len(got) != 2 || !slices.Equal(got["a"], []string{"4"}) || !slices.Equal(got["b"], []string{"2"}) {
		t.Fatalf("olderThan = %v, want a:[4] b:[2]", got)
	}
	l.remove(batch[3])
	l.remove(batch[1])
	if l.first != nil || l.n != 0 || l.count("a")+l.count("b") != 0 {
		t.Fatalf("leases left after removing all: n=%d", l.n)
	}
	l.add(batch[0], t0) // a removed job can be leased again (recycled)
	if l.count("a") != 1 {
		t.Fatal("a job removed and added again is not counted")
	}
}
