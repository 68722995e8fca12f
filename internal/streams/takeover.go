package streams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// takeOverPage is how many pending entries TakeOver inspects per XPENDING.
const takeOverPage = 200

// TakeOver moves to this consumer every entry of stream pending for another
// consumer of the group and idle for at least minIdle, in ID order, keeping
// their delivery counters (XCLAIM JUSTID). It returns how many it moved.
// The new owner of an ordered stream calls it (minIdle 0) before it re-reads
// its own pending entries from ID 0, so the old owner's unfinished entries
// are worked through first and in stream order.
func (g *Group) TakeOver(ctx context.Context, stream string, minIdle time.Duration) (int, error) {
	moved := 0
	start := "-"
	for {
		pend, err := g.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: g.group, Start: start, End: "+", Count: takeOverPage, Idle: minIdle,
		}).Result()
		if isNoGroup(err) {
			return moved, fmt.Errorf("xpending %s: %w", stream, ErrNoGroup)
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			return moved, fmt.Errorf("xpending %s: %w", stream, err)
		}
		var ids []string
		for _, p := range pend {
			if p.Consumer != g.name {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) > 0 {
			err := g.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
				Stream: stream, Group: g.group, Consumer: g.name, MinIdle: minIdle, Messages: ids,
			}).Err()
			if err != nil && !errors.Is(err, redis.Nil) {
				return moved, fmt.Errorf("xclaim takeover %s: %w", stream, err)
			}
			moved += len(ids)
		}
		if len(pend) < takeOverPage {
			return moved, nil
		}
		start = "(" + pend[len(pend)-1].ID
	}
}
