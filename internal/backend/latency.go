package backend

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// z99 is the standard normal quantile at 0.99: a lognormal variable with
// log-scale sigma has p99/median = exp(z99*sigma).
const z99 = 2.3263478740408408

// Latency is a service-time model. The zero value means "no delay". It is
// immutable and safe for concurrent use.
type Latency struct {
	median time.Duration
	// sigma is the standard deviation of ln(latency); 0 means fixed.
	sigma float64
}

// Fixed returns a model that always answers d.
func Fixed(d time.Duration) Latency { return Latency{median: d} }

// LogNormal returns a lognormal model with the given median and 99th
// percentile. p99 must not be below median.
func LogNormal(median, p99 time.Duration) (Latency, error) {
	if median <= 0 || p99 < median {
		return Latency{}, fmt.Errorf("lognormal: want 0 < median <= p99, got median=%v p99=%v", median, p99)
	}
	return Latency{median: median, sigma: math.Log(float64(p99)/float64(median)) / z99}, nil
}

// ParseLatency reads "0", a Go duration ("2ms": fixed) or
// "lognormal:MEDIAN:P99" ("lognormal:2ms:8ms").
func ParseLatency(s string) (Latency, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Latency{}, nil
	}
	if rest, ok := strings.CutPrefix(s, "lognormal:"); ok {
		ms, ps, ok := strings.Cut(rest, ":")
		if !ok {
			return Latency{}, errors.New(`latency: want "lognormal:MEDIAN:P99"`)
		}
		m, err := time.ParseDuration(ms)
		if err != nil {
			return Latency{}, fmt.Errorf("latency median: %w", err)
		}
		p, err := time.ParseDuration(ps)
		if err != nil {
			return Latency{}, fmt.Errorf("latency p99: %w", err)
		}
		return LogNormal(m, p)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return Latency{}, fmt.Errorf("latency: %w", err)
	}
	if d < 0 {
		return Latency{}, fmt.Errorf("latency: negative duration %v", d)
	}
	return Fixed(d), nil
}

// Scale returns the model with every sample multiplied by k (k > 0): the
// "one slow instance" of a benchmark is the same model scaled by 10.
func (l Latency) Scale(k float64) Latency {
	l.median = time.Duration(float64(l.median) * k)
	return l
}

// Median is the model's median service time.
func (l Latency) Median() time.Duration { return l.median }

// Quantile returns the model's q-quantile (0 < q < 1).
func (l Latency) Quantile(q float64) time.Duration {
	if l.sigma == 0 {
		return l.median
	}
	z := math.Sqrt2 * math.Erfinv(2*q-1)
	return time.Duration(float64(l.median) * math.Exp(l.sigma*z))
}

// Sample draws one service time.
func (l Latency) Sample() time.Duration {
	if l.sigma == 0 {
		return l.median
	}
	return time.Duration(float64(l.median) * math.Exp(l.sigma*rand.NormFloat64()))
}

// String renders the model in the syntax ParseLatency reads.
func (l Latency) String() string {
	if l.sigma == 0 {
		return l.median.String()
	}
	return fmt.Sprintf("lognormal:%v:%v", l.median, l.Quantile(0.99).Round(time.Microsecond))
}
