package balancer

import (
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/msgroute/gateway/discovery"
)

var algorithms = []Algorithm{PeakEWMA, LeastPending, RoundRobin, Random}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"unknown algorithm", Config{Algorithm: "fastest"}},
		{"negative decay", Config{DecayTime: -time.Second}},
		{"max below base ejection", Config{BaseEjection: time.Minute, MaxEjection: time.Second}},
		{"ejection percent above 100", Config{MaxEjectionPercent: 101}},
		{"negative retry ratio", Config{RetryBudget: RetryBudget{Ratio: -1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Errorf("New(%+v) = nil error, want one", tt.cfg)
			}
		})
	}
	b, err := New(Config{})
	if err != nil {
		t.Fatalf("New(zero Config) = %v", err)
	}
	if b.cfg.Algorithm != PeakEWMA || b.cfg.ConsecutiveFailures != 5 || b.cfg.MaxEjectionPercent != 50 {
		t.Errorf("defaults = %+v", b.cfg)
	}
}

func TestPickNoInstances(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			b, _ := newTestBalancer(t, Config{Algorithm: alg}, 0)
			if _, err := b.Pick("svc", nil, nil); !errors.Is(err, ErrNoInstances) {
				t.Errorf("Pick(unknown service) = %v, want ErrNoInstances", err)
			}
			b.Update("svc", nil)
			if _, err := b.Pick("svc", nil, nil); !errors.Is(err, ErrNoInstances) {
				t.Errorf("Pick(empty pool) = %v, want ErrNoInstances", err)
			}
			b.Update("svc", instances(2))
			if _, err := b.Pick("svc", []string{"nope"}, nil); !errors.Is(err, ErrNoInstances) {
				t.Errorf("Pick(unmatched tags) = %v, want ErrNoInstances", err)
			}
		})
	}
}

func TestPeakEWMAPrefersFastInstance(t *testing.T) {
	b, clk := newTestBalancer(t, Config{}, 5)
	latency := map[string]time.Duration{"i0": 20 * time.Millisecond}
	counts := map[string]int{}
	const n = 5000
	for range n {
		e := mustPick(t, b, nil, nil)
		counts[e.ID()]++
		l := cmpOr(latency[e.ID()], 2*time.Millisecond)
		b.Done(e, Success, l)
		clk.Advance(time.Millisecond)
	}
	if share := float64(counts["i0"]) / n; share > 0.01 {
		t.Errorf("slow instance share = %.4f, want <= 0.01 (%s)", share, shareString(counts, n))
	}
	if got := statsOf(t, b, "i0").LatencyMs; got < 2 {
		t.Errorf("slow instance latency estimate = %.2fms, want well above the fast ones' 2ms", got)
	}
}

