package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// DeadLetter is one dead-letter entry as the admin server's /deadletters
// reports it: the DLQ entry's own ID and the dlq_* fields the router
// writes (see the CONTRACT's dead-letter stream). The original message's
// fields (payload included) are left out: the status page shows why a
// message failed, not what it carried.
type DeadLetter struct {
	ID     string `json:"id"`
	Reason string `json:"dlq_reason"`
	Route  string `json:"dlq_route"`
	Error  string `json:"dlq_error"`
	Stream string `json:"dlq_stream"`
	// EntryID is the original entry's ID on Stream.
	EntryID string `json:"dlq_id"`
	Status  string `json:"dlq_status"`
	// At is the dead-lettering time in unix milliseconds, as written.
	At string `json:"dlq_at"`
}

// RecentDeadLetters returns up to limit entries of the dead-letter stream,
// newest first (XREVRANGE), without changing it. A stream that does not
// exist yet has no entries. Safe for concurrent use (rdb is).
func RecentDeadLetters(ctx context.Context, rdb redis.Cmdable, stream string, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("read dead letters: limit %d must be positive", limit)
	}
	msgs, err := rdb.XRevRangeN(ctx, stream, "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("xrevrange %s: %w", stream, err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		s := func(k string) string { v, _ := m.Values[k].(string); return v }
		out = append(out, DeadLetter{
			ID: m.ID, Reason: s("dlq_reason"), Route: s("dlq_route"), Error: s("dlq_error"),
			Stream: s("dlq_stream"), EntryID: s("dlq_id"), Status: s("dlq_status"), At: s("dlq_at"),
		})
	}
	return out, nil
}
