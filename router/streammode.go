package router

import (
	"context"
	"sync"
	"time"

	"github.com/msgroute/gateway/rules"
)

// modePoll is how often a stream's supervisor looks for a rule set that
// changes the stream between ordered and unordered reading.
const modePoll = 200 * time.Millisecond

// streamLoop reads stream until ctx ends, in the mode the active rules
// ask for: ordered (one reader across replicas, per-key order) when a route
// with order_key reads it, else unordered (every replica reads and claims).
// A reload that changes the mode ends the current one first: its readers
// stop and its messages in flight finish (or stay pending), and only then
// does the other mode start, re-reading this consumer's pending entries
// from ID 0. So a switch loses nothing and, going to ordered, no message
// read before the switch is still being sent when ordered sending starts.
func (r *Router) streamLoop(ctx, workCtx context.Context, stream string) {
	for ctx.Err() == nil {
		set := r.deps.Rules()
		ordered := isOrdered(set, stream)
		mctx, cancel := context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			r.watchMode(mctx, cancel, set, stream, ordered)
		}()
		if ordered {
			r.orderedLoop(mctx, workCtx, stream)
		} else {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); r.readLoop(mctx, workCtx, stream) }()
			go func() { defer wg.Done(); r.claimLoop(mctx, workCtx, stream) }()
			wg.Wait()
			if ctx.Err() == nil {
				r.waitStreamIdle(ctx, stream)
			}
		}
		cancel()
		<-watched
		if ctx.Err() == nil {
			r.log.Info("stream reading mode changed", "stream", stream, "ordered", !ordered)
		}
	}
}

func isOrdered(set *rules.Set, stream string) bool {
	return len(set.OrderedStreams([]string{stream})) > 0
}

// watchMode cancels the mode when a new rule set flips the stream's
// orderedness.
func (r *Router) watchMode(ctx context.Context, cancel context.CancelFunc, set *rules.Set, stream string, ordered bool) {
	t := time.NewTicker(modePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := r.deps.Rules(); s != set {
			set = s
			if isOrdered(s, stream) != ordered {
				cancel()
				return
			}
		}
	}
}

// waitStreamIdle waits until no unordered message of stream is in flight.
func (r *Router) waitStreamIdle(ctx context.Context, stream string) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for r.live.count(stream) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