func cmpOr(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func TestPeakEWMAJumpsToPeaksAndDecays(t *testing.T) {
	b, clk := newTestBalancer(t, Config{DecayTime: 10 * time.Second}, 2)
	e := mustEndpoint(b, "i0")
	b.inflightFor(e)
	b.Done(e, Success, 100*time.Millisecond)
	if got := statsOf(t, b, e.ID()).LatencyMs; got != 100 {
		t.Fatalf("estimate after a 100ms sample = %vms, want 100 (peak)", got)
	}
	clk.Advance(10 * time.Second)
	if got, want := statsOf(t, b, e.ID()).LatencyMs, 100/math.E; math.Abs(got-want) > 0.01 {
		t.Errorf("estimate after one decay time = %.3fms, want %.3f", got, want)
	}
	b.inflightFor(e)
	b.Done(e, Success, 50*time.Millisecond)
	if got := statsOf(t, b, e.ID()).LatencyMs; got != 50 {
		t.Errorf("estimate after a sample above the decayed value = %vms, want 50", got)
	}
}

func TestFailuresDoNotLookFast(t *testing.T) {
	b, clk := newTestBalancer(t, Config{ConsecutiveFailures: -1}, 2)
	// Establish a typical latency of 10ms for the service.
	for range 200 {
		e := mustPick(t, b, nil, nil)
		b.Done(e, Success, 10*time.Millisecond)
		clk.Advance(time.Millisecond)
	}
	e := mustPick(t, b, nil, nil)
	b.Done(e, Failure, time.Millisecond) // fails fast
	if got := statsOf(t, b, e.ID()).LatencyMs; got < 5*10-1 {
		t.Errorf("estimate after a 1ms failure = %.2fms, want >= 5x the service's 10ms", got)
	}
}

func TestWeights(t *testing.T) {
	insts := instances(3)
	insts[0].Weight = 3 // i0: 3/5, i1 and i2: 1/5 each
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			b, clk := newTestBalancer(t, Config{Algorithm: alg}, 0)
			b.Update("svc", insts)
			const n = 10000
			counts := map[string]int{}
			var held []*Endpoint
			for i := range n {
				e := mustPick(t, b, nil, nil)
				counts[e.ID()]++
				// Hold a window of requests in flight so that pending
				// counts matter, as under real load.
				held = append(held, e)
				if len(held) > 20 {
					b.Done(held[0], Success, 5*time.Millisecond)
					held = held[1:]
				}
				if i%10 == 0 {
					clk.Advance(time.Millisecond)
				}
			}
			share := float64(counts["i0"]) / n
			lo, hi := 0.55, 0.65
			if alg == PeakEWMA || alg == LeastPending {
				// Power of two choices only approximates weights: the
				// heavy instance is chosen whenever drawn while cheaper.
				lo, hi = 0.45, 0.75
			}
			if share < lo || share > hi {
				t.Errorf("weight-3 instance share = %.3f, want in [%.2f, %.2f] (%s)", share, lo, hi, shareString(counts, n))
			}
		})
	}
}

func TestRoundRobinRotates(t *testing.T) {
	b, _ := newTestBalancer(t, Config{Algorithm: RoundRobin}, 3)
	var got []string
	for range 6 {
		e := mustPick(t, b, nil, nil)
		got = append(got, e.ID())
		b.Done(e, Success, time.Millisecond)
	}
	if want := []string{"i0", "i1", "i2", "i0", "i1", "i2"}; !slices.Equal(got, want) {
		t.Errorf("round robin order = %v, want %v", got, want)
	}
}

func TestTagsFilter(t *testing.T) {
	insts := instances(4)
	insts[0].Tags = []string{"v1"}
	insts[1].Tags = []string{"v2", "eu"}
	insts[2].Tags = []string{"eu", "v2", "canary"}
	insts[3].Tags = []string{"v2"}
	tests := []struct {
		tags []string
		want []string
	}{
		{nil, []string{"i0", "i1", "i2", "i3"}},
		{[]string{"v1"}, []string{"i0"}},
		{[]string{"v2"}, []string{"i1", "i2", "i3"}},
		{[]string{"v2", "eu"}, []string{"i1", "i2"}},
		{[]string{"eu", "v2"}, []string{"i1", "i2"}}, // order does not matter
		{[]string{"canary", "eu", "v2"}, []string{"i2"}},
	}
	for _, alg := range algorithms {
		b, _ := newTestBalancer(t, Config{Algorithm: alg}, 0)
		b.Update("svc", insts)
		for _, tt := range tests {
			seen := map[string]bool{}
			for range 200 {
				e := mustPick(t, b, tt.tags, nil)
				seen[e.ID()] = true
				b.Done(e, Success, time.Millisecond)
			}
			got := slices.Sorted(mapKeys(seen))
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: Pick(tags %v) chose %v, want %v", alg, tt.tags, got, tt.want)
			}
		}
	}
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestAvoid(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			b, clk := newTestBalancer(t, Config{Algorithm: alg}, 3)
			first := mustPick(t, b, nil, nil)
			for range 300 {
				e := mustPick(t, b, nil, first)
				if e == first {
					t.Fatalf("Pick(avoid %s) returned it with two others available", first.ID())
				}
				b.Done(e, Success, time.Millisecond)
			}
			// Eject the other two: the avoided instance is better than an
			// ejected one.
			for _, e := range b.lookup("svc").pool.Load().all.eps {
				if e != first {
					ejectNow(t, b, e)
				}
			}
			_ = clk
			if e := mustPick(t, b, nil, first); e != first {
				t.Errorf("Pick(avoid %s) with the others ejected = %s, want the avoided one", first.ID(), e.ID())
			}
		})
	}
	b, _ := newTestBalancer(t, Config{}, 1)
	only := mustPick(t, b, nil, nil)
	if e := mustPick(t, b, nil, only); e != only {
		t.Errorf("Pick(avoid the only instance) = %v, want it anyway", e.ID())
	}
}

