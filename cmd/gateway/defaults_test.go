package main

import (
	"fmt"
	"testing"
	"time"
)

// TestParkedMessageDueAfterOneSecondWithDefaultClaimIdle: with
// consumer.claim_idle and claim_interval left at their defaults (30s and
// min(30s/4, 1s) = 1s), a message that failed transiently comes back about
// 1 s later (its retry delay plus at most one claim interval), as the
// README says, not after claim_idle/4 = 7.5 s.
func TestParkedMessageDueAfterOneSecondWithDefaultClaimIdle(t *testing.T) {
	h := newHarness(t)
	h.claimIdle = "30s"
	h.writeRules(poisonRules) // no retries: one attempt per delivery
	b := h.backend("poison", "poison-1")
	b.status.Store(503)
	h.start([]string{"jobs"}, "")

	h.publish("jobs", "type", "poison", "payload", `{"n":1}`)
	h.waitFor("first attempt", 10*time.Second, func() error {
		if n := b.count(); n < 1 {
			return fmt.Errorf("attempts %d", n)
		}
		return nil
	})
	first := time.Now()
	b.status.Store(200)
	h.waitFor("second delivery", 15*time.Second, func() error {
		if n := b.count(); n < 2 {
			return fmt.Errorf("attempts %d", n)
		}
		return nil
	})
	if gap := time.Since(first); gap > 4*time.Second {
		t.Errorf("redelivery came %s after the failed delivery, want about 1-2 s (claim_interval default min(claim_idle/4, 1s))", gap.Round(time.Millisecond))
	}
	h.waitAcked(10*time.Second, "jobs")
}
