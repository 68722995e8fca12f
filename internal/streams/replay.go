package streams

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/rules"
)

// ReplayConfig selects dead letters to move back.
type ReplayConfig struct {
	DLQ    string  // dead-letter stream; required
	To     string  // target stream; default: each entry's dlq_stream
	Limit  int     // at most this many entries; 0 = all
	Rate   float64 // entries per second; 0 = unlimited
	Reason string  // only entries with this dlq_reason; "" = all
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	Replayed, Skipped, Failed int
}

// Replay moves dead letters back onto their original stream (or To): it
// re-adds the original fields (every field but dlq_*) and deletes the DLQ
// entry only after that XADD succeeded, so a failure loses nothing (at
// worst an entry is replayed twice if the XDEL fails after the XADD).
//
// Each replay also carries the reserved fields the router honours:
// gateway_replay_of and gateway_replay_stream (the original entry, kept
// through further replays), so the replay keeps the original's
// Idempotency-Key and X-Message-Id, and gateway_replay_route (dlq_route), so
// it goes only to the route that dead-lettered it (every route it matches
// when dlq_route is empty, as for no_route).
func Replay(ctx context.Context, rdb redis.UniversalClient, cfg ReplayConfig) (ReplayResult, error) {
	var res ReplayResult
	if cfg.DLQ == "" {
		return res, errors.New("replay: no dead-letter stream")
	}
	var tick *time.Ticker
	if cfg.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer tick.Stop()
	}
	start := "-"
	for {
		msgs, err := rdb.XRangeN(ctx, cfg.DLQ, start, "+", 100).Result()
		if err != nil {
			return res, fmt.Errorf("xrange %s: %w", cfg.DLQ, err)
		}
		if len(msgs) == 0 {
			return res, nil
		}
		for _, m := range msgs {
			if cfg.Limit > 0 && res.Replayed+res.Failed >= cfg.Limit {
				return res, nil
			}
			target, fields, ok := original(m, cfg)
			if !ok {
				res.Skipped++
				continue
			}
			if tick != nil {
				select {
				case <-ctx.Done():
					return res, ctx.Err()
				case <-tick.C:
				}
			}
			if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: target, Values: fields}).Err(); err != nil {
				res.Failed++
				continue
			}
			if err := rdb.XDel(ctx, cfg.DLQ, m.ID).Err(); err != nil {
				return res, fmt.Errorf("xdel %s %s after replay: %w", cfg.DLQ, m.ID, err)
			}
			res.Replayed++
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// original splits a dead letter into its target stream and its original
// fields; ok is false when the entry is filtered out or has no target.
func original(m redis.XMessage, cfg ReplayConfig) (string, []string, bool) {
	reason, _ := m.Values["dlq_reason"].(string)
	if cfg.Reason != "" && reason != cfg.Reason {
		return "", nil, false
	}
	target := cfg.To
	if target == "" {
		target, _ = m.Values["dlq_stream"].(string)
	}
	if target == "" {
		return "", nil, false
	}
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	fields := make([]string, 0, 2*len(m.Values)+6)
	for k := range m.Values {
		if strings.HasPrefix(k, "dlq_") || k == rules.FieldReplayRoute ||
			(k == rules.FieldReplayOf || k == rules.FieldReplayStream) && str(rules.FieldReplayOf) == "" {
			continue
		}
		fields = append(fields, k, str(k))
	}
	if len(fields) == 0 {
		return "", nil, false
	}
	if str(rules.FieldReplayOf) == "" && str("dlq_id") != "" {
		// First replay: the dead letter's entry is the original.
		fields = append(fields, rules.FieldReplayOf, str("dlq_id"), rules.FieldReplayStream, str("dlq_stream"))
	}
	if route := str("dlq_route"); route != "" {
		fields = append(fields, rules.FieldReplayRoute, route)
	}
	return target, fields, true
}
