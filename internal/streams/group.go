package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/router"
)

// Entry is the router's stream entry, which this adapter fills.
type Entry = router.Entry

// ErrNoGroup is router.ErrNoGroup: the stream or its consumer group does
// not exist (any more); EnsureGroup re-creates it.
var ErrNoGroup = router.ErrNoGroup

// Group is one consumer (Name) of one consumer group across streams. Safe
// for concurrent use.
type Group struct {
	rdb   redis.UniversalClient
	group string
	name  string
}

// NewGroup returns the consumer name in group on rdb.
func NewGroup(rdb redis.UniversalClient, group, name string) *Group {
	return &Group{rdb: rdb, group: group, name: name}
}

// EnsureGroup creates the group on stream (and the stream, MKSTREAM) from
// the beginning of the stream, so entries published before the gateway's
// first start are routed too. An existing group is left as it is.
func (g *Group) EnsureGroup(ctx context.Context, stream string) error {
	err := g.rdb.XGroupCreateMkStream(ctx, stream, g.group, "0").Err()
	if err != nil && !isBusyGroup(err) {
		return fmt.Errorf("create group %s on %s: %w", g.group, stream, err)
	}
	return nil
}

// Read reads up to count entries of stream. With id ">" it reads new
// entries, blocking up to block. With any other id it re-reads this
// consumer's own pending entries after id (its backlog after a restart),
// without blocking. An empty result with a nil error means nothing arrived.
func (g *Group) Read(ctx context.Context, stream, id string, count int, block time.Duration) ([]Entry, error) {
	history := id != ">"
	if history {
		block = -1 // history reads never block; go-redis omits BLOCK for negative
	}
	out, err := g.readEntries(ctx, stream, id, count, block)
	if err != nil || !history || len(out) == 0 {
		return out, err
	}
	for i := range out {
		out[i].Redelivered = true
	}
	if err := g.fillDeliveries(ctx, stream, out); err != nil {
		return nil, err
	}
	return out, nil
}

// readEntries is XREADGROUP of stream from id, each entry with delivery
// count 1.
func (g *Group) readEntries(ctx context.Context, stream, id string, count int, block time.Duration) ([]Entry, error) {
	res, err := g.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: g.group, Consumer: g.name, Streams: []string{stream, id}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if isNoGroup(err) {
		return nil, fmt.Errorf("xreadgroup %s: %w", stream, ErrNoGroup)
	}
	if err != nil {
		return nil, fmt.Errorf("xreadgroup %s: %w", stream, err)
	}
	var out []Entry
	for _, s := range res {
		out = make([]Entry, 0, len(s.Messages))
		for _, m := range s.Messages {
			out = append(out, toEntry(stream, m, 1))
		}
	}
	return out, nil
}

// Claim takes over entries of stream idle for at least minIdle, from
// cursor start ("0-0" first). It returns the entries with their delivery
// counts and the cursor for the next call ("0-0" when the scan is complete).
// Entries deleted from the stream while pending come back with nil Fields.
func (g *Group) Claim(ctx context.Context, stream, start string, minIdle time.Duration, count int) ([]Entry, string, error) {
	msgs, next, err := g.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: stream, Group: g.group, Consumer: g.name, MinIdle: minIdle, Start: start, Count: int64(count),
	}).Result()
	if isNoGroup(err) {
		return nil, "0-0", fmt.Errorf("xautoclaim %s: %w", stream, ErrNoGroup)
	}
	if err != nil {
		return nil, "0-0", fmt.Errorf("xautoclaim %s: %w", stream, err)
	}
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		e := toEntry(stream, m, 0)
		e.Redelivered = true
		out = append(out, e)
	}
	if len(out) > 0 {
		if err := g.fillDeliveries(ctx, stream, out); err != nil {
			return nil, next, err
		}
	}
	return out, next, nil
}

// fillDeliveries reads Redis's delivery counter of each of entries (all of
// one stream) with one XPENDING per entry, pipelined in one round trip.
// A single range query over the entries' IDs cannot do it: the range also
// holds this consumer's other pending entries (a backlog waiting for a
// capped service, messages in flight), any number of them, so a bounded
// COUNT misses the end of the batch. XAUTOCLAIM has already counted this
// delivery, so the counter read here is the current delivery's number.
func (g *Group) fillDeliveries(ctx context.Context, stream string, entries []Entry) error {
	cmds := make([]*redis.XPendingExtCmd, len(entries))
	_, err := g.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range entries {
			id := entries[i].ID
			cmds[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: stream, Group: g.group, Start: id, End: id, Count: 1,
			})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("xpending %s: %w", stream, err)
	}
	for i, cmd := range cmds {
		// An entry acked or deleted meanwhile has no pending record: it
		// keeps the count it came with (at least 1).
		if pend := cmd.Val(); len(pend) == 1 && pend[0].RetryCount > 0 {
			entries[i].Deliveries = pend[0].RetryCount
		} else if entries[i].Deliveries == 0 {
			entries[i].Deliveries = 1
		}
	}
	return nil
}

