package streams

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// TestTakeOver: another consumer's pending entries move to this one, all
// of them (more than a page), in ID order, with their delivery counters;
// entries not idle long enough stay.
func TestTakeOver(t *testing.T) {
	rd := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer rdb.Close()
	ctx := context.Background()
	old, cur := NewGroup(rdb, "g", "old"), NewGroup(rdb, "g", "new")
	if err := old.EnsureGroup(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	const n = takeOverPage*2 + 7
	for i := 0; i < n; i++ {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"i", "x"}})
	}
	if _, err := old.Read(ctx, "s", ">", n, 0); err != nil {
		t.Fatal(err)
	}
	// The first entry was delivered three times to the old consumer.
	first := rdb.XRange(ctx, "s", "-", "+").Val()[0].ID
	rdb.Do(ctx, "XCLAIM", "s", "g", "old", 0, first, "RETRYCOUNT", 3)

	if moved, err := cur.TakeOver(ctx, "s", time.Hour); err != nil || moved != 0 {
		t.Fatalf("TakeOver(minIdle 1h) = %d, %v; want 0 moved", moved, err)
	}
	moved, err := cur.TakeOver(ctx, "s", 0)
	if err != nil || moved != n {
		t.Fatalf("TakeOver = %d, %v; want %d", moved, err, n)
	}
	// Read from 0 gives them back in ID order with their counters.
	got, err := cur.Read(ctx, "s", "0", n+1, 0)
	if err != nil || len(got) != n {
		t.Fatalf("Read(0) = %d entries, %v; want %d", len(got), err, n)
	}
	for i := 1; i < len(got); i++ {
		if !idLess(got[i-1].ID, got[i].ID) {
			t.Fatalf("entries out of order: %s after %s", got[i].ID, got[i-1].ID)
		}
	}
	if got[0].ID != first || got[0].Deliveries < 3 {
		t.Errorf("first entry %s deliveries %d, want %s with at least 3", got[0].ID, got[0].Deliveries, first)
	}
	if p := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "s", Group: "g", Start: "-", End: "+", Count: 10, Consumer: "old"}).Val(); len(p) != 0 {
		t.Errorf("old consumer still has %d pending", len(p))
	}
	if moved, err := cur.TakeOver(ctx, "s", 0); err != nil || moved != 0 {
		t.Errorf("second TakeOver = %d, %v; want 0 (own entries stay)", moved, err)
	}
}

// idLess compares stream IDs (ms-seq) numerically.
func idLess(a, b string) bool {
	var am, as, bm, bs int64
	fmt.Sscanf(a, "%d-%d", &am, &as)
	fmt.Sscanf(b, "%d-%d", &bm, &bs)
	return am < bm || am == bm && as < bs
}
