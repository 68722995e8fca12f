package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Streams whose keys hash to slots on different masters of the cluster.
var clusterStreams = []string{"orders", "payments", "events", "audit"}

func TestEndToEndRedisCluster(t *testing.T) {
	h := newClusterHarness(t)
	ctx := context.Background()
	// Make sure the streams really live on different masters.
	owners := map[string]bool{}
	cc := h.rdb.(*redis.ClusterClient)
	for _, s := range clusterStreams {
		slot, err := cc.ClusterKeySlot(ctx, s).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots, err := cc.ClusterSlots(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range slots {
			if slot >= int64(r.Start) && slot <= int64(r.End) {
				owners[r.Nodes[0].Addr] = true
			}
		}
	}
	if len(owners) < 2 {
		t.Fatalf("streams %v all on one master; test proves nothing", clusterStreams)
	}
	h.writeRules(`
routes:
  - name: all
    match: 'headers.type == "x"'
    service: sink
`)
	sink := h.backend("sink", "sink-1")
	h.start(clusterStreams, "")
	const perStream = 200
	for _, s := range clusterStreams {
		h.publishN(s, perStream, "x")
	}
	h.publish("orders", "type", "unrouted", "payload", "{}")
	h.waitFor("all delivered across masters", 20*time.Second, func() error {
		if d, _ := sink.unique(); d != perStream*len(clusterStreams) {
			return fmt.Errorf("delivered %d of %d", d, perStream*len(clusterStreams))
		}
		return nil
	})
	h.waitFor("all acked, unrouted dead-lettered", 10*time.Second, func() error {
		for _, s := range clusterStreams {
			if p := h.pending(s); p != 0 {
				return fmt.Errorf("%s pending %d", s, p)
			}
		}
		if n := len(h.dlq()); n != 1 {
			return fmt.Errorf("dlq %d", n)
		}
		return nil
	})
	if _, dups := sink.unique(); dups != 0 {
		t.Errorf("duplicates = %d, want 0", dups)
	}
	t.Logf("cluster: %d streams on %d masters, %d messages routed and acked", len(clusterStreams), len(owners), perStream*len(clusterStreams))
}
