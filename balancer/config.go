package balancer

import (
	"fmt"
	"math"
	"time"
)

// Algorithm names a selection policy (config key balancer.algorithm).
type Algorithm string

// Selection policies. PeakEWMA is the default; the others exist for
// comparison and for services where latency is not a useful signal.
const (
	// PeakEWMA: power of two choices drawn by weight, cost = peak-EWMA
	// latency * (1 + in-flight/weight); alike instances tie.
	PeakEWMA Algorithm = "peak_ewma"
	// LeastPending: power of two choices drawn by weight, cost =
	// 1 + in-flight/weight.
	LeastPending Algorithm = "least_pending"
	// RoundRobin: weighted rotation driven by one atomic counter per pool.
	RoundRobin Algorithm = "round_robin"
	// Random: weighted random choice.
	Random Algorithm = "random"
)

// Config tunes a Balancer. The zero value is valid: every field has a
// default, filled in by New.
type Config struct {
	// Algorithm is the selection policy. Default PeakEWMA.
	Algorithm Algorithm
	// DecayTime is the time constant of the latency and traffic-share
	// decay (Finagle's tau). Default 10s.
	DecayTime time.Duration
	// ConsecutiveFailures ejects an instance after this many transient
	// failures in a row. Default 5; negative disables ejection.
	ConsecutiveFailures int
	// BaseEjection is the first ejection's length; the n-th consecutive
	// ejection lasts BaseEjection * 2^(n-1), capped at MaxEjection.
	// Default 5s.
	BaseEjection time.Duration
	// MaxEjection caps an ejection's length; an instance that has served
	// without ejection for this long starts again from BaseEjection.
	// Default 5m.
	MaxEjection time.Duration
	// MaxEjectionPercent is the largest share of a service's instances
	// that may be ejected at once (1..100). Default 50. When no instance
	// eligible for a pick is left un-ejected, Pick balances over all of them.
	MaxEjectionPercent int
	// SlowStart ramps a newly added instance's weight linearly from 10% to
	// 100% over this time. Instances of a service's first snapshot do not
	// ramp. Default 15s; negative disables.
	SlowStart time.Duration
	// RetryBudget bounds retries per service.
	RetryBudget RetryBudget
	// Now is the clock. Default time.Now. Tests inject a fake.
	Now func() time.Time
}

// RetryBudget allows, per service and per one-second sliding window,
// Ratio * requests + MinPerSecond retries.
type RetryBudget struct {
	// Ratio of retries to first attempts. Default 0.2.
	Ratio float64
	// MinPerSecond retries are always allowed, so that low-traffic
	// services can retry at all. Default 10; negative means 0.
	MinPerSecond int
}

const (
	defaultDecayTime          = 10 * time.Second
	defaultConsecutiveFails   = 5
	defaultBaseEjection       = 5 * time.Second
	defaultMaxEjection        = 5 * time.Minute
	defaultMaxEjectionPercent = 50
	defaultSlowStart          = 15 * time.Second
	defaultRetryRatio         = 0.2
	defaultRetryMinPerSecond  = 10
)

// withDefaults fills zero fields and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.Algorithm == "" {
		c.Algorithm = PeakEWMA
	}
	switch c.Algorithm {
	case PeakEWMA, LeastPending, RoundRobin, Random:
	default:
		return c, fmt.Errorf("balancer: unknown algorithm %q (want peak_ewma, least_pending, round_robin or random)", c.Algorithm)
	}
	if c.DecayTime == 0 {
		c.DecayTime = defaultDecayTime
	}
	if c.DecayTime < 0 {
		return c, fmt.Errorf("balancer: decay time %v must be positive", c.DecayTime)
	}
	if c.ConsecutiveFailures == 0 {
		c.ConsecutiveFailures = defaultConsecutiveFails
	}
	if c.BaseEjection == 0 {
		c.BaseEjection = defaultBaseEjection
	}
	if c.MaxEjection == 0 {
		c.MaxEjection = defaultMaxEjection
	}
	if c.BaseEjection < 0 || c.MaxEjection < c.BaseEjection {
		return c, fmt.Errorf("balancer: ejection times base %v, max %v: want 0 < base <= max", c.BaseEjection, c.MaxEjection)
	}
	if c.MaxEjectionPercent == 0 {
		c.MaxEjectionPercent = defaultMaxEjectionPercent
	}
	if c.MaxEjectionPercent < 1 || c.MaxEjectionPercent > 100 {
		return c, fmt.Errorf("balancer: max ejection percent %d not in 1..100", c.MaxEjectionPercent)
	}
	if c.SlowStart == 0 {
		c.SlowStart = defaultSlowStart
	}
	if c.RetryBudget.Ratio == 0 {
		c.RetryBudget.Ratio = defaultRetryRatio
	}
	if c.RetryBudget.Ratio < 0 || math.IsNaN(c.RetryBudget.Ratio) || math.IsInf(c.RetryBudget.Ratio, 0) {
		return c, fmt.Errorf("balancer: retry budget ratio %v must be a non-negative number", c.RetryBudget.Ratio)
	}
	if c.RetryBudget.MinPerSecond == 0 {
		c.RetryBudget.MinPerSecond = defaultRetryMinPerSecond
	}
	if c.RetryBudget.MinPerSecond < 0 {
		c.RetryBudget.MinPerSecond = 0
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