// ejectNow marks e ejected for a minute, bypassing the failure counter and
// the ejection-percent guard.
func ejectNow(t *testing.T, b *Balancer, e *Endpoint) {
	t.Helper()
	e.ejectedUntil.Store(b.now() + int64(time.Minute))
}

func fail(b *Balancer, e *Endpoint, n int) {
	for range n {
		b.inflightFor(e)
		b.Done(e, Failure, time.Millisecond)
	}
}

// inflightFor accounts a pick of e without choosing, so that Done keeps
// in-flight balanced when a test drives one endpoint directly.
func (b *Balancer) inflightFor(e *Endpoint) { e.inflight.Add(1) }

func TestEjectionAfterConsecutiveFailuresAndReturn(t *testing.T) {
	b, clk := newTestBalancer(t, Config{ConsecutiveFailures: 5, BaseEjection: 5 * time.Second, MaxEjection: 15 * time.Second}, 4)
	e := b.lookup("svc").pool.Load().all.eps[0]

	fail(b, e, 4)
	b.inflightFor(e)
	b.Done(e, Success, time.Millisecond) // a success resets the run
	fail(b, e, 4)
	if st := statsOf(t, b, e.ID()); st.State != StateHealthy || st.ConsecutiveFailures != 4 {
		t.Fatalf("after 4 failures since a success: %+v, want healthy with 4 consecutive failures", st)
	}
	fail(b, e, 1)
	st := statsOf(t, b, e.ID())
	if st.State != StateEjected || st.Ejections != 1 || !st.EjectedUntil.Equal(clk.Now().Add(5*time.Second)) {
		t.Fatalf("after 5 failures: %+v, want ejected for 5s", st)
	}
	for range 500 {
		p := mustPick(t, b, nil, nil)
		if p == e {
			t.Fatal("ejected instance picked")
		}
		b.Done(p, Success, time.Millisecond)
	}

	// Back after 5s; failing again doubles the ejection, capped at 15s.
	for i, want := range []time.Duration{10 * time.Second, 15 * time.Second, 15 * time.Second} {
		clk.Advance(statsOf(t, b, e.ID()).EjectedUntil.Sub(clk.Now()))
		if st := statsOf(t, b, e.ID()); st.State != StateHealthy {
			t.Fatalf("round %d: state at the end of the ejection = %s, want healthy", i, st.State)
		}
		fail(b, e, 5)
		if got := statsOf(t, b, e.ID()).EjectedUntil.Sub(clk.Now()); got != want {
			t.Errorf("ejection %d lasts %v, want %v", i+2, got, want)
		}
	}

	// Serving well for longer than MaxEjection resets the growth.
	clk.Advance(15*time.Second + 16*time.Second)
	b.inflightFor(e)
	b.Done(e, Success, time.Millisecond)
	fail(b, e, 5)
	if got := statsOf(t, b, e.ID()).EjectedUntil.Sub(clk.Now()); got != 5*time.Second {
		t.Errorf("ejection after a long healthy period lasts %v, want the base 5s", got)
	}
}

func TestMaxEjectionPercent(t *testing.T) {
	b, _ := newTestBalancer(t, Config{MaxEjectionPercent: 50}, 4)
	for _, e := range b.lookup("svc").pool.Load().all.eps {
		fail(b, e, 10)
	}
	ejected := 0
	for _, st := range b.Stats()[0].Instances {
		if st.State == StateEjected {
			ejected++
		}
	}
	if ejected != 2 {
		t.Errorf("ejected %d of 4 with max 50%%, want 2", ejected)
	}

	// A single instance is never ejected.
	b1, _ := newTestBalancer(t, Config{}, 1)
	e := mustPick(t, b1, nil, nil)
	b1.Done(e, Success, 0)
	fail(b1, e, 10)
	if st := statsOf(t, b1, e.ID()); st.State != StateHealthy {
		t.Errorf("single instance state = %s, want healthy", st.State)
	}
}

