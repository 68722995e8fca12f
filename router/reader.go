package router

import (
	"context"
	"errors"
	"time"

	"github.com/msgroute/gateway/internal/backoff"
)

// readLoop reads new entries of stream while ctx lives. It first re-reads
// this consumer's own pending entries (left by a previous run of the same
// replica), then new ones. Reads are full batches, matched and leased by
// this loop, then handed on by a second goroutine (handLoop) as in-flight
// slots free up, while this one already reads and matches the next batch.
// So a backlog keeps every slot busy: a reader that read, matched and
// handed on in turn left slots idle for a Redis round trip and a batch's
// matching each time (as a reader waiting for a quarter of the window to
// free before reading once did). A full pipeline still stops reading: at
// most three batches per stream wait for slots (one being handed out, one
// queued, one waiting to be queued), all leased.
func (r *Router) readLoop(ctx, workCtx context.Context, stream string) {
	batches := make(chan preparedBatch, 1)
	handed := make(chan struct{})
	go func() {
		defer close(handed)
		r.handLoop(ctx, workCtx, batches)
	}()
	defer func() {
		close(batches)
		<-handed
	}()
	b := &backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	cursor := "0" // own backlog first, paged by ID; then ">" for new entries
	for ctx.Err() == nil {
		// The read runs under workCtx, not ctx: a read cancelled on the
		// client side may already have moved entries into this consumer's
		// pending list, and they would sit there unprocessed after a
		// graceful stop. Shutdown waits at most Block for it instead.
		began := time.Now()
		entries, err := r.deps.Source.Read(workCtx, stream, cursor, r.cfg.Batch, r.cfg.Block)
		if len(entries) > 0 {
			observeSince(r.stages.read, began)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.readFailed(ctx, stream, "xreadgroup", err)
			if !b.Wait(ctx) {
				return
			}
			continue
		}
		b.Reset()
		if cursor != ">" {
			if len(entries) < r.cfg.Batch {
				cursor = ">" // backlog done
			} else {
				cursor = entries[len(entries)-1].ID
			}
		}
		if len(entries) > 0 {
			batches <- r.prepareBatch(entries)
		}
	}
}

// handLoop hands on the batches readLoop prepared, in order, until the
// channel is closed; once ctx ends, what is left is dropped (it stays
// pending in Redis).
func (r *Router) handLoop(ctx, workCtx context.Context, batches <-chan preparedBatch) {
	for pb := range batches {
		r.handOut(ctx, workCtx, pb)
	}
}

// claimLoop takes over entries idle longer than ClaimIdle: those of dead
// replicas, and this replica's parked ones whose wait is over.
func (r *Router) claimLoop(ctx, workCtx context.Context, stream string) {
	t := time.NewTicker(r.cfg.ClaimInterval)
	defer t.Stop()
	b := &backoff.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cursor := "0-0"
		for ctx.Err() == nil {
			// workCtx for the same reason as the read: a claim cut short
			// may already have taken the entries over.
			entries, next, err := r.deps.Source.Claim(workCtx, stream, cursor, r.cfg.ClaimIdle, r.cfg.Batch)
			if err != nil {
				if ctx.Err() == nil {
					r.readFailed(ctx, stream, "xautoclaim", err)
					b.Wait(ctx)
				}
				break
			}
			b.Reset()
			r.start(ctx, workCtx, entries)
			if next == "0-0" || next == "" {
				break
			}
			cursor = next
		}
	}
}

func (r *Router) readFailed(ctx context.Context, stream, op string, err error) {
	r.deps.Metrics.Errors.WithLabelValues(op).Inc()
	r.log.Warn("read failed; backing off", "stream", stream, "op", op, "err", err)
	if errors.Is(err, ErrNoGroup) {
		// Redis lost the group (restart without persistence): re-create it.
		if err := r.deps.Source.EnsureGroup(ctx, stream); err != nil {
			r.log.Warn("re-create consumer group failed", "stream", stream, "err", err)
		}
	}
}

