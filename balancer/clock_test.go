package balancer

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msgroute/gateway/discovery"
)

// fakeClock is a manually advanced clock, safe for concurrent use.
type fakeClock struct {
	ns   atomic.Int64
	base time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{base: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time          { return c.base.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// instances returns n instances "i0".."i<n-1" of service svc on node n1.
func instances(n int) []discovery.Instance {
	out := make([]discovery.Instance, n)
	for i := range out {
		out[i] = discovery.Instance{
			ID: "i" + strconv.Itoa(i), Service: "svc", Node: "n1",
			Address: "10.0.0." + strconv.Itoa(i+1), Port: 8000 + i, Weight: 1,
		}
	}
	return out
}

func newTestBalancer(t testing.TB, cfg Config, n int) (*Balancer, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	cfg.Now = clk.Now
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n > 0 {
		b.Update("svc", instances(n))
	}
	return b, clk
}

// mustPick picks from "svc" or fails the test.
func mustPick(t testing.TB, b *Balancer, tags []string, avoid *Endpoint) *Endpoint {
	t.Helper()
	e, err := b.Pick("svc", tags, avoid)
	if err != nil {
		t.Fatalf("Pick(svc, %v) = %v", tags, err)
	}
	return e
}

// statsOf returns the stats of instance id of service svc.
func statsOf(t testing.TB, b *Balancer, id string) InstanceStats {
	t.Helper()
	for _, s := range b.Stats() {
		if s.Service != "svc" {
			continue
		}
		for _, i := range s.Instances {
			if i.ID == id {
				return i
			}
		}
	}
	t.Fatalf("no stats for svc/%s", id)
	return InstanceStats{}
}

func shareString(counts map[string]int, total int) string {
	s := ""
	for id, n := range counts {
		s += fmt.Sprintf("%s=%.3f ", id, float64(n)/float64(total))
	}
	return s
}

// TestDoneAtAgreesWithDone: DoneAt at the clock's current reading leaves
// every instance exactly as Done does (latency estimate, in-flight count,
// failures), for a sequence of successes, failures and a
// cancellation.
func TestDoneAtAgreesWithDone(t *testing.T) {
	cfg := Config{ConsecutiveFailures: 3}
	viaDone, clkDone := newTestBalancer(t, cfg, 1)
	viaAt, clkAt := newTestBalancer(t, cfg, 1)
	// Failures slower than any failure penalty: the service's reference
	// latency behind the penalty is sampled at random.
	const fail = time.Second
	steps := []struct {
		o       Outcome
		elapsed time.Duration
	}{
		{Success, 3 * time.Millisecond}, {Success, 20 * time.Millisecond}, {Canceled, time.Second},
		{Failure, fail}, {Failure, fail}, {Success, time.Millisecond},
		{Failure, fail}, {Failure, fail}, {Failure, fail},
	}
	for i, st := range steps {
		a, b := mustPick(t, viaDone, nil, nil), mustPick(t, viaAt, nil, nil)
		clkDone.Advance(st.elapsed)
		clkAt.Advance(st.elapsed)
		viaDone.Done(a, st.o, st.elapsed)
		viaAt.DoneAt(b, st.o, st.elapsed, clkAt.Now())
		if got, want := statsOf(t, viaAt, "i0"), statsOf(t, viaDone, "i0"); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("step %d (%v): DoneAt left %+v, Done %+v", i, st.o, got, want)
		}
	}
	if s := statsOf(t, viaAt, "i0"); s.ConsecutiveFailures != 3 || s.Inflight != 0 {
		t.Errorf("after three failures in a row: %+v", s)
	}
	viaAt.DoneAt(nil, Success, time.Millisecond, clkAt.Now()) // ignored, like Done(nil, ...)
}
