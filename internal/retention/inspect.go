package retention

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// view is what one pass saw of one stream.
type view struct {
	exists bool
	length int64
	first  streamID // oldest entry; valid when length > 0
	groups int
	// own is the gateway's group: lag (-1 when Redis cannot tell) and
	// pending count; ownFound is false when the group does not exist.
	ownLag, ownPending int64
	ownFound           bool
	// bound is the MINID that keeps everything some group has not
	// finished: every group's oldest pending entry and every entry after
	// its last-delivered ID. maxID when the stream has no group.
	bound streamID
	// unfinished is the oldest entry some group has not finished; valid
	// when hasUnfinished.
	unfinished    streamID
	hasUnfinished bool
}

// inspect reads stream's state: one XINFO STREAM, one XINFO GROUPS, one
// XPENDING summary per group with pending entries, and at most one XRANGE
// COUNT 1 for the oldest unread entry.
//
// XINFO GROUPS comes before XPENDING on purpose: groups only move forward,
// so an entry a group reads after XINFO has an ID above the last-delivered
// ID XINFO returned and stays above the bound; an entry still pending at
// XPENDING time is at or above the oldest pending ID. The other order would
// miss an entry read and left pending between the two commands.
func (t *Trimmer) inspect(ctx context.Context, stream string) (view, error) {
	v := view{bound: maxID}
	info, err := t.rdb.XInfoStream(ctx, stream).Result()
	if isNoSuchKey(err) {
		return v, nil
	}
	if err != nil {
		return v, fmt.Errorf("xinfo stream %s: %w", stream, err)
	}
	v.exists, v.length = true, info.Length
	if info.Length > 0 {
		if v.first, err = parseID(info.FirstEntry.ID); err != nil {
			return v, fmt.Errorf("xinfo stream %s first entry: %w", stream, err)
		}
	}
	groups, err := t.rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		return v, fmt.Errorf("xinfo groups %s: %w", stream, err)
	}
	v.groups = len(groups)
	unreadFrom, oldestPending := maxID, maxID
	for _, g := range groups {
		last, err := parseID(g.LastDeliveredID)
		if err != nil {
			return v, fmt.Errorf("xinfo groups %s group %s: %w", stream, g.Name, err)
		}
		unreadFrom = minID(unreadFrom, last.next())
		if g.Name == t.cfg.Group {
			v.ownFound, v.ownLag, v.ownPending = true, g.Lag, g.Pending
		}
		if g.Pending == 0 {
			continue
		}
		p, err := t.rdb.XPending(ctx, stream, g.Name).Result()
		if err != nil {
			return v, fmt.Errorf("xpending %s group %s: %w", stream, g.Name, err)
		}
		if p.Count == 0 {
			continue // acked since XINFO GROUPS: finished
		}
		lower, err := parseID(p.Lower)
		if err != nil {
			return v, fmt.Errorf("xpending %s group %s: %w", stream, g.Name, err)
		}
		oldestPending = minID(oldestPending, lower)
	}
	v.bound = minID(unreadFrom, oldestPending)
	v.unfinished, v.hasUnfinished = oldestPending, oldestPending != maxID
	last, err := parseID(info.LastGeneratedID)
	if err != nil {
		return v, fmt.Errorf("xinfo stream %s last id: %w", stream, err)
	}
	if unreadFrom == maxID || last.less(unreadFrom) || !unreadFrom.less(oldestPending) {
		return v, nil // nothing unread, or older pending entries already answer
	}
	msgs, err := t.rdb.XRangeN(ctx, stream, unreadFrom.String(), "+", 1).Result()
	if err != nil {
		return v, fmt.Errorf("xrange %s: %w", stream, err)
	}
	if len(msgs) == 1 {
		first, err := parseID(msgs[0].ID)
		if err != nil {
			return v, fmt.Errorf("xrange %s: %w", stream, err)
		}
		v.unfinished, v.hasUnfinished = minID(v.unfinished, first), true
	}
	return v, nil
}

// isNoSuchKey reports Redis's answer to XINFO on a missing stream. The
// driver exposes it only as text, so the string check lives here alone.
func isNoSuchKey(err error) bool {
	return err != nil && !errors.Is(err, redis.Nil) && strings.Contains(err.Error(), "no such key")
}
