package streams

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// TestClaimDeliveryCountsAmongOtherPending: XAUTOCLAIM takes 50 entries
// idle long enough, interleaved with 50 other entries pending for the same
// consumer (a backlog waiting for a capped service). Every claimed entry
// must come back with its real delivery count, not 1.
func TestClaimDeliveryCountsAmongOtherPending(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	g := NewGroup(rdb, "gw", "c1")
	if err := g.EnsureGroup(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 100; i++ {
		id, err := g.Add(ctx, "s", 0, []string{"payload", "x"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if got, err := g.Read(ctx, "s", ">", 100, time.Second); err != nil || len(got) != 100 {
		t.Fatalf("Read = %d entries, %v; want 100", len(got), err)
	}
	// Every other entry has been delivered 3 times and is idle for long;
	// the others were just read (idle ~0), so XAUTOCLAIM skips them.
	poison := map[string]bool{}
	for i := 0; i < len(ids); i += 2 {
		poison[ids[i]] = true
		if err := rdb.Do(ctx, "XCLAIM", "s", "gw", "c1", 0, ids[i], "IDLE", 600000, "RETRYCOUNT", 3, "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, next, err := g.Claim(ctx, "s", "0-0", time.Minute, 50)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("Claim returned %d entries (next %s), want 50", len(got), next)
	}
	for _, e := range got {
		if !poison[e.ID] {
			t.Errorf("Claim took %s, which was not idle", e.ID)
		}
		// 3 earlier deliveries + this claim.
		if e.Deliveries != 4 || !e.Redelivered {
			t.Errorf("Claim entry %s: Deliveries = %d, Redelivered = %v; want 4, true", e.ID, e.Deliveries, e.Redelivered)
		}
	}
}

// TestReadBacklogDeliveryCounts: re-reading the consumer's own pending
// entries (history read after a restart) reports each entry's counter as
// Redis keeps it, whatever else is pending between them.
func TestReadBacklogDeliveryCounts(t *testing.T) {
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	g := NewGroup(rdb, "gw", "c1")
	if err := g.EnsureGroup(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 60; i++ {
		if _, err := g.Add(ctx, "s", 0, []string{"payload", "x"}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := g.Read(ctx, "s", ">", 60, time.Second)
	if err != nil || len(first) != 60 {
		t.Fatalf("Read = %d entries, %v; want 60", len(first), err)
	}
	for i, e := range first {
		if err := rdb.Do(ctx, "XCLAIM", "s", "gw", "c1", 0, e.ID, "RETRYCOUNT", 2+i%3, "JUSTID").Err(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := g.Read(ctx, "s", "0", 60, 0)
	if err != nil || len(got) != 60 {
		t.Fatalf("history Read = %d entries, %v; want 60", len(got), err)
	}
	for _, e := range got {
		pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "s", Group: "gw", Start: e.ID, End: e.ID, Count: 1}).Result()
		if err != nil || len(pend) != 1 {
			t.Fatalf("xpending %s: %v %v", e.ID, pend, err)
		}
		if e.Deliveries != pend[0].RetryCount || !e.Redelivered {
			t.Errorf("history entry %s: Deliveries = %d, Redelivered = %v; want %d (XPENDING), true", e.ID, e.Deliveries, e.Redelivered, pend[0].RetryCount)
		}
	}
}