// Park keeps an entry pending for this consumer but makes it claimable
// again after retryAfter, and sets its delivery counter back to deliveries
// (the attempt that parked it does not count). It is how a message waits in
// Redis, not in memory, for a busy or absent service. claimIdle is the
// group's XAUTOCLAIM min-idle.
func (g *Group) Park(ctx context.Context, stream, id string, deliveries int64, retryAfter, claimIdle time.Duration) error {
	idle := claimIdle - retryAfter
	if idle < 0 {
		idle = 0
	}
	if deliveries < 0 {
		deliveries = 0
	}
	err := g.rdb.Do(ctx, "XCLAIM", stream, g.group, g.name, 0, id,
		"IDLE", idle.Milliseconds(), "RETRYCOUNT", deliveries, "JUSTID").Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("xclaim park %s %s: %w", stream, id, err)
	}
	return nil
}

// Renew resets the idle time of entries this consumer is still working on,
// so XAUTOCLAIM on another replica does not take them over (a lease). The
// delivery counter is unchanged (JUSTID).
func (g *Group) Renew(ctx context.Context, stream string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	err := g.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
		Stream: stream, Group: g.group, Consumer: g.name, MinIdle: 0, Messages: ids,
	}).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("xclaim renew %s: %w", stream, err)
	}
	return nil
}

// settledKey names the set of routes of entry id that reached a final
// outcome on an earlier delivery (see RememberSettled).
func (g *Group) settledKey(stream, id string) string {
	return "gateway:settled:" + g.group + ":" + stream + ":" + id
}

// SettledRoutes returns the routes of entry id recorded by RememberSettled.
func (g *Group) SettledRoutes(ctx context.Context, stream, id string) ([]string, error) {
	routes, err := g.rdb.SMembers(ctx, g.settledKey(stream, id)).Result()
	if err != nil {
		return nil, fmt.Errorf("smembers settled %s %s: %w", stream, id, err)
	}
	return routes, nil
}

// RememberSettled records that routes of entry id reached a final outcome
// (delivered or dead-lettered) while the entry itself stays pending for
// its other routes, so its next delivery skips them. The record expires
// after ttl (it is not needed once the entry is acked).
func (g *Group) RememberSettled(ctx context.Context, stream, id string, routes []string, ttl time.Duration) error {
	if len(routes) == 0 {
		return nil
	}
	key := g.settledKey(stream, id)
	members := make([]any, len(routes))
	for i, r := range routes {
		members[i] = r
	}
	_, err := g.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, key, members...)
		p.Expire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remember settled %s %s: %w", stream, id, err)
	}
	return nil
}

// AckMany acknowledges ids per stream, pipelined in one round trip per
// connection (per node with Redis Cluster).
func (g *Group) AckMany(ctx context.Context, byStream map[string][]string) error {
	pipe := g.rdb.Pipeline()
	for stream, ids := range byStream {
		pipe.XAck(ctx, stream, g.group, ids...)
	}
	_, err := pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("xack pipeline: %w", err)
	}
	return nil
}

// Add appends fields to stream (XADD *), trimming to about maxLen entries
// when maxLen > 0. Fields are written in the order given. A reply stream of
// `gateway request` (ReplyStreamPrefix) is never created here (NOMKSTREAM):
// the requester creates it and deletes it when done or gone, so a reply
// that comes after that is dropped (id "", nil error) instead of leaving a
// key behind.
func (g *Group) Add(ctx context.Context, stream string, maxLen int64, fields []string) (string, error) {
	args := &redis.XAddArgs{Stream: stream, Values: fields, NoMkStream: strings.HasPrefix(stream, ReplyStreamPrefix)}
	if maxLen > 0 {
		args.MaxLen, args.Approx = maxLen, true
	}
	id, err := g.rdb.XAdd(ctx, args).Result()
	if args.NoMkStream && errors.Is(err, redis.Nil) {
		return "", nil // the requester is gone
	}
	if err != nil {
		return "", fmt.Errorf("xadd %s: %w", stream, err)
	}
	return id, nil
}

func toEntry(stream string, m redis.XMessage, deliveries int64) Entry {
	e := Entry{Stream: stream, ID: m.ID, Deliveries: deliveries}
	if m.Values == nil {
		return e
	}
	e.Fields = make(map[string]string, len(m.Values))
	for k, v := range m.Values {
		switch v := v.(type) {
		case string:
			e.Fields[k] = v
		case nil:
			e.Fields[k] = ""
		default:
			e.Fields[k] = fmt.Sprint(v)
		}
	}
	return e
}

// FormatMillis renders a unix-ms timestamp as Redis fields want it.
func FormatMillis(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
