package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/msgroute/gateway/internal/streams"
)

// cmdDLQ runs `gateway dlq replay`.
func cmdDLQ(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "replay" {
		fmt.Fprintln(stderr, "usage: gateway dlq replay [--config FILE] [--to STREAM] [--limit N] [--rate PER_SEC] [--reason R]")
		return exitError{2}
	}
	fs := flag.NewFlagSet("dlq replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("config", "configs/gateway.yaml", "config file")
	to := fs.String("to", "", "stream to replay onto (default: each entry's original stream)")
	limit := fs.Int("limit", 0, "replay at most N entries (0 = all)")
	rate := fs.Float64("rate", 100, "entries per second (0 = unlimited)")
	reason := fs.String("reason", "", "only entries with this dlq_reason")
	if err := fs.Parse(args[1:]); err != nil {
		return exitError{2}
	}
	if *limit < 0 || *rate < 0 {
		fmt.Fprintln(stderr, "gateway dlq replay: --limit and --rate must not be negative")
		return exitError{2}
	}
	o, err := openOneShot(*file, stderr)
	if err != nil {
		return err
	}
	defer o.close()
	res, err := streams.Replay(o.ctx, o.rdb, streams.ReplayConfig{
		DLQ: o.cfg.Consumer.DLQStream, To: *to, Limit: *limit, Rate: *rate, Reason: *reason,
	})
	fmt.Fprintf(stdout, "replayed %d, skipped %d, failed %d\n", res.Replayed, res.Skipped, res.Failed)
	if err != nil {
		return err
	}
	if res.Failed > 0 {
		return exitError{1}
	}
	return nil
}
