package router

import (
	"strings"
	"testing"
	"time"
)

func TestConfigFillDerivesDependentDefaults(t *testing.T) {
	cases := []struct {
		name                                string
		in                                  Config
		claimIdle, attemptTimeout, interval time.Duration
	}{
		{"all unset", Config{}, 30 * time.Second, 5 * time.Second, time.Second},
		{"claim_idle 2s alone", Config{ClaimIdle: 2 * time.Second}, 2 * time.Second, 666666666, 500 * time.Millisecond},
		{"claim_idle 9s alone", Config{ClaimIdle: 9 * time.Second}, 9 * time.Second, 3 * time.Second, time.Second},
		{"long attempt timeout alone", Config{AttemptTimeout: 20 * time.Second}, time.Minute, 20 * time.Second, time.Second},
		{"short attempt timeout alone", Config{AttemptTimeout: time.Second}, 30 * time.Second, time.Second, time.Second},
		{"interval set", Config{ClaimIdle: 2 * time.Second, ClaimInterval: 3 * time.Second}, 2 * time.Second, 666666666, 3 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.in
			cfg.Streams, cfg.DLQStream = []string{"s"}, "dlq"
			if err := cfg.fill(); err != nil {
				t.Fatalf("fill(%+v) = %v", c.in, err)
			}
			if cfg.ClaimIdle != c.claimIdle || cfg.AttemptTimeout != c.attemptTimeout || cfg.ClaimInterval != c.interval {
				t.Errorf("fill(%s): claim idle %s, attempt timeout %s, claim interval %s; want %s, %s, %s",
					c.name, cfg.ClaimIdle, cfg.AttemptTimeout, cfg.ClaimInterval, c.claimIdle, c.attemptTimeout, c.interval)
			}
		})
	}
}

func TestConfigFillRefusesConflictingExplicitValues(t *testing.T) {
	cfg := Config{Streams: []string{"s"}, DLQStream: "dlq", ClaimIdle: 2 * time.Second, AttemptTimeout: 5 * time.Second}
	err := cfg.fill()
	if err == nil || !strings.Contains(err.Error(), "attempt timeout") || !strings.Contains(err.Error(), "claim idle") {
		t.Fatalf("fill(claim idle 2s, attempt timeout 5s) = %v, want an error naming both", err)
	}
}
