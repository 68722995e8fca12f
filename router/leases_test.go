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
	if n := len(l.jobs); n != 0 {
		t.Fatalf("%d leases left after removing all", n)
	}
}