// preparedBatch is a batch of entries matched and leased, waiting for
// in-flight slots.
type preparedBatch struct {
	jobs     []*job
	prepared time.Time // when matching ended
}

// start matches and leases entries, then hands them on (handOut).
func (r *Router) start(ctx, workCtx context.Context, entries []Entry) {
	if len(entries) > 0 {
		r.handOut(ctx, workCtx, r.prepareBatch(entries))
	}
}

// prepareBatch matches each entry and leases it: an entry waiting for a
// slot is as much this replica's as one in flight, so a long wait never
// lets another replica (or this one's XAUTOCLAIM) claim it.
func (r *Router) prepareBatch(entries []Entry) preparedBatch {
	// One clock reading and one consumed count per batch (all entries are
	// of one stream); a lease that starts a little early is renewed early,
	// which is harmless.
	now := time.Now()
	r.mc.consumed(entries[0].Stream).Add(float64(len(entries)))
	jobs := make([]*job, len(entries))
	for i := range entries {
		jobs[i] = r.prepare(&entries[i])
	}
	r.live.addAll(jobs, now)
	prepared := time.Now()
	r.stages.match.Observe(prepared.Sub(now).Seconds() / float64(len(entries)))
	return preparedBatch{jobs: jobs, prepared: prepared}
}

// handOut hands a prepared batch's jobs to workers as in-flight slots free
// up, each once every service it goes to has room in its queue (so a
// saturated service stops this stream, not the others). Each entry holds
// one slot until it is settled. If ctx ends while waiting, the remaining
// entries stay pending in Redis.
func (r *Router) handOut(ctx, workCtx context.Context, pb preparedBatch) {
	jobs := pb.jobs
	for i := 0; i < len(jobs); {
		n := r.slots.take(ctx, 1, len(jobs)-i)
		if n == 0 {
			r.drop(jobs[i:])
			return
		}
		for end := i + n; i < end; i++ {
			j := jobs[i]
			if !admit(ctx, j.sems) {
				r.release(end - i)
				r.drop(jobs[i:])
				return
			}
			if j.sampled = r.stages.sample(); j.sampled {
				j.stamp = observeSince(r.stages.waitSlot, pb.prepared)
			}
			r.deps.Metrics.Inflight.Inc()
			r.work.Add(1)
			r.workers.hand(workCtx, j)
		}
	}
}

// drop gives up jobs that were read but not handed on (shutdown): their
// entries stay pending in Redis and are redelivered.
func (r *Router) drop(jobs []*job) {
	for _, j := range jobs {
		r.live.remove(j)
		freeJob(j)
	}
}

// finish settles j and frees what it held: the message's part of the
// pipeline ends here.
func (r *Router) finish(ctx context.Context, j *job) {
	defer freeJob(j) // last: after everything below is done with j
	defer r.work.Done()
	defer r.release(1)
	defer r.deps.Metrics.Inflight.Dec()
	defer r.live.remove(j)
	if !j.sampled {
		r.settle(ctx, &j.e, r.process(ctx, j))
		return
	}
	t := observeSince(r.stages.handoff, j.stamp)
	v := r.process(ctx, j)
	t = observeSince(r.stages.dispatch, t)
	r.settle(ctx, &j.e, v)
	observeSince(r.stages.settle, t)
}

func (r *Router) release(n int) { r.slots.give(n) }

// renewLoop keeps the lease on entries in flight for long, until stop is
// closed (after the drain): re-claiming them resets their idle time, so
// other replicas' XAUTOCLAIM skips them.
func (r *Router) renewLoop(ctx context.Context, stop <-chan struct{}) {
	every := r.cfg.ClaimIdle / 3
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			r.renewOld(ctx, every)
		}
	}
}

func (r *Router) renewOld(ctx context.Context, age time.Duration) {
	for stream, ids := range r.live.olderThan(time.Now().Add(-age)) {
		if err := r.deps.Settler.Renew(ctx, stream, ids); err != nil {
			r.deps.Metrics.Errors.WithLabelValues("xclaim_renew").Inc()
			r.log.Warn("lease renewal failed", "stream", stream, "err", err)
		}
	}
}
