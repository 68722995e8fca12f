package balancer

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// weightedScenario: instances of the given weights, all with a 2 ms
// median, at rate requests per second for long enough to give about
// 20k picks.
func weightedScenario(alg Algorithm, weights []float64, sigma, rate float64) simConfig {
	sc := simConfig{alg: alg, rate: rate, duration: time.Duration(20000 / rate * float64(time.Second)), seed: 11}
	for _, w := range weights {
		sc.instances = append(sc.instances, simInstance{weight: w, median: 2 * time.Millisecond, sigma: sigma, workers: 4})
	}
	return sc
}

func sharesString(r simResult) string {
	s := ""
	for i := range r.attempts {
		s += fmt.Sprintf("i%d=%.3f ", i, r.share(i))
	}
	return s
}

// TestWeightsEquallyFastLowLoad: equally fast instances at low load (in
// flight mostly 0 or 1, so load does not tell them apart) get shares
// proportional to their weights under the power-of-two policies too.
func TestWeightsEquallyFastLowLoad(t *testing.T) {
	tests := []struct {
		name    string
		weights []float64
		sigma   float64 // log-normal spread of latencies; 0 is constant
	}{
		{"2:1 constant latency", []float64{2, 1}, 0},
		{"2:1 noisy latency", []float64{2, 1}, 0.5},
		{"1:2:3 constant latency", []float64{1, 2, 3}, 0},
		{"1:2:3 noisy latency", []float64{1, 2, 3}, 0.5},
	}
	for _, alg := range []Algorithm{PeakEWMA, LeastPending} {
		for _, tt := range tests {
			t.Run(string(alg)+"/"+tt.name, func(t *testing.T) {
				r := runSim(t, weightedScenario(alg, tt.weights, tt.sigma, 150))
				total := 0.0
				for _, w := range tt.weights {
					total += w
				}
				t.Logf("%d picks: %s", r.total, sharesString(r))
				for i, w := range tt.weights {
					if got, want := r.share(i), w/total; math.Abs(got-want) > 0.05 {
						t.Errorf("weight-%g instance share = %.3f, want %.3f ± 0.05 (%s)", w, got, want, sharesString(r))
					}
				}
			})
		}
	}
}

// TestWeightsDoNotOverrideSlowness: a weight-3 instance ten times slower
// than its two weight-1 peers gets a small fraction of its weighted share
// (60%) under peak_ewma. At 1000 req/s the fast instances have requests
// in flight most of the time, and the slow one, whose weight says it has
// room, looks cheaper more often (about 2%).
func TestWeightsDoNotOverrideSlowness(t *testing.T) {
	tests := []struct {
		rate, max float64
	}{
		{150, 0.01},
		{1000, 0.05},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%g req/s", tt.rate), func(t *testing.T) {
			sc := weightedScenario(PeakEWMA, []float64{3, 1, 1}, 0.5, tt.rate)
			sc.instances[0].median = 20 * time.Millisecond
			r := runSim(t, sc)
			t.Logf("%d picks: %s", r.total, sharesString(r))
			if s := r.share(0); s > tt.max {
				t.Errorf("slow weight-3 instance share = %.4f, want <= %.2f (%s)", s, tt.max, sharesString(r))
			}
		})
	}
}

// TestSlowStartPowerOfTwo: under the power-of-two policies a new
// instance's share at low load ramps with its weight during slow start,
// as under random.
func TestSlowStartPowerOfTwo(t *testing.T) {
	for _, alg := range []Algorithm{PeakEWMA, LeastPending} {
		t.Run(string(alg), func(t *testing.T) {
			b, clk := newTestBalancer(t, Config{Algorithm: alg, SlowStart: 10 * time.Second}, 2)
			for range 100 {
				b.Done(mustPick(t, b, nil, nil), Success, 2*time.Millisecond)
				clk.Advance(time.Millisecond)
			}
			b.Update("svc", instances(3))
			share := func() float64 {
				n, hits := 20000, 0
				for range n {
					e := mustPick(t, b, nil, nil)
					if e.ID() == "i2" {
						hits++
					}
					b.Done(e, Success, 2*time.Millisecond)
				}
				return float64(hits) / float64(n)
			}
			tests := []struct {
				after  time.Duration
				lo, hi float64
			}{
				{0, 0.02, 0.08},               // 0.1/2.1 = 0.048
				{5 * time.Second, 0.18, 0.26}, // 0.55/2.55 = 0.22
				{5 * time.Second, 0.30, 0.37}, // 1/3
			}
			for i, tt := range tests {
				clk.Advance(tt.after)
				if s := share(); s < tt.lo || s > tt.hi {
					t.Errorf("new instance share at step %d of slow start = %.3f, want in [%.2f, %.2f]", i, s, tt.lo, tt.hi)
				}
			}
		})
	}
}