func TestPanicModeWhenAllEligibleEjected(t *testing.T) {
	insts := instances(6)
	insts[0].Tags = []string{"canary"}
	insts[1].Tags = []string{"canary"}
	for _, alg := range algorithms {
		b, _ := newTestBalancer(t, Config{Algorithm: alg}, 0)
		b.Update("svc", insts)
		for _, e := range b.lookup("svc").pool.Load().all.eps[:2] {
			fail(b, e, 5) // 2 of 6 ejected: within the 50% guard
		}
		seen := map[string]bool{}
		for range 100 {
			e := mustPick(t, b, []string{"canary"}, nil)
			seen[e.ID()] = true
			b.Done(e, Canceled, 0)
		}
		if len(seen) != 2 {
			t.Errorf("%s: with every canary ejected, picks went to %v, want both canaries", alg, seen)
		}
	}
}

func TestSlowStart(t *testing.T) {
	b, clk := newTestBalancer(t, Config{Algorithm: Random, SlowStart: 10 * time.Second}, 2)
	if st := statsOf(t, b, "i0"); st.SlowStart {
		t.Error("instances of the first snapshot must not ramp")
	}
	b.Update("svc", instances(3))
	share := func() float64 {
		n, hits := 20000, 0
		for range n {
			e := mustPick(t, b, nil, nil)
			if e.ID() == "i2" {
				hits++
			}
			b.Done(e, Canceled, 0)
		}
		return float64(hits) / float64(n)
	}
	if !statsOf(t, b, "i2").SlowStart {
		t.Error("new instance not in slow start")
	}
	if s := share(); s > 0.08 {
		t.Errorf("new instance share at the start of slow start = %.3f, want about 0.1/2.1 = 0.048", s)
	}
	clk.Advance(5 * time.Second)
	if s := share(); s < 0.18 || s > 0.30 {
		t.Errorf("new instance share half-way = %.3f, want about 0.55/2.55 = 0.22", s)
	}
	clk.Advance(5 * time.Second)
	if s := share(); s < 0.30 || s > 0.37 {
		t.Errorf("new instance share after slow start = %.3f, want about 1/3", s)
	}
}

func TestPeakEWMASeedsNewInstancesWithPeerMedian(t *testing.T) {
	b, _ := newTestBalancer(t, Config{}, 3)
	for _, e := range b.lookup("svc").pool.Load().all.eps {
		b.inflightFor(e)
		b.Done(e, Success, 40*time.Millisecond)
	}
	b.Update("svc", instances(4))
	if got := statsOf(t, b, "i3").LatencyMs; got != 40 {
		t.Errorf("new instance seeded with %vms, want the peers' median 40ms", got)
	}
}

func TestRetryBudget(t *testing.T) {
	b, clk := newTestBalancer(t, Config{RetryBudget: RetryBudget{Ratio: 0.2, MinPerSecond: 10}}, 2)
	if b.AllowRetry("other") {
		t.Error("AllowRetry(unknown service) = true")
	}
	allowed := func() int {
		n := 0
		for b.AllowRetry("svc") {
			n++
			if n > 1000 {
				t.Fatal("budget never runs out")
			}
		}
		return n
	}
	if n := allowed(); n != 10 {
		t.Errorf("retries allowed without traffic = %d, want MinPerSecond 10", n)
	}
	clk.Advance(2 * time.Second)
	for range 100 {
		e := mustPick(t, b, nil, nil)
		b.Done(e, Success, 0)
	}
	// Retries are Picks with avoid set: they must not feed the budget.
	e := mustPick(t, b, nil, nil)
	for range 100 {
		b.Done(mustPick(t, b, nil, e), Success, 0)
	}
	b.Done(e, Success, 0)
	if n := allowed(); n != 30 { // 0.2*101 + 10 = 30.2
		t.Errorf("retries allowed after 101 requests = %d, want 0.2*101+10 = 30", n)
	}
	// Half a second into the next window, half the previous one counts.
	clk.Advance(time.Second - time.Duration(clk.ns.Load()%int64(time.Second)) + 500*time.Millisecond)
	// Half of the previous window counts: 50.5 requests and 15 retries,
	// so 0.2*50.5 + 10 = 20.1 allows 5 more.
	if n := allowed(); n != 5 {
		t.Errorf("retries allowed half a window later = %d, want 5", n)
	}
	clk.Advance(2 * time.Second)
	if n := allowed(); n != 10 {
		t.Errorf("retries allowed after two idle seconds = %d, want 10", n)
	}
}

