// Command demoproducer publishes realistic order and payment events to
// Redis Streams for the demo: order.created (some big EU orders), order
// shipped, payments, refunds, and a few messages no rule matches.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("redis", "127.0.0.1:6379", "Redis address")
	rate := flag.Int("rate", 200, "messages per second")
	dur := flag.Duration("duration", 0, "how long to publish (0 = until interrupted)")
	count := flag.Int("count", 0, "stop after this many messages (0 = no limit)")
	flag.Parse()
	if *rate <= 0 {
		fmt.Fprintln(os.Stderr, "demoproducer: -rate must be positive")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}
	rdb := redis.NewClient(&redis.Options{Addr: *addr})
	defer rdb.Close()
	n, err := produce(ctx, rdb, *rate, *count)
	fmt.Printf("demoproducer: published %d messages\n", n)
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "demoproducer:", err)
		os.Exit(1)
	}
}

// produce publishes at rate per second in batches of one tick (10 ms).
func produce(ctx context.Context, rdb *redis.Client, rate, limit int) (int, error) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	sent := 0
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return sent, ctx.Err()
		case <-t.C:
		}
		carry += float64(rate) / 100
		pipe := rdb.Pipeline()
		for ; carry >= 1; carry-- {
			if limit > 0 && sent >= limit {
				_, err := pipe.Exec(ctx)
				return sent, err
			}
			stream, fields := event(sent)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields})
			sent++
		}
		if _, err := pipe.Exec(ctx); err != nil && len(pipe.Cmds()) > 0 {
			return sent, err
		}
	}
}

var regions = []string{"eu", "us", "apac"}

// event returns the n-th demo event: mostly orders, some payments, a few
// that no rule routes (they land in the DLQ, reason no_route).
func event(n int) (string, []string) {
	id := fmt.Sprintf("%06d", n)
	switch r := rand.IntN(100); {
	case r < 55:
		total := rand.IntN(2000)
		return "orders", []string{"type", "order.created", "tenant", "acme",
			"payload", fmt.Sprintf(`{"id":"o-%s","total":%d,"region":%q,"items":[{"sku":"sku-%d","qty":%d}]}`,
				id, total, regions[rand.IntN(len(regions))], rand.IntN(50), 1+rand.IntN(3))}
	case r < 70:
		return "orders", []string{"type", "order.shipped", "payload", fmt.Sprintf(`{"id":"o-%s","carrier":"dhl"}`, id)}
	case r < 90:
		return "payments", []string{"type", "payment.captured", "payload", fmt.Sprintf(`{"id":"p-%s","amount":%d}`, id, rand.IntN(500))}
	case r < 97:
		return "payments", []string{"type", "payment.refund", "reply_to", "replies:demo", "correlation_id", "refund-" + id,
			"payload", fmt.Sprintf(`{"id":"p-%s","amount":%d}`, id, rand.IntN(100))}
	default:
		return "events", []string{"type", "user.signup", "payload", fmt.Sprintf(`{"user":"u-%s"}`, id)}
	}
}
