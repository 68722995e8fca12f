package router

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// streamSender records the stream of each request it answers, answering
// from another goroutine (parkedSender) so workers park as on a network.
// It answers nothing until hold is closed.
type streamSender struct {
	*parkedSender
	hold    chan struct{}
	mu      sync.Mutex
	streams []string
}

func newStreamSender() *streamSender {
	return &streamSender{parkedSender: newParkedSender(), hold: make(chan struct{})}
}

func (s *streamSender) Do(req *Request) (Result, error) {
	<-s.hold
	s.mu.Lock()
	s.streams = append(s.streams, req.Msg.Stream)
	s.mu.Unlock()
	return s.parkedSender.Do(req)
}

// handOutStreams hands out per entries of each of streams at once, each on
// its own goroutine as the streams' handLoops do, with ctx. Once every
// hand-out waits in line for slots, it closes hold (when not nil).
func handOutStreams(t *testing.T, r *Router, ctx context.Context, streams []string, per int, hold chan struct{}) {
	var wg sync.WaitGroup
	for si, stream := range streams {
		entries := make([]Entry, per)
		for i := range entries {
			entries[i] = benchEntry(si*per+i, 10)
			entries[i].Stream = stream
		}
		pb := r.prepareBatch(entries)
		wg.Add(1)
		go func() { defer wg.Done(); r.handOut(ctx, context.Background(), pb) }()
	}
	if hold != nil {
		waitFor(t, func() bool {
			r.slots.mu.Lock()
			defer r.slots.mu.Unlock()
			return len(r.slots.waiters) == len(streams)
		})
		close(hold)
	}
	wg.Wait()
}

// checkSettled checks that nothing is held any more once the pipeline
// drained: slots, admissions, leases, the in-flight gauge.
func checkSettled(t *testing.T, r *Router) {
	t.Helper()
	if n := r.slots.inUse(); n != 0 {
		t.Errorf("%d in-flight slots still held", n)
	}
	if n := r.svc.sem("svc").queued.n; n != 0 {
		t.Errorf("%d admission tokens of svc still held", n)
	}
	if left := r.live.olderThan(time.Now().Add(time.Hour)); len(left) != 0 {
		t.Errorf("leases still held: %v", left)
	}
	if v := testutil.ToFloat64(r.deps.Metrics.Inflight); v != 0 {
		t.Errorf("inflight gauge = %v, want 0", v)
	}
}

// TestHandOutTwoStreamsShareTheWindow: two streams, both with a backlog
// and both hand-outs waiting in line, share a full window of 4; every entry
// of both is sent once and acked, and nothing stays held. The line itself
// serves waiters in order (TestSlotsServeWaitersInOrder); the order the
// requests reach the sender also depends on goroutine scheduling (a
// granted hand-out not yet running lets the other take freed places at
// once), so this test checks completeness, not the interleaving.
func TestHandOutTwoStreamsShareTheWindow(t *testing.T) {
	s := newStreamSender()
	defer close(s.calls)
	r, st := benchRouterWith(t, 10, 4, s)
	ctx := context.Background()
	acked := make(chan struct{})
	go func() { r.acks.run(ctx); close(acked) }()
	const per = 200
	handOutStreams(t, r, ctx, []string{"a", "b"}, per, s.hold)
	r.work.Wait()
	r.acks.close()
	<-acked
	r.workers.close()
	if got := st.acked.Load(); got != 2*per {
		t.Fatalf("acked %d entries, want %d", got, 2*per)
	}
	checkSettled(t, r)
	count := map[string]int{}
	for _, stream := range s.streams {
		count[stream]++
	}
	if count["a"] != per || count["b"] != per || len(count) != 2 {
		t.Errorf("requests per stream: %v; want %d each of a and b", count, per)
	}
}

// TestHandOutAdmissionFullFallsBack: a service's queue (4) far below the
// window (32): the hand-outs wait for admission, not for slots, and
// everything settles.
func TestHandOutAdmissionFullFallsBack(t *testing.T) {
	s := newStreamSender()
	defer close(s.calls)
	r, st := benchRouterWith(t, 10, 32, s)
	r.svc = newServiceLimits(1, 1, nil, nil) // queue of 4 < 32 slots
	ctx := context.Background()
	acked := make(chan struct{})
	go func() { r.acks.run(ctx); close(acked) }()
	const per = 150
	close(s.hold) // the hand-outs wait for admission, not for slots
	handOutStreams(t, r, ctx, []string{"a", "b"}, per, nil)
	r.work.Wait()
	r.acks.close()
	<-acked
	r.workers.close()
	if got := st.acked.Load(); got != 2*per {
		t.Fatalf("acked %d entries, want %d", got, 2*per)
	}
	checkSettled(t, r)
}

// TestHandOutCancelDropsTheRest: a hand-out whose ctx ends while it waits
// for slots drops its remaining jobs (they stay pending), and the workers
// stop taking them; what was handed finishes and nothing stays held.
func TestHandOutCancelDropsTheRest(t *testing.T) {
	gate := make(chan struct{})
	s := &gatedSender{gate: gate}
	r, st := benchRouterWith(t, 10, 4, s)
	ctx, cancel := context.WithCancel(context.Background())
	acked := make(chan struct{})
	go func() { r.acks.run(context.Background()); close(acked) }()
	done := make(chan struct{})
	go func() { handOutStreams(t, r, ctx, []string{"a", "b"}, 100, nil); close(done) }()
	waitFor(t, func() bool { return r.slots.inUse() == 4 })
	cancel()
	<-done // both hand-outs returned, the rest dropped
	close(gate)
	r.work.Wait()
	r.acks.close()
	<-acked
	r.workers.close()
	if got := st.acked.Load(); got < 4 || got > 8 {
		t.Errorf("acked %d entries; want the 4 in flight at the cancel (and at most one window more)", got)
	}
	checkSettled(t, r)
}

// gatedSender answers once gate is closed.
type gatedSender struct{ gate chan struct{} }

func (s *gatedSender) Do(*Request) (Result, error) {
	<-s.gate
	return Result{Status: 200}, nil
}
