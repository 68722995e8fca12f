package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Delay is the wait after the n-th consecutive failure (n >= 1):
// lo * 2^(n-1) capped at hi, then jittered to between half and all of it so
// that replicas do not retry in lockstep.
func Delay(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep waits d or until ctx is done; false means ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Backoff counts consecutive failures of one loop. The zero value needs
// Min and Max set; it is not safe for concurrent use (one per loop).
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Wait records a failure and sleeps Delay(failures, Min, Max) unless ctx
// ends first; it reports whether ctx is still alive.
func (b *Backoff) Wait(ctx context.Context) bool {
	b.n++
	return Sleep(ctx, Delay(b.n, b.Min, b.Max))
}

// Reset forgets the failures after a success.
func (b *Backoff) Reset() { b.n = 0 }
