package router

import (
	"context"
	"errors"
	"time"

	"github.com/msgroute/gateway/internal/backoff"
)

// Owner gives this replica the exclusive right to read an ordered stream
// (a stream a route with order_key reads) across replicas.
type Owner interface {
	// Own waits until this replica owns stream; it fails only when ctx
	// ends first.
	Own(ctx context.Context, stream string) (Ownership, error)
}

// Ownership is one grant of an ordered stream, as given by an Owner.
type Ownership struct {
	Lease Lease
	// ReadBlock caps how long one read of the stream may block, so that a
	// read started while owned ends before another replica can own the
	// stream; 0: Config.Block.
	ReadBlock time.Duration
}

// Lease is the held right to one ordered stream. Its writes are fenced:
// they fail once another replica may own the stream.
type Lease interface {
	// Context ends when the ownership ends or is about to: the lease was
	// not renewed in time, or the stream is handed to another replica. The
	// router then stops reading and dispatching the stream and Releases it.
	Context() context.Context
	// Ack acknowledges entries of the stream only while it is owned.
	Ack(ctx context.Context, ids []string) error
	// SetDeliveries records an entry's delivery counter (in-process
	// retries count), only while owned.
	SetDeliveries(ctx context.Context, id string, n int64) error
	// Release gives the stream up once nothing of it is being read or sent.
	Release()
}

// PendingMover moves other consumers' pending entries of stream, idle for
// minIdle, to this consumer in ID order (keeping their delivery counters)
// and returns how many it moved.
type PendingMover interface {
	TakeOver(ctx context.Context, stream string, minIdle time.Duration) (int, error)
}

// ClaimIdle is the effective Config.ClaimIdle (after defaults), which
// the ownership leases of ordered streams derive their TTL from.
func (r *Router) ClaimIdle() time.Duration { return r.cfg.ClaimIdle }

// own waits until this replica owns stream. Without Deps.Owner the router
// is the stream's only reader (one replica).
func (r *Router) own(ctx context.Context, stream string) (Ownership, error) {
	if r.deps.Owner != nil {
		return r.deps.Owner.Own(ctx, stream)
	}
	return Ownership{Lease: soleLease{r: r, stream: stream}}, nil
}

// soleLease is the ownership of a router that is its streams' only reader:
// never lost, its writes are the Settler's.
type soleLease struct {
	r      *Router
	stream string
}

func (l soleLease) Context() context.Context { return context.Background() }

func (l soleLease) Ack(ctx context.Context, ids []string) error {
	return l.r.deps.Settler.AckMany(ctx, map[string][]string{l.stream: ids})
}

func (l soleLease) SetDeliveries(ctx context.Context, id string, n int64) error {
	return l.r.deps.Settler.Park(ctx, l.stream, id, n, l.r.cfg.ClaimIdle, l.r.cfg.ClaimIdle)
}

func (l soleLease) Release() {}

// orderedLoop reads an ordered stream while ctx lives and this replica
// owns it; a non-owner waits for ownership without reading anything of the
// stream (no XREADGROUP, no XAUTOCLAIM).
func (r *Router) orderedLoop(ctx, workCtx context.Context, stream string) {
	for ctx.Err() == nil {
		own, err := r.own(ctx, stream)
		if err != nil {
			return
		}
		r.log.Info("reading ordered stream", "stream", stream)
		r.mc.owned(stream).Set(1)
		for ctx.Err() == nil && own.Lease.Context().Err() == nil {
			r.orderedSession(ctx, workCtx, stream, own)
		}
		r.mc.owned(stream).Set(0)
		own.Lease.Release()
		r.log.Info("stopped reading ordered stream", "stream", stream, "handed_over", ctx.Err() == nil)
	}
}

// orderedSession takes over the stream's pending entries of other
// consumers (the previous owner's), works through this consumer's pending
// entries from ID 0 in ID order, then reads new ones, until ctx or the
// ownership ends or stray pending entries of another consumer turn up (a
// replica that read the stream unordered before a reload): then it stops
// reading, waits for its messages in flight and returns, and the next
// session picks everything up again in ID order.
func (r *Router) orderedSession(ctx, workCtx context.Context, stream string, own Ownership) {
	stop, cancel := context.WithCancel(ctx)
	defer context.AfterFunc(own.Lease.Context(), cancel)()
	o := newOrderedStream(r, stream, own, cancel)
	defer func() {
		cancel() // messages queued behind a key are not started any more
		o.wait()
	}()
	if !r.takeOver(stop, stream, 0) {
		return
	}
	go r.watchStrays(stop, cancel, stream)
	block := r.cfg.Block
	if own.ReadBlock > 0 {
		block = min(block, own.ReadBlock)
	}
	b := &backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	cursor := "0"
	// Slots are taken before the read (not per chunk after it, as readLoop
	// does): every entry read is started or queued behind its key at once,
	// and none needs a lease renewal while it waits, since no other
	// replica reads the stream.
	want := max(1, min(r.cfg.Batch, r.cfg.MaxInflight/4))
	for stop.Err() == nil {
		n := r.slots.take(stop, want, r.cfg.Batch)
		if n == 0 {
			return
		}
		// workCtx, as in readLoop; block is short enough that the read
		// ends while the lease is still valid.
		entries, err := r.deps.Source.Read(workCtx, stream, cursor, n, block)
		if err != nil {
			r.release(n)
			if stop.Err() != nil {
				return
			}
			r.readFailed(stop, stream, "xreadgroup", err)
			if !b.Wait(stop) {
				return
			}
			continue
		}
		b.Reset()
		if cursor != ">" {
			if len(entries) < n {
				cursor = ">"
			} else {
				cursor = entries[len(entries)-1].ID
			}
		}
		r.release(n - len(entries))
		o.start(stop, workCtx, entries)
	}
}

// takeOver moves other consumers' pending entries idle for minIdle to this
// one, retrying until it works; false when ctx ends first.
func (r *Router) takeOver(ctx context.Context, stream string, minIdle time.Duration) bool {
	if r.deps.TakeOver == nil {
		return true
	}
	b := &backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		n, err := r.deps.TakeOver.TakeOver(ctx, stream, minIdle)
		if err == nil {
			if n > 0 {
				r.log.Info("took over pending entries", "stream", stream, "entries", n)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.readFailed(ctx, stream, "xclaim_takeover", err)
		if errors.Is(err, context.Canceled) || !b.Wait(ctx) {
			return false
		}
	}
}

// watchStrays ends the session when another consumer holds entries of the
// stream idle for ClaimIdle (they are moved to this consumer first).
func (r *Router) watchStrays(ctx context.Context, endSession context.CancelFunc, stream string) {
	if r.deps.TakeOver == nil {
		return
	}
	t := time.NewTicker(r.cfg.ClaimInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := r.deps.TakeOver.TakeOver(ctx, stream, r.cfg.ClaimIdle)
		if err != nil {
			continue
		}
		if n > 0 {
			r.log.Info("stray pending entries taken over; re-reading in ID order", "stream", stream, "entries", n)
			endSession()
			return
		}
	}
}
