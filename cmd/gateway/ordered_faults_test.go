package main

// Ordered delivery with a poison message and with rule reloads.

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestOrderedPoisonMessage: a message its service always refuses is
// dead-lettered after max_deliveries; its key then moves on, and other keys
// are never held up by it. A message without a key is dead-lettered as
// bad_message at once.
//
// Each message also goes, by fan-out, to an unordered route (service
// audit): there the poison key's later messages are not held back.
func TestOrderedPoisonMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: by-key
    service: seq
    order_key: 'body.k'
    continue: true
  - name: audit
    service: audit
`)
	b := h.seqBackend("seq-1", 0, 0)
	audit := h.backend("audit", "audit-1")
	h.spawnOrdered("gw-a", []string{"orders"}, 6)
	keys := keysN(20)
	const per = 20
	ctx := context.Background()
	pipe := h.rdb.Pipeline()
	for i := 0; i < per; i++ {
		for _, k := range append([]string{"poison"}, keys...) {
			payload := fmt.Sprintf(`{"k":%q,"n":%d}`, k, i)
			if k == "poison" && i == 0 {
				payload = `{"k":"poison","n":0,"poison":true}`
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"payload", payload}})
		}
	}
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"payload", `{"n":1}`}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// The unordered route has the poison key's messages while the ordered
	// one still retries the poison.
	h.waitFor("audit got every message of the poison key", 20*time.Second, func() error {
		seen := map[int]bool{}
		for _, r := range audit.received() {
			var m struct {
				K string
				N int
			}
			_ = json.Unmarshal([]byte(r.Body), &m)
			if m.K == "poison" {
				seen[m.N] = true
			}
		}
		if len(seen) != per {
			return fmt.Errorf("audit got %d of %d", len(seen), per)
		}
		return nil
	})
	for _, m := range h.dlq() {
		if m.Values["dlq_reason"] == "max_deliveries" {
			t.Errorf("the poison was dead-lettered before audit had its key's messages: the unordered route was held back")
		}
	}
	h.waitFor("poison and keyless messages dead-lettered", 30*time.Second, func() error {
		if n := len(h.dlq()); n != 2 {
			return fmt.Errorf("dlq has %d", n)
		}
		return nil
	})
	h.waitFor("every other message delivered", 30*time.Second, func() error {
		ev := b.snapshot()
		if rep := checkOrder(ev, keys, per); rep.missing > 0 {
			return fmt.Errorf("other keys: %v", rep)
		}
		var poisonKey []seqEvent
		for _, e := range ev {
			if e.key == "poison" {
				poisonKey = append(poisonKey, e)
			}
		}
		if len(poisonKey) < per-1 {
			return fmt.Errorf("poison key: %d of %d delivered", len(poisonKey), per-1)
		}
		return nil
	})
	h.waitAcked(10*time.Second, "orders")
	reasons := map[string]string{}
	var poisonAt time.Time
	for _, m := range h.dlq() {
		reasons[fmt.Sprint(m.Values["payload"])] = fmt.Sprintf("%v attempts=%v err=%v", m.Values["dlq_reason"], m.Values["dlq_attempts"], m.Values["dlq_error"])
		if m.Values["dlq_reason"] == "max_deliveries" {
			ms, _ := strconv.ParseInt(fmt.Sprint(m.Values["dlq_at"]), 10, 64)
			poisonAt = time.UnixMilli(ms)
		}
	}
	if r := reasons[`{"k":"poison","n":0,"poison":true}`]; !strings.HasPrefix(r, "max_deliveries attempts=6") {
		t.Errorf("poison message dead-lettered as %q, want max_deliveries after 6", r)
	}
	if r := reasons[`{"n":1}`]; !strings.HasPrefix(r, "bad_message") || !strings.Contains(r, "order_key") {
		t.Errorf("keyless message dead-lettered as %q, want bad_message naming order_key", r)
	}
	ev := b.snapshot()
	var lastOther, firstPoisonKey time.Time
	for _, e := range ev {
		if e.key == "poison" {
			if firstPoisonKey.IsZero() {
				firstPoisonKey = e.at
			}
		} else if e.at.After(lastOther) {
			lastOther = e.at
		}
	}
	t.Logf("poison dead-lettered at +%v after the other keys finished; its key's next message %v after that",
		poisonAt.Sub(lastOther).Round(time.Millisecond), firstPoisonKey.Sub(poisonAt).Round(time.Millisecond))
	if !lastOther.Before(poisonAt) {
		t.Errorf("other keys finished at %v, after the poison was dead-lettered at %v: they were held up", lastOther, poisonAt)
	}
	if firstPoisonKey.Before(poisonAt.Add(-time.Millisecond)) { // dlq_at has ms resolution
		t.Errorf("poison key's next message delivered at %v, before the poison was dead-lettered at %v", firstPoisonKey, poisonAt)
	}
	next := 1 // the poison key's messages after the poison, in order
	for _, e := range ev {
		if e.key == "poison" && e.n == next {
			next++
		} else if e.key == "poison" && e.n > next {
			t.Errorf("poison key: message %d delivered before %d", e.n, next)
		}
	}
}

// TestOrderedRuleReload: reloads that remove and add order_key switch a
// stream between unordered and ordered reading without losing anything,
// and messages published once ordering is back are in order.
func TestOrderedRuleReload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.05, 2*time.Millisecond)
	gw := h.spawnOrdered("gw-a", []string{"orders"}, 20)
	owned := func(want bool) func() error {
		return func() error {
			if got := h.leaseOwner("orders") == "gw-a"; got != want {
				return fmt.Errorf("lease held: %v", got)
			}
			if v := metricValue(t, gw.admin, `gateway_stream_owned{stream="orders"}`); (v == 1) != want {
				return fmt.Errorf("gateway_stream_owned = %v", v)
			}
			return nil
		}
	}
	h.waitFor("ordered reading", 10*time.Second, owned(true))
	first := keysN(30)
	h.publishKeyed(first, 100, func(string) string { return "orders" })
	h.waitFor("some delivered", 20*time.Second, func() error {
		if n := len(b.snapshot()); n < 500 {
			return fmt.Errorf("%d delivered", n)
		}
		return nil
	})
	h.writeRules(strings.Replace(orderedRules, "    order_key: 'body.k'\n", "", 1))
	gw.signal(t, syscall.SIGHUP)
	h.waitFor("unordered reading (lease given up)", 20*time.Second, owned(false))
	h.writeRules(orderedRules)
	gw.signal(t, syscall.SIGHUP)
	h.waitFor("ordered reading again", 20*time.Second, owned(true))
	second := make([]string, 30)
	for i := range second {
		second[i] = "later-" + strconv.Itoa(i)
	}
	h.publishKeyed(second, 50, func(string) string { return "orders" })
	h.waitFor("every message delivered", 60*time.Second, func() error {
		ev := b.snapshot()
		if rep := checkOrder(ev, first, 100); rep.missing > 0 {
			return fmt.Errorf("before the reloads: %v", rep)
		}
		if rep := checkOrder(ev, second, 50); rep.missing > 0 {
			return fmt.Errorf("after: %v", rep)
		}
		return nil
	})
	h.waitAcked(20*time.Second, "orders")
	rep := checkOrder(b.snapshot(), second, 50)
	t.Logf("published after ordering came back: %v", rep)
	if rep.violations != 0 || rep.badDups != 0 {
		t.Errorf("after the reloads: %v", rep)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries", len(d))
	}
}