func TestStatsSurviveUpdate(t *testing.T) {
	b, clk := newTestBalancer(t, Config{}, 3)
	e0 := b.lookup("svc").pool.Load().all.eps[0]
	b.inflightFor(e0)
	b.Done(e0, Success, 30*time.Millisecond)
	fail(b, e0, 5)
	held := mustPick(t, b, nil, nil)

	// New snapshot: i1 changed address and weight, i2 left, i3 joined.
	next := instances(4)
	next[1].Address, next[1].Weight = "10.9.9.9", 4
	b.Update("svc", slices.Delete(next, 2, 3))
	st := statsOf(t, b, "i0")
	if st.State != StateEjected || st.Ejections != 1 || st.LatencyMs < 30 {
		t.Errorf("i0 after Update = %+v, want its ejection and latency kept", st)
	}
	if st := statsOf(t, b, "i1"); st.Address != "10.9.9.9:8001" || st.Weight != 4 {
		t.Errorf("i1 after Update = %+v, want new address and weight", st)
	}
	if e := b.lookup("svc").pool.Load().all.eps; len(e) != 3 {
		t.Errorf("pool size = %d, want 3", len(e))
	}
	if got := mustEndpoint(b, "i1"); got.Addr() != "10.9.9.9:8001" {
		t.Errorf("Endpoint.Addr() = %s after address change", got.Addr())
	}
	b.Done(held, Success, time.Millisecond) // an endpoint from the old pool

	// i2 comes back within forgetAfter: same endpoint, stats kept, ramping.
	clk.Advance(time.Minute)
	b.Update("svc", instances(4))
	if st := statsOf(t, b, "i2"); !st.SlowStart {
		t.Errorf("returning i2 = %+v, want slow start", st)
	}
	if mustEndpoint(b, "i0") != e0 {
		t.Error("i0 endpoint replaced by Update: stats must live on the same endpoint")
	}
}

func mustEndpoint(b *Balancer, id string) *Endpoint {
	for _, e := range b.lookup("svc").pool.Load().all.eps {
		if e.ID() == id {
			return e
		}
	}
	return nil
}

func TestSameIDOnTwoNodesAreDistinct(t *testing.T) {
	b, _ := newTestBalancer(t, Config{Algorithm: RoundRobin}, 0)
	b.Update("svc", []discovery.Instance{
		{ID: "web", Node: "a", Address: "10.0.0.1", Port: 80, Weight: 1},
		{ID: "web", Node: "b", Address: "10.0.0.2", Port: 80, Weight: 1},
	})
	seen := map[string]bool{}
	for range 4 {
		e := mustPick(t, b, nil, nil)
		seen[e.Addr()] = true
		b.Done(e, Success, 0)
	}
	if len(seen) != 2 {
		t.Errorf("picked %v, want both nodes' instances", seen)
	}
}

