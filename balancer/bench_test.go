package balancer

import (
	"testing"
	"time"
)

// BenchmarkPick measures Pick alone on a warm pool of 10 instances with
// the real clock. The in-flight count is released directly so that the
// state stays stable without timing Done.
func BenchmarkPick(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(string(alg), func(b *testing.B) {
			bal := warmBalancer(b, alg)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e, err := bal.Pick("svc", nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				e.inflight.Add(-1)
			}
		})
	}
}

// BenchmarkPickAt is Pick with the time passed in, as the router does: it
// reads the clock once per attempt for its own timing and hands it over.
func BenchmarkPickAt(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(string(alg), func(b *testing.B) {
			bal := warmBalancer(b, alg)
			now := time.Now()
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				e, err := bal.PickAt("svc", nil, nil, now)
				if err != nil {
					b.Fatal(err)
				}
				e.inflight.Add(-1)
				if i++; i%64 == 0 {
					now = now.Add(10 * time.Microsecond)
				}
			}
		})
	}
}

// BenchmarkPickFakeClock is BenchmarkPick with a clock that costs
// nothing, separating the algorithms' cost from time.Now's (which varies
// from ~20 ns on bare metal to ~90 ns on some virtual machines).
func BenchmarkPickFakeClock(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(string(alg), func(b *testing.B) {
			clk := newFakeClock()
			bal := warmBalancerClock(b, alg, clk.Now)
			b.ReportAllocs()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				e, err := bal.Pick("svc", nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				e.inflight.Add(-1)
				if i++; i%64 == 0 {
					clk.Advance(10 * time.Microsecond)
				}
			}
		})
	}
}

// BenchmarkPickTags is Pick with a tag filter (cached subset).
func BenchmarkPickTags(b *testing.B) {
	bal := warmBalancer(b, PeakEWMA)
	tags := []string{"v2"}
	b.ReportAllocs()
	for b.Loop() {
		e, err := bal.Pick("svc", tags, nil)
		if err != nil {
			b.Fatal(err)
		}
		e.inflight.Add(-1)
	}
}

// BenchmarkPickDoneParallel is the full per-attempt cost, Pick then Done,
// from all Ps at once.
func BenchmarkPickDoneParallel(b *testing.B) {
	for _, alg := range algorithms {
		b.Run(string(alg), func(b *testing.B) {
			bal := warmBalancer(b, alg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e, err := bal.Pick("svc", nil, nil)
					if err != nil {
						b.Error(err)
						return
					}
					bal.Done(e, Success, 2*time.Millisecond)
				}
			})
		})
	}
}

func warmBalancer(b *testing.B, alg Algorithm) *Balancer {
	return warmBalancerClock(b, alg, nil)
}

func warmBalancerClock(b *testing.B, alg Algorithm, now func() time.Time) *Balancer {
	b.Helper()
	bal, err := New(Config{Algorithm: alg, Now: now})
	if err != nil {
		b.Fatal(err)
	}
	insts := instances(10)
	for i := range insts {
		if i%2 == 0 {
			insts[i].Tags = []string{"v2"}
		}
	}
	bal.Update("svc", insts)
	for range 100 {
		e, _ := bal.Pick("svc", nil, nil)
		bal.Done(e, Success, 2*time.Millisecond)
	}
	return bal
}
