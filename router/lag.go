package router

import (
	"context"
	"time"
)

// LagReader reports a stream's consumer-group lag and pending count.
type LagReader interface {
	Lag(ctx context.Context, stream string) (lag, pending int64, err error)
}

// WatchLag updates gateway_consumer_lag and gateway_pending_messages every
// interval until ctx is done.
func (r *Router) WatchLag(ctx context.Context, lr LagReader, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, s := range r.cfg.Streams {
			lag, pending, err := lr.Lag(ctx, s)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				r.deps.Metrics.Errors.WithLabelValues("xinfo_groups").Inc()
				continue
			}
			if lag >= 0 {
				r.deps.Metrics.ConsumerLag.WithLabelValues(s).Set(float64(lag))
			}
			r.deps.Metrics.Pending.WithLabelValues(s).Set(float64(pending))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
