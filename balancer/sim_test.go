package balancer

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// The simulation drives a Balancer in virtual time: Poisson arrivals at a
// fixed offered rate, instances with a few workers and a FIFO queue each,
// log-normal service times. Everything but the balancer's own random
// choices is seeded, so runs differ only by the balancer's luck.

type simInstance struct {
	weight  float64 // Consul weight; 0 means the default 1
	median  time.Duration
	sigma   float64
	fail    bool // answers 503 (a transient failure)
	workers int
	busy    int
	queue   []*simReq
}

type simReq struct {
	arrived  time.Duration // first attempt
	start    time.Duration // this attempt
	ep       *Endpoint
	inst     int
	attempts int
}

type simEvent struct {
	at     time.Duration
	arrive bool
	req    *simReq
}

type eventHeap []simEvent

func (h eventHeap) Len() int           { return len(h) }
func (h eventHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h eventHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)        { *h = append(*h, x.(simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

type simConfig struct {
	alg       Algorithm
	instances []simInstance
	rate      float64 // requests per second
	duration  time.Duration
	retries   int
	seed      uint64
}

type simResult struct {
	alg         Algorithm
	attempts    []int // per instance
	total       int
	latencies   []time.Duration // end to end, per request
	failed      int             // requests that failed every attempt
	firstEject  int             // failures of instance 0 before its first ejection (-1: never)
	failuresOf0 int
}

func (r simResult) share(i int) float64 { return float64(r.attempts[i]) / float64(r.total) }

func (r simResult) quantile(q float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	return r.latencies[min(int(q*float64(len(r.latencies))), len(r.latencies)-1)]
}

func runSim(t testing.TB, sc simConfig) simResult {
	t.Helper()
	clk := newFakeClock()
	b, err := New(Config{Algorithm: sc.alg, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	insts := instances(len(sc.instances))
	for i, in := range sc.instances {
		if in.weight > 0 {
			insts[i].Weight = in.weight
		}
	}
	b.Update("svc", insts)
	index := map[*Endpoint]int{}
	for i, e := range b.lookup("svc").pool.Load().all.eps {
		index[e] = i
	}

	rng := rand.New(rand.NewPCG(sc.seed, 0x5eed))
	ins := slices.Clone(sc.instances)
	res := simResult{alg: sc.alg, attempts: make([]int, len(ins)), firstEject: -1}
	var h eventHeap
	var now time.Duration
	setNow := func(d time.Duration) { now = d; clk.ns.Store(int64(d)) }

	serviceTime := func(in *simInstance) time.Duration {
		if in.fail {
			return time.Millisecond
		}
		return time.Duration(float64(in.median) * math.Exp(in.sigma*rng.NormFloat64()))
	}
	begin := func(r *simReq) {
		in := &ins[r.inst]
		in.busy++
		heap.Push(&h, simEvent{at: now + serviceTime(in), req: r})
	}
	dispatch := func(r *simReq, avoid *Endpoint) bool {
		e, err := b.Pick("svc", nil, avoid)
		if err != nil {
			return false
		}
		r.ep, r.inst, r.start = e, index[e], now
		r.attempts++
		res.attempts[r.inst]++
		res.total++
		if in := &ins[r.inst]; in.busy < in.workers {
			begin(r)
		} else {
			in.queue = append(in.queue, r)
		}
		return true
	}

	for at := time.Duration(0); at < sc.duration; at += time.Duration(rng.ExpFloat64() / sc.rate * float64(time.Second)) {
		heap.Push(&h, simEvent{at: at, arrive: true})
	}
	for h.Len() > 0 {
		ev := heap.Pop(&h).(simEvent)
		setNow(ev.at)
		if ev.arrive {
			r := &simReq{arrived: now}
			if !dispatch(r, nil) {
				res.failed++
			}
			continue
		}
		r := ev.req
		in := &ins[r.inst]
		in.busy--
		if len(in.queue) > 0 {
			next := in.queue[0]
			in.queue = in.queue[1:]
			begin(next)
		}
		if !in.fail {
			b.Done(r.ep, Success, now-r.start)
			res.latencies = append(res.latencies, now-r.arrived)
			continue
		}
		b.Done(r.ep, Failure, now-r.start)
		if r.inst == 0 {
			res.failuresOf0++
			if res.firstEject < 0 && r.ep.ejected(b.now()) {
				res.firstEject = res.failuresOf0
			}
		}
		if r.attempts <= sc.retries && b.AllowRetry("svc") && dispatch(r, r.ep) {
			continue
		}
		res.failed++
	}
	slices.Sort(res.latencies)
	return res
}

// slowScenario: ten instances, one ten times slower (median 20 ms vs 2 ms).
func slowScenario(alg Algorithm, n int, withSlow bool, seed uint64) simConfig {
	sc := simConfig{alg: alg, rate: 1000, duration: 60 * time.Second, seed: seed}
	for i := range n {
		in := simInstance{median: 2 * time.Millisecond, sigma: 0.5, workers: 4}
		if withSlow && i == 0 {
			in.median = 20 * time.Millisecond
		}
		sc.instances = append(sc.instances, in)
	}
	return sc
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/1e6) }

func TestSimulationSlowInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation: 60 s of virtual traffic per algorithm")
	}
	const seed = 42
	base := runSim(t, slowScenario(PeakEWMA, 9, false, seed))
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n10 instances, one slow (median 20ms vs 2ms, log-normal sigma 0.5, 4 workers each), 1000 req/s Poisson, 60s virtual\n")
	fmt.Fprintf(&tbl, "%-22s %10s %9s %9s %9s\n", "algorithm", "slow share", "p50 ms", "p99 ms", "p99.9 ms")
	fmt.Fprintf(&tbl, "%-22s %10s %9s %9s %9s\n", "(9 fast only)", "-", ms(base.quantile(0.5)), ms(base.quantile(0.99)), ms(base.quantile(0.999)))
	results := map[Algorithm]simResult{}
	for _, alg := range algorithms {
		r := runSim(t, slowScenario(alg, 10, true, seed))
		results[alg] = r
		fmt.Fprintf(&tbl, "%-22s %9.3f%% %9s %9s %9s\n", alg, 100*r.share(0), ms(r.quantile(0.5)), ms(r.quantile(0.99)), ms(r.quantile(0.999)))
	}
	t.Log(tbl.String())

	pe, rr := results[PeakEWMA], results[RoundRobin]
	if s := pe.share(0); s > 0.005 {
		t.Errorf("peak_ewma slow share = %.3f%%, want <= 0.5%%", 100*s)
	}
	if got, lim := pe.quantile(0.99), time.Duration(1.3*float64(base.quantile(0.99))); got > lim {
		t.Errorf("peak_ewma p99 = %v, want <= 1.3x the 9-fast p99 (%v)", got, lim)
	}
	if got, rrp := pe.quantile(0.99), rr.quantile(0.99); 4*got > rrp {
		t.Errorf("peak_ewma p99 = %v, want at least 4x below round_robin's %v", got, rrp)
	}
}

func TestSimulationFailingInstance(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation: 60 s of virtual traffic per algorithm")
	}
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "\n10 instances of 2ms, one answering 503 in 1ms, 1 retry within the budget, 1000 req/s, 60s virtual\n")
	fmt.Fprintf(&tbl, "%-14s %14s %15s %12s %9s %9s\n", "algorithm", "failing share", "fails to eject", "lost req", "p99 ms", "p99.9 ms")
	for _, alg := range algorithms {
		sc := slowScenario(alg, 10, false, 7)
		sc.instances[0].fail = true
		sc.retries = 1
		r := runSim(t, sc)
		fmt.Fprintf(&tbl, "%-14s %13.3f%% %15d %12d %9s %9s\n", alg, 100*r.share(0), r.firstEject, r.failed, ms(r.quantile(0.99)), ms(r.quantile(0.999)))
		if r.firstEject < 1 || r.firstEject > 5 {
			t.Errorf("%s: failing instance ejected after %d failures, want within 5", alg, r.firstEject)
		}
		if alg == PeakEWMA && r.share(0) >= 0.01 {
			t.Errorf("peak_ewma: failing instance share = %.3f%%, want < 1%%", 100*r.share(0))
		}
	}
	t.Log(tbl.String())
}
