package router

import (
	"testing"
	"time"

	"github.com/msgroute/gateway/rules"
)

// TestPendingBatchHoldsSameIDOfAnotherStream: entry IDs are unique within
// one stream, so a batch tracks them only once a second stream joins; then
// an ID already in the batch from another stream is recognised (the
// accumulator sends the open batch first, so every entryId of a request
// names one entry).
func TestPendingBatchHoldsSameIDOfAnotherStream(t *testing.T) {
	m := func(stream, id string) *rules.Message { return rules.NewMessage(stream, id, nil, 1) }
	p := &pendingBatch{stream0: "a"}
	add := func(msg *rules.Message) {
		p.note(msg)
		p.items = append(p.items, batchItem{msg: msg})
	}
	for _, id := range []string{"1-0", "1-1"} {
		if p.holds(m("a", id)) {
			t.Fatalf("holds(a %s) before it was added", id)
		}
		add(m("a", id))
	}
	if p.ids != nil {
		t.Error("ids tracked while every entry is of one stream")
	}
	if !p.holds(m("b", "1-1")) {
		t.Error("holds(b 1-1) = false with a 1-1 in the batch, want true")
	}
	if p.holds(m("b", "2-0")) {
		t.Error("holds(b 2-0) = true, want false")
	}
	add(m("b", "2-0"))
	if !p.holds(m("c", "2-0")) {
		t.Error("holds(c 2-0) = false after b 2-0 joined, want true")
	}
}

// TestBatcherSweepForgetsIdleAccumulators: an accumulator without an open
// batch is forgotten at the second sweep without entries (one sweep gap
// after its last use), not before.
func TestBatcherSweepForgetsIdleAccumulators(t *testing.T) {
	r := &Router{svc: newServiceLimits(0, 32, nil, nil)}
	b := newBatcher(r, nil)
	route := &rules.Route{Name: "bulk", Service: "svc", Batch: &rules.Batch{MaxMessages: 10, MaxWait: time.Millisecond}}
	a := b.accumulator(route)
	a.touched = true // as add does
	if got := r.svc.sem("svc").perRequest; got != 10 {
		t.Errorf("service queue carries %d per request, want 10", got)
	}
	now := time.Now()
	b.sweep(now) // within the gap: nothing
	if _, ok := b.accs.Load(route); !ok {
		t.Fatal("swept before the gap")
	}
	now = now.Add(b.sweepGap + time.Second)
	b.sweep(now) // used since the last sweep: kept, marked untouched
	if _, ok := b.accs.Load(route); !ok {
		t.Fatal("an accumulator used since the last sweep was forgotten")
	}
	b.sweep(now.Add(b.sweepGap + time.Second))
	if _, ok := b.accs.Load(route); ok {
		t.Fatal("an idle accumulator was kept")
	}
	if b.accumulator(route) == a {
		t.Error("a forgotten accumulator came back, want a fresh one")
	}
}
