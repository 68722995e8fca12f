package main

// Ordered delivery (order_key) across gateway processes: replicas, crashes,
// graceful stops and partition rebalancing.

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/partition"
)

// testOrderedReplicas: 2 replicas, 1 ordered stream, 50 keys x 200
// messages, 10% 503s and 0-5 ms latency; stop is nil, or kills or
// terminates the owner midway.
func testOrderedReplicas(t *testing.T, stop syscall.Signal) {
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.10, 5*time.Millisecond)
	procs := map[string]*gwProc{
		"gw-a": h.spawnOrdered("gw-a", []string{"orders"}, 20),
		"gw-b": h.spawnOrdered("gw-b", []string{"orders"}, 20),
	}
	keys := keysN(50)
	const per = 200
	total := len(keys) * per
	h.waitFor("a replica owns orders", 10*time.Second, func() error {
		if h.leaseOwner("orders") == "" {
			return fmt.Errorf("no owner")
		}
		return nil
	})
	start := time.Now()
	h.publishKeyed(keys, per, func(string) string { return "orders" })
	if stop != 0 {
		h.waitFor("half delivered", 30*time.Second, func() error {
			if n := len(b.snapshot()); n < total/2 {
				return fmt.Errorf("%d delivered", n)
			}
			return nil
		})
		owner := h.leaseOwner("orders")
		p := procs[owner]
		if p == nil {
			t.Fatalf("lease owner %q is not a replica", owner)
		}
		at := time.Now()
		before := len(b.snapshot())
		p.signal(t, stop)
		var took time.Duration
		h.waitFor("the other replica owns orders", 20*time.Second, func() error {
			if o := h.leaseOwner("orders"); o == "" || o == owner {
				return fmt.Errorf("owner %q", o)
			}
			took = time.Since(at)
			return nil
		})
		first := time.Duration(0)
		h.waitFor("deliveries by the new owner", 20*time.Second, func() error {
			for _, e := range b.snapshot() {
				if e.at.After(at.Add(took)) {
					first = e.at.Sub(at)
					return nil
				}
			}
			return fmt.Errorf("none yet")
		})
		t.Logf("%v to the owner %s at %d/%d delivered: lease taken over after %v, first delivery by the new owner %v after the signal (claim_idle %s)",
			stop, owner, before, total, took.Round(time.Millisecond), first.Round(time.Millisecond), h.claimIdle)
		if stop == syscall.SIGTERM {
			if code := p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("owner exited %d after SIGTERM", code)
			}
		}
	}
	h.waitFor("every message delivered", 60*time.Second, func() error {
		if rep := checkOrder(b.snapshot(), keys, per); rep.missing > 0 {
			return fmt.Errorf("%v", rep)
		}
		return nil
	})
	elapsed := time.Since(start)
	h.waitAcked(20*time.Second, "orders")
	rep := checkOrder(b.snapshot(), keys, per)
	t.Logf("%d messages (%d keys x %d) in %v: %v", total, len(keys), per, elapsed.Round(time.Millisecond), rep)
	if rep.violations != 0 || rep.missing != 0 || rep.badDups != 0 {
		t.Errorf("%v; want no violations, nothing missing, repeats only of a key's latest message", rep)
	}
	// Without a stop, a repeat still happens when an attempt times out
	// (dispatch.timeout 500ms) on a loaded machine after the service
	// handled it: allowed, as a repeat of the key's latest message.
	if stop == 0 {
		// The replica that never owned the stream never read it: Redis
		// creates a group's consumer on its first XREADGROUP or XAUTOCLAIM.
		cs, err := h.rdb.XInfoConsumers(context.Background(), "orders", "gateway").Result()
		if err != nil || len(cs) != 1 || cs[0].Name != h.leaseOwner("orders") {
			t.Errorf("consumers of orders = %+v, %v; want only the owner %s", cs, err, h.leaseOwner("orders"))
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries: %v", len(d), d[0].Values)
	}
}

func TestOrderedTwoReplicas(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, 0)
}

