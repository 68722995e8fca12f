package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// Poison messages (their service always answers 503) interleaved with a
// backlog for a slow service capped at 16 requests in flight (so up to 64
// of its messages are pending at once: 16 in flight, 48 queued).
const poisonRules = `
routes:
  - name: poison
    match: 'headers.type == "poison"'
    service: poison
  - name: slow
    match: 'headers.type == "slow"'
    service: slow
default:
  action: dlq
`

// TestPoisonAmongBacklogReachesMaxDeliveries: while a capped, slow
// service's backlog stays pending for the same consumer, every poison
// message is retried on its own schedule and dead-lettered with reason
// max_deliveries after exactly max_deliveries attempts, each numbered by
// X-Delivery-Attempt 1..3. (Before the fix, claimed entries among more than
// 16 other pending ones got delivery count 1 and looped.)
func TestPoisonAmongBacklogReachesMaxDeliveries(t *testing.T) {
	h := newHarness(t)
	h.writeRules(poisonRules)
	poison := h.backend("poison", "poison-1")
	poison.status.Store(503)
	slow := h.backend("slow", "slow-1")
	slow.light.Store(true)
	slow.delay.Store(int64(300 * time.Millisecond))

	const n = 40
	ids := map[string]bool{}
	for i := 0; i < n; i++ {
		ids[h.publish("jobs", "type", "poison", "payload", fmt.Sprintf(`{"p":%d}`, i))] = true
		for k := 0; k < 5; k++ {
			h.publish("jobs", "type", "slow", "payload", fmt.Sprintf(`{"s":%d}`, 5*i+k))
		}
	}
	// max_deliveries 3 (harness). Poison messages parked together come
	// back in one XAUTOCLAIM whose ID range holds dozens of slow ones.
	h.start([]string{"jobs"}, "  service_limits: {slow: 16}\n")

	h.waitFor("every poison message dead-lettered", 60*time.Second, func() error {
		got := 0
		for _, d := range h.dlq() {
			if ids[fmt.Sprint(d.Values["dlq_id"])] {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("%d of %d in the DLQ, poison service saw %d requests", got, n, poison.count())
		}
		return nil
	})
	seen := map[string]bool{}
	for _, d := range h.dlq() {
		v := d.Values
		id := fmt.Sprint(v["dlq_id"])
		if !ids[id] {
			t.Errorf("unexpected dead letter %v", v)
			continue
		}
		if seen[id] {
			t.Errorf("%s dead-lettered twice", id)
		}
		seen[id] = true
		if v["dlq_reason"] != "max_deliveries" || v["dlq_attempts"] != "3" || v["dlq_status"] != "503" {
			t.Errorf("dead letter of %s: reason %v attempts %v status %v; want max_deliveries 3 503",
				id, v["dlq_reason"], v["dlq_attempts"], v["dlq_status"])
		}
	}
	attempts := map[string][]int{}
	for _, r := range poison.received() {
		a, _ := strconv.Atoi(r.Header.Get("X-Delivery-Attempt"))
		id := r.Header.Get("X-Message-Id")
		attempts[id] = append(attempts[id], a)
	}
	for id := range ids {
		if got := attempts[id]; fmt.Sprint(got) != "[1 2 3]" {
			t.Errorf("message %s: X-Delivery-Attempt of its requests = %v, want [1 2 3]", id, got)
		}
	}
}

// TestBacklogWaitingForCappedServiceIsNotClaimed: a backlog that waits
// longer than claim_idle for a capped service (one request at a time) is
// still this replica's: none of it is claimed again by XAUTOCLAIM, so each
// message reaches the service once, on its first delivery.
func TestBacklogWaitingForCappedServiceIsNotClaimed(t *testing.T) {
	h := newHarness(t)
	h.writeRules(poisonRules)
	slow := h.backend("slow", "slow-1")
	slow.delay.Store(int64(100 * time.Millisecond))
	const n = 50 // 5 s of work, claim_idle 2s
	for i := 0; i < n; i++ {
		h.publish("jobs", "type", "slow", "payload", fmt.Sprintf(`{"s":%d}`, i))
	}
	h.start([]string{"jobs"}, "  service_limits: {slow: 1}\n")
	h.waitDistinct("backlog delivered", 60*time.Second, slow, n, true)
	h.waitAcked(10*time.Second, "jobs")
	if _, dups := slow.unique(); dups != 0 {
		t.Errorf("slow service received %d duplicates, want 0", dups)
	}
	for _, r := range slow.received() {
		if a := r.Header.Get("X-Delivery-Attempt"); a != "1" {
			t.Errorf("message %s: X-Delivery-Attempt %s, want 1", r.Header.Get("X-Message-Id"), a)
		}
	}
}
