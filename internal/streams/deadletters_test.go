package streams

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

func TestRecentDeadLettersNewestFirstAgainstRedis(t *testing.T) {
	srv := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()

	got, err := RecentDeadLetters(ctx, rdb, "dlq", 5)
	if err != nil || len(got) != 0 {
		t.Fatalf("RecentDeadLetters(missing stream) = %v, %v; want none, nil", got, err)
	}
	var ids []string
	for i := range 4 {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "dlq", Values: []string{
			"payload", "secret", "dlq_reason", "permanent_error", "dlq_route", fmt.Sprintf("r%d", i),
			"dlq_error", "status 400", "dlq_stream", "orders", "dlq_id", fmt.Sprintf("1-%d", i),
			"dlq_status", "400", "dlq_at", "1700000000000",
		}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	got, err = RecentDeadLetters(ctx, rdb, "dlq", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("RecentDeadLetters(limit 3) returned %d entries", len(got))
	}
	for i, d := range got {
		want := DeadLetter{ID: ids[3-i], Reason: "permanent_error", Route: fmt.Sprintf("r%d", 3-i), Error: "status 400",
			Stream: "orders", EntryID: fmt.Sprintf("1-%d", 3-i), Status: "400", At: "1700000000000"}
		if d != want {
			t.Errorf("entry %d = %+v, want %+v", i, d, want)
		}
	}
	if _, err := RecentDeadLetters(ctx, rdb, "dlq", 0); err == nil {
		t.Error("RecentDeadLetters(limit 0) succeeded, want an error")
	}
}