func TestOrderedOwnerKilled(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, syscall.SIGKILL)
}

func TestOrderedOwnerSIGTERM(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, syscall.SIGTERM)
}

// TestOrderedPartitionsRebalance: 4 partition streams over 2, then 3, then
// 2 replicas; ownership is spread at each stage and order holds throughout.
func TestOrderedPartitionsRebalance(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.05, 3*time.Millisecond)
	streams := []string{"orders.0", "orders.1", "orders.2", "orders.3"}
	keys := keysN(40)
	part := func(k string) string { return partition.Stream("orders", k, len(streams)) }
	procs := map[string]*gwProc{}
	spawn := func(name string) { procs[name] = h.spawnOrdered(name, streams, 20) }
	spread := func(stage string, names ...string) {
		h.waitFor(stage+": streams spread", 20*time.Second, func() error {
			count := map[string]int{}
			for _, s := range streams {
				count[h.leaseOwner(s)]++
			}
			if count[""] > 0 {
				return fmt.Errorf("unowned streams: %v", count)
			}
			for _, n := range names {
				if count[n] == 0 || count[n] == len(streams) {
					return fmt.Errorf("ownership %v", count)
				}
				// gateway_stream_owned says the same as the leases.
				owned := 0
				for _, s := range streams {
					v := metricValue(h.t, procs[n].admin, `gateway_stream_owned{stream="`+s+`"}`)
					if v == 1 {
						owned++
						if h.leaseOwner(s) != n {
							return fmt.Errorf("%s reports owning %s, lease says %s", n, s, h.leaseOwner(s))
						}
					}
				}
				if owned != count[n] {
					return fmt.Errorf("%s: gateway_stream_owned sums to %d, leases to %d", n, owned, count[n])
				}
			}
			t.Logf("%s: ownership %v", stage, count)
			return nil
		})
	}
	spawn("gw-a")
	spawn("gw-b")
	spread("2 replicas", "gw-a", "gw-b")
	const per = 60
	var round atomic.Int32
	publish := func() { // each round publishes messages round*per/3 .. of every key
		r := int(round.Add(1)) - 1
		ctx := context.Background()
		pipe := h.rdb.Pipeline()
		for i := r * per / 3; i < (r+1)*per/3; i++ {
			for _, k := range keys {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: part(k), Values: []string{
					"payload", fmt.Sprintf(`{"k":%q,"n":%d}`, k, i)}})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	spawn("gw-c")
	spread("3 replicas", "gw-a", "gw-b", "gw-c")
	// What GET /streams reports on every replica: ordered, and the
	// lease's owner.
	h.waitFor("/streams shows the owners", 15*time.Second, func() error {
		for _, n := range []string{"gw-a", "gw-b", "gw-c"} {
			got, err := streamsOwnership(procs[n].admin)
			if err != nil {
				return err
			}
			for _, s := range streams {
				if o := h.leaseOwner(s); !got[s].Ordered || got[s].Owner != o || o == "" {
					return fmt.Errorf("%s: /streams says %s is %+v; want ordered, owner %q", n, s, got[s], o)
				}
			}
		}
		return nil
	})
	publish()
	procs["gw-c"].signal(t, syscall.SIGTERM)
	procs["gw-c"].wait(t, 20*time.Second)
	spread("back to 2 replicas", "gw-a", "gw-b")
	publish()
	h.waitFor("every message delivered", 60*time.Second, func() error {
		if rep := checkOrder(b.snapshot(), keys, per); rep.missing > 0 {
			return fmt.Errorf("%v", rep)
		}
		return nil
	})
	h.waitAcked(20*time.Second, streams...)
	rep := checkOrder(b.snapshot(), keys, per)
	t.Logf("partitions through 2, 3, 2 replicas: %v", rep)
	if rep.violations != 0 || rep.missing != 0 || rep.badDups != 0 {
		t.Errorf("%v; want no violations, nothing missing, repeats only of a key's latest message", rep)
	}
}
