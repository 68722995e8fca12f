package main

import (
	"math"
	"time"
)

// latencySummary is the latency distribution of one run, in milliseconds.
type latencySummary struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
	// Curve samples the distribution for charts: latency at percentiles
	// spaced evenly on a log(1/(1-q)) axis, up to the last sample.
	Curve []curvePoint `json:"curve"`
}

type curvePoint struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// summarize computes the summary of sorted latencies.
func summarize(sorted []time.Duration) latencySummary {
	s := latencySummary{Count: len(sorted)}
	if len(sorted) == 0 {
		return s
	}
	var sum float64
	for _, d := range sorted {
		sum += ms(d)
	}
	s.Mean = sum / float64(len(sorted))
	s.P50 = ms(quantile(sorted, 0.50))
	s.P90 = ms(quantile(sorted, 0.90))
	s.P99 = ms(quantile(sorted, 0.99))
	s.P999 = ms(quantile(sorted, 0.999))
	s.Max = ms(sorted[len(sorted)-1])
	// Up to 1 - 1/n: beyond that the curve would only repeat the max.
	top := math.Log10(float64(len(sorted)))
	const steps = 60
	for i := 0; i <= steps; i++ {
		nines := top * float64(i) / steps
		q := 1 - math.Pow(10, -nines)
		s.Curve = append(s.Curve, curvePoint{Percentile: 100 * q, Ms: ms(quantile(sorted, q))})
	}
	return s
}

// quantile is the nearest-rank q-quantile of sorted (0 <= q <= 1).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
