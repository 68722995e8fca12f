package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/workload"
)

// producer XADDs total messages numbered 0..total-1 onto a stream, in
// pipelines. Each message carries, in its payload, its sequence number and
// its intended send time (unix ns), and a route key field rk.
type producer struct {
	rdb    *redis.Client
	stream string
	from   int // first seq to send (a preload sent those before it)
	total  int
	routes int // route keys cycle r0..r(routes-1)
	// realistic: ~300-byte JSON orders for the realistic rule set instead
	// of small bodies with a route key attribute.
	realistic bool
	// rate > 0: open loop, message i is due at start + i/rate and stamped
	// with that time, however late it actually goes out, so a slow
	// consumer cannot hide latency (no coordinated omission).
	// rate == 0: closed loop, as fast as Redis takes pipelines of batch.
	rate  float64
	batch int
	// tick > 0 (open loop) makes the producer wake at most once per tick and
	// send everything due in one pipeline: far less CPU than one pipeline
	// per message, at the price of up to tick of send delay, which counts
	// as latency (intended times are unchanged) for every target alike.
	tick time.Duration

	// keys > 0: each message carries attribute ok = "k" + i%keys, the
	// order key of the ordered scenario's route.
	keys int

	sent    atomic.Int64
	started atomic.Int64 // unix ns of the first XADD
}

// Run sends every message or returns ctx's error.
func (p *producer) Run(ctx context.Context) error {
	if p.batch <= 0 {
		p.batch = 256
	}
	start := time.Now()
	p.started.Store(start.UnixNano())
	if p.rate > 0 {
		return p.openLoop(ctx, start)
	}
	for seq := p.from; seq < p.total; {
		n := min(p.batch, p.total-seq)
		if err := p.send(ctx, seq, n, func(int) int64 { return time.Now().UnixNano() }); err != nil {
			return err
		}
		seq += n
	}
	return nil
}

func (p *producer) openLoop(ctx context.Context, start time.Time) error {
	interval := float64(time.Second) / p.rate
	due := func(i int) int64 { return start.UnixNano() + int64(float64(i)*interval) }
	timer := time.NewTimer(0)
	defer timer.Stop()
	for seq := p.from; seq < p.total; {
		// Everything due by now goes out in one pipeline (capped), each
		// stamped with its own intended time.
		elapsed := time.Since(start)
		ready := min(int(float64(elapsed)/interval)+1, p.total)
		if ready > seq {
			n := min(ready-seq, 4*p.batch)
			if err := p.send(ctx, seq, n, due); err != nil {
				return err
			}
			seq += n
			continue
		}
		timer.Reset(max(time.Until(time.Unix(0, due(seq))), p.tick))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	return nil
}

// send XADDs messages first..first+n-1 in one pipeline.
func (p *producer) send(ctx context.Context, first, n int, stamp func(i int) int64) error {
	pipe := p.rdb.Pipeline()
	buf := make([]byte, 0, 128)
	for i := first; i < first+n; i++ {
		if p.realistic {
			buf = workload.AppendOrder(buf, int64(i), stamp(i))
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.stream, Values: []string{"payload", string(buf), "source", "bench"}})
			continue
		}
		route := i % max(p.routes, 1)
		buf = payload(buf, int64(i), stamp(i), route)
		values := []string{"payload", string(buf), "rk", "r" + strconv.Itoa(route)}
		if p.keys > 0 {
			values = append(values, "ok", "k"+strconv.Itoa(i%p.keys))
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.stream, Values: values})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("xadd pipeline at seq %d: %w", first, err)
	}
	p.sent.Add(int64(n))
	return nil
}
