package router

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msgroute/gateway/internal/backoff"
	"github.com/msgroute/gateway/rules"
)

// orderedStream dispatches the entries of one ordered stream during one
// ownership session. Each matched route of an entry is a task. A task of a
// route with order_key waits in its key's queue (one per route and key):
// it starts when the task before it reached a final outcome, and that
// outcome is in Redis (the entry acked, or the route recorded as settled)
// before the next one starts, so a new owner repeats at most a key's
// message in flight. Other tasks start at once. A task retries in process,
// with capped jittered backoff, until its route's outcome is final
// (delivered or dead-lettered); each failed try counts as a delivery, so
// max_deliveries still dead-letters a poison message and its key moves on.
// An entry is acked when all its routes are final. When the session ends
// (shutdown, ownership lost or handed over) tasks stop after their current
// attempt and their entries stay pending for the next owner.
type orderedStream struct {
	r      *Router
	stream string
	own    Ownership
	end    context.CancelFunc // ends the session
	wg     sync.WaitGroup     // entries in flight

	mu   sync.Mutex
	keys map[keyID][]*orderedTask // per key: the running task, then those waiting
}

type keyID struct{ route, key string }

// orderedEntry is one entry in flight and its routes not yet final.
type orderedEntry struct {
	j         *job
	fanOut    bool
	left      atomic.Int32 // tasks not finished
	abandoned atomic.Bool  // a task stopped without a final outcome
}

type orderedTask struct {
	oe      *orderedEntry
	m       *rules.Match // nil: the entry has no route (no match, too big, deleted)
	ordered bool
	key     keyID
}

func newOrderedStream(r *Router, stream string, own Ownership, end context.CancelFunc) *orderedStream {
	return &orderedStream{r: r, stream: stream, own: own, end: end, keys: make(map[keyID][]*orderedTask)}
}

// wait returns when every entry of the session is finished.
func (o *orderedStream) wait() { o.wg.Wait() }