func TestStatsShareAndInflight(t *testing.T) {
	b, clk := newTestBalancer(t, Config{Algorithm: RoundRobin}, 2)
	var held []*Endpoint
	for i := range 400 {
		e := mustPick(t, b, nil, nil)
		if e.ID() == "i0" || i%4 == 1 { // i0 all, i1 half of its turns
			b.Done(e, Success, time.Millisecond)
		} else {
			held = append(held, e)
		}
		clk.Advance(time.Millisecond)
	}
	s0, s1 := statsOf(t, b, "i0"), statsOf(t, b, "i1")
	if s1.Inflight != int64(len(held)) || s0.Inflight != 0 {
		t.Errorf("inflight = %d, %d; want 0, %d", s0.Inflight, s1.Inflight, len(held))
	}
	if math.Abs(s0.Share-2.0/3) > 0.02 || math.Abs(s0.Share+s1.Share-1) > 1e-9 {
		t.Errorf("shares = %.3f, %.3f; want 2/3, 1/3", s0.Share, s1.Share)
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(string(alg), func(t *testing.T) {
			b, _ := New(Config{Algorithm: alg, BaseEjection: time.Millisecond, MaxEjection: 5 * time.Millisecond})
			b.Update("svc", instances(5))
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for g := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					var last *Endpoint
					for i := 0; i < 3000; i++ {
						tags := []string(nil)
						if i%3 == 0 {
							tags = []string{"t"}
						}
						e, err := b.Pick("svc", tags, last)
						if errors.Is(err, ErrNoInstances) {
							continue
						}
						if err != nil {
							t.Error(err)
							return
						}
						o := Success
						if (g+i)%7 == 0 {
							o = Failure
						}
						b.AllowRetry("svc")
						b.Done(e, o, time.Duration(i%5)*time.Microsecond)
						last = e
					}
				}()
			}
			var updater sync.WaitGroup
			updater.Add(1)
			go func() {
				defer updater.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					insts := instances(3 + i%4)
					insts[0].Tags = []string{"t"}
					b.Update("svc", insts)
					_ = b.Stats()
				}
			}()
			wg.Wait()
			close(stop)
			updater.Wait()
			for _, st := range b.Stats()[0].Instances {
				if st.Inflight != 0 {
					t.Errorf("%s in flight = %d after every Done, want 0", st.ID, st.Inflight)
				}
			}
		})
	}
}

func TestDecayApproximation(t *testing.T) {
	tau := float64(10 * time.Second)
	for _, dt := range []time.Duration{0, time.Microsecond, time.Millisecond, 9 * time.Millisecond, 10 * time.Millisecond, time.Second, time.Minute} {
		got, want := decay(int64(dt), tau), math.Exp(-float64(dt)/tau)
		if math.Abs(got-want) > 1e-6*want {
			t.Errorf("decay(%v) = %.12f, want %.12f", dt, got, want)
		}
	}
	for x := 0.0; x < 720; x += 0.0137 {
		got, want := expNeg(x), math.Exp(-x)
		if x > 700 {
			want = 0 // below 1e-304: flushed to zero on purpose
		}
		if math.Abs(got-want) > 1e-6*want {
			t.Fatalf("expNeg(%v) = %g, want %g", x, got, want)
		}
	}
}

func TestCompareMatchesCost(t *testing.T) {
	for _, alg := range []Algorithm{PeakEWMA, LeastPending} {
		b, clk := newTestBalancer(t, Config{Algorithm: alg, SlowStart: 10 * time.Second}, 2)
		insts := instances(4)
		insts[1].Weight = 3
		b.Update("svc", insts) // i2, i3 ramp
		sub := b.lookup("svc").pool.Load().all
		samples := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 40 * time.Millisecond}
		for step := range 200 {
			e := sub.eps[step%4]
			if s := samples[(step/4)%4]; s > 0 {
				b.inflightFor(e)
				b.Done(e, Success, s)
			}
			if step%3 == 0 {
				b.inflightFor(sub.eps[(step/3)%4]) // some stay in flight
			}
			clk.Advance(time.Duration(step%7) * 700 * time.Millisecond)
			now := b.now()
			for i := range 4 {
				for j := range 4 {
					if i == j {
						continue
					}
					ci, cj := b.cost(sub, i, now), b.cost(sub, j, now)
					want := order(cj, ci, 1)
					if near(cj, ci) {
						continue // a tie within rounding may go either way
					}
					ei, ej := sub.eps[i], sub.eps[j]
					if alg == PeakEWMA && ei.est.Load() != 0 && ej.est.Load() != 0 &&
						b.load(sub, i, 0, now) == b.load(sub, j, 0, now) {
						ai, aj := math.Float64frombits(ei.avg.Load()), math.Float64frombits(ej.avg.Load())
						if near(aj*tieSlack, ai) || near(ai*tieSlack, aj) {
							continue // at the edge of alike
						}
						if order(aj, ai, tieSlack) == 0 {
							want = 0
						}
					}
					if got := b.compare(sub, j, i, 0, now); got != want {
						t.Fatalf("%s step %d: compare(%d, %d) = %d, want %d (costs %g vs %g)", alg, step, j, i, got, want, cj, ci)
					}
				}
			}
		}
	}
}

func near(x, y float64) bool { return math.Abs(x-y) <= 1e-6*math.Max(x, y) }