// start matches entries (in stream order) and starts or queues their
// tasks. Each entry holds the in-flight slot its reader took until it is
// finished.
func (o *orderedStream) start(stop, workCtx context.Context, entries []Entry) {
	if len(entries) == 0 {
		return
	}
	r := o.r
	r.mc.consumed(o.stream).Add(float64(len(entries)))
	for i := range entries {
		j := r.prepare(&entries[i])
		oe := &orderedEntry{j: j, fanOut: len(j.matches) > 1}
		r.deps.Metrics.Inflight.Inc()
		r.work.Add(1)
		o.wg.Add(1)
		if j.e.Fields == nil || j.tooBig || len(j.matches) == 0 {
			oe.left.Store(1)
			o.launch(stop, workCtx, &orderedTask{oe: oe})
			continue
		}
		var settled []string
		if oe.fanOut && j.e.Redelivered {
			settled = r.settledRoutes(workCtx, &j.e)
		}
		var tasks []*orderedTask
		for k := range j.matches {
			m := &j.matches[k]
			r.mc.routeMatches(m.Route.Name).Inc()
			if contains(settled, m.Route.Name) {
				continue
			}
			t := &orderedTask{oe: oe, m: m}
			if m.Route.OrderKey != "" && m.Err == nil {
				t.ordered, t.key = true, keyID{m.Route.Name, m.Key}
			}
			tasks = append(tasks, t)
		}
		if len(tasks) == 0 { // every route settled on an earlier delivery
			o.finishEntry(workCtx, oe)
			continue
		}
		oe.left.Store(int32(len(tasks)))
		for _, t := range tasks {
			if !t.ordered {
				o.launch(stop, workCtx, t)
				continue
			}
			o.mu.Lock()
			q, busy := o.keys[t.key]
			o.keys[t.key] = append(q, t)
			o.mu.Unlock()
			if !busy {
				o.launch(stop, workCtx, t)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (o *orderedStream) launch(stop, workCtx context.Context, t *orderedTask) {
	go o.run(stop, workCtx, t)
}

// run works a task to its end, records it, and starts the next task of its
// key.
func (o *orderedStream) run(stop, workCtx context.Context, t *orderedTask) {
	final := o.untilFinal(stop, workCtx, t)
	oe := t.oe
	recorded := final
	if !final {
		oe.abandoned.Store(true)
	}
	if oe.left.Add(-1) == 0 {
		recorded = o.finishEntry(workCtx, oe) && final
	} else if final && oe.fanOut {
		// Other routes are still going: remember this one, so a new owner
		// does not send it again.
		if err := o.r.deps.Settler.RememberSettled(workCtx, o.stream, oe.j.e.ID, []string{t.m.Route.Name}, settledTTL); err != nil {
			o.r.deps.Metrics.Errors.WithLabelValues("settled_write").Inc()
			recorded = false
		}
	}
	if !t.ordered {
		return
	}
	if !recorded {
		// The key cannot go on before this outcome is in Redis: end the
		// session; the next one re-reads the pending entries in ID order.
		o.end()
	}
	o.mu.Lock()
	q := o.keys[t.key][1:]
	if len(q) == 0 {
		delete(o.keys, t.key)
	} else {
		o.keys[t.key] = q
	}
	o.mu.Unlock()
	if len(q) > 0 {
		o.launch(stop, workCtx, q[0])
	}
}

// untilFinal tries the task until its outcome is final, or until the
// session ends (false: the entry stays pending).
func (o *orderedStream) untilFinal(stop, workCtx context.Context, t *orderedTask) bool {
	r := o.r
	parent := t.oe.j
	if t.m == nil {
		return o.retry(stop, func() bool { return r.process(workCtx, parent).ack })
	}
	// A private job per task: routes of one entry run concurrently and
	// each keeps its own delivery count and request scratch.
	tj := newJob(&parent.e)
	defer freeJob(tj)
	tj.msg, tj.set = parent.msg, parent.set
	tj.sems = tj.semBuf[:0]
	if t.m.Err == nil {
		tj.sems = append(tj.sems, r.svc.sem(t.m.Route.Service))
	}
	m := t.m
	return o.retry(stop, func() bool {
		var out outcome
		if m.Err != nil {
			reason := reasonBadMessage
			if errors.Is(m.Err, rules.ErrSchema) {
				reason = reasonSchema
			}
			out = r.deadLetter(workCtx, &tj.e, tj.msg, m.Route, dlqInfo{reason: reason, route: m.Route.Name, err: m.Err.Error()})
		} else {
			out, _ = r.deliver(workCtx, tj, m)
		}
		switch out {
		case delivered, deadLetter:
			return true
		case transient:
			tj.e.Deliveries++
			if err := o.own.Lease.SetDeliveries(workCtx, tj.e.ID, tj.e.Deliveries); err != nil {
				r.deps.Metrics.Errors.WithLabelValues("xclaim_count").Inc()
			}
		}
		return false
	})
}

// retry calls try until it reports a final outcome, waiting with capped,
// jittered backoff between tries; false when stop ends first.
func (o *orderedStream) retry(stop context.Context, try func() bool) bool {
	b := &backoff.Backoff{Min: 50 * time.Millisecond, Max: 5 * time.Second}
	for stop.Err() == nil {
		if try() {
			return true
		}
		if !b.Wait(stop) {
			return false
		}
	}
	return false
}

// finishEntry acks an entry whose routes are all final (synchronously and
// fenced: the next message of a key starts only after it), and frees what
// the entry held. It reports whether the entry's state is in Redis.
func (o *orderedStream) finishEntry(workCtx context.Context, oe *orderedEntry) bool {
	r := o.r
	defer o.wg.Done()
	defer freeJob(oe.j)
	defer r.work.Done()
	defer r.release(1)
	defer r.deps.Metrics.Inflight.Dec()
	if oe.abandoned.Load() {
		return false
	}
	b := &backoff.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	for attempt := 0; ; attempt++ {
		err := o.own.Lease.Ack(workCtx, []string{oe.j.e.ID})
		if err == nil {
			r.mc.acked(o.stream).Inc()
			return true
		}
		r.deps.Metrics.Errors.WithLabelValues("xack").Inc()
		if attempt == 0 {
			r.log.Warn("ack failed; retrying", "msg_id", oe.j.e.ID, "stream", o.stream, "err", err)
		}
		if o.own.Lease.Context().Err() != nil || attempt >= 10 || !b.Wait(workCtx) {
			return false
		}
	}
}
