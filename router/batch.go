package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/msgroute/gateway/balancer"
	"github.com/msgroute/gateway/rules"
)

// BatchSender performs one batch request: body (a JSON document) goes to
// addr with Content-Type application/json, and the instance's status and
// answer body come back. timeout 0 means the sender's default. A non-nil
// error is a transport failure (connection refused, reset, timeout). It
// must be safe for concurrent use; body is not retained after the call.
type BatchSender interface {
	DoBatch(addr, method, path string, timeout time.Duration, body []byte) (status int, respBody []byte, err error)
}

// Why a batched entry did not get a final answer.
var (
	errBatchRetry   = errors.New("batch answer: RETRY")
	errBatchDrop    = errors.New("batch answer: DROP")
	errBatchMissing = errors.New("batch answer has no status for this entry")
	errStopped      = errors.New("gateway stopping")
)

// batcher groups the attempts of routes with a batch into batch requests.
// A worker delivering over such a route submits its entry's attempt and
// waits; the route's accumulator sends the batch once it holds MaxMessages
// entries (on the goroutine of the worker that filled it) or MaxWait after
// its first entry (on a timer's goroutine), and hands every waiting worker
// its entry's result. Each entry then goes on through deliver's usual
// retries, DLQ and ack: only the HTTP request is shared.
//
// A batch request takes one place of the service's concurrency cap, like a
// single request: a batch of 100 is one request in flight.
//
// Safe for concurrent use.
type batcher struct {
	r    *Router
	send BatchSender
	// accs maps a *rules.Route to its *accumulator. Keyed by the route of
	// one rule set, so a reload that changes a route (service, path,
	// batch size) never mixes old and new entries in one request.
	accs      sync.Map
	lastSweep atomic.Int64  // unix ns
	bufs      sync.Pool     // *[]byte request bodies
	sweepMu   sync.Mutex    // one sweep at a time
	sweepGap  time.Duration // between sweeps of idle accumulators
}

func newBatcher(r *Router, send BatchSender) *batcher {
	b := &batcher{r: r, send: send, sweepGap: time.Minute}
	b.bufs.New = func() any { buf := make([]byte, 0, 16<<10); return &buf }
	b.lastSweep.Store(time.Now().UnixNano())
	return b
}

// accumulator collects one route's entries into the next batch.
type accumulator struct {
	b     *batcher
	route *rules.Route
	sem   *serviceSem

	mu      sync.Mutex
	cur     *pendingBatch // nil: no batch open
	touched bool          // an entry came since the last sweep
}

// pendingBatch is one batch: open while cur of its accumulator, then sent
// once. items is not appended to after it is detached from cur; done is
// closed once every item's result is set.
type pendingBatch struct {
	acc   *accumulator
	ctx   context.Context // the first submitter's (the workers' context)
	items []batchItem
	// ids holds the entry IDs once entries of a second stream join:
	// entryId names an entry in the answer, and two streams may hold the
	// same ID. nil while every entry is of stream0.
	ids     map[string]struct{}
	stream0 string
	timer   *time.Timer
	done    chan struct{}
	ep      *balancer.Endpoint // instance the batch went to; nil if none
}

// batchItem is one entry's attempt in a batch.
type batchItem struct {
	msg     *rules.Message
	attempt int
	avoid   *balancer.Endpoint
	// json: matching found msg's payload to be JSON (rules.Match.JSON),
	// so the body embeds it without validating it again.
	json bool
	res  attemptResult
}

// submit adds an attempt of msg over m's route (which has a batch) and
// waits for its result and the instance it went to. stopped reports that
// the gateway is stopping and the attempt was not made.
func (b *batcher) submit(ctx context.Context, m *rules.Match, msg *rules.Message, attempt int, avoid *balancer.Endpoint) (res attemptResult, ep *balancer.Endpoint, stopped bool) {
	a := b.accumulator(m.Route)
	p, i := a.add(ctx, batchItem{msg: msg, attempt: attempt, avoid: avoid, json: m.JSON})
	<-p.done
	res = p.items[i].res
	return res, p.ep, errors.Is(res.err, errStopped)
}

// carry makes room in the admission queue of route's service for its
// batches (serviceSem.carry), once per route and rule set: before the
// route's accumulator exists, so before its first message is admitted.
func (b *batcher) carry(route *rules.Route) {
	if _, ok := b.accs.Load(route); !ok {
		b.accumulator(route)
	}
}

func (b *batcher) accumulator(route *rules.Route) *accumulator {
	if v, ok := b.accs.Load(route); ok {
		return v.(*accumulator)
	}
	sem := b.r.svc.sem(route.Service)
	sem.carry(route.Batch.MaxMessages)
	v, _ := b.accs.LoadOrStore(route, &accumulator{b: b, route: route, sem: sem})
	return v.(*accumulator)
}

// sweep forgets accumulators without an open batch that took no entry
// since the previous sweep (routes of replaced rule sets, idle routes), at
// most once per sweepGap. A submitter still holding a forgotten one is
// served as usual; the next one creates a fresh accumulator.
func (b *batcher) sweep(now time.Time) {
	if now.UnixNano()-b.lastSweep.Load() < int64(b.sweepGap) || !b.sweepMu.TryLock() {
		return
	}
	defer b.sweepMu.Unlock()
	b.lastSweep.Store(now.UnixNano())
	b.accs.Range(func(k, v any) bool {
		a := v.(*accumulator)
		a.mu.Lock()
		idle := a.cur == nil && !a.touched
		a.touched = false
		a.mu.Unlock()
		if idle {
			b.accs.CompareAndDelete(k, a)
		}
		return true
	})
}

// add puts it into the open batch (opening one if needed) and returns the
// batch and its index there. When it fills the batch, the batch is sent on
// the caller's goroutine before add returns.
func (a *accumulator) add(ctx context.Context, it batchItem) (*pendingBatch, int) {
	spec := a.route.Batch
	a.mu.Lock()
	a.touched = true
	p := a.cur
	if p != nil && p.holds(it.msg) {
		// The same entry ID from another stream: send the open batch now
		// and start another, so every entryId of a request is unique.
		a.detach(p)
		go p.send()
		p = nil
	}
	if p == nil {
		p = &pendingBatch{acc: a, ctx: ctx, items: make([]batchItem, 0, spec.MaxMessages),
			stream0: it.msg.Stream, done: make(chan struct{})}
		a.cur = p
		if spec.MaxMessages > 1 {
			p.timer = time.AfterFunc(spec.MaxWait, func() { a.expire(p) })
		}
	}
	p.note(it.msg)
	i := len(p.items)
	p.items = append(p.items, it)
	full := len(p.items) >= spec.MaxMessages
	if full {
		a.detach(p)
	}
	a.mu.Unlock()
	if full {
		p.send()
	}
	return p, i
}

// detach closes p to new entries. Called with mu held.
func (a *accumulator) detach(p *pendingBatch) {
	a.cur = nil
	if p.timer != nil {
		p.timer.Stop()
	}
}

// expire sends p when max_wait after its first entry has passed and it is
// still open.
func (a *accumulator) expire(p *pendingBatch) {
	a.mu.Lock()
	open := a.cur == p
	if open {
		a.cur = nil
	}
	a.mu.Unlock()
	if open {
		p.send()
	}
}

// holds reports whether an entry with msg's ID but another stream is in p.
func (p *pendingBatch) holds(msg *rules.Message) bool {
	if p.ids == nil {
		if msg.Stream == p.stream0 {
			return false // one stream: IDs are unique
		}
		p.ids = make(map[string]struct{}, cap(p.items))
		for i := range p.items {
			p.ids[p.items[i].msg.ID] = struct{}{}
		}
	}
	_, ok := p.ids[msg.ID]
	return ok
}

// note records msg's ID once p tracks IDs.
func (p *pendingBatch) note(msg *rules.Message) {
	if p.ids != nil {
		p.ids[msg.ID] = struct{}{}
	}
}

// setAll gives every entry of p the same result.
func (p *pendingBatch) setAll(res attemptResult) {
	for i := range p.items {
		p.items[i].res = res
	}
}

// send makes p's request and sets each entry's result: it takes a place of
// the service's cap, picks an instance (avoiding one a retried entry just
// failed on), posts the batch, and reports one outcome per request to the
// balancer and one per entry to the metrics.
func (p *pendingBatch) send() {
	defer close(p.done)
	a := p.acc
	b, r, route := a.b, a.b.r, a.route
	svc := route.Service
	if !a.sem.acquire(p.ctx) {
		p.setAll(attemptResult{class: transient, err: errStopped})
		return
	}
	start := time.Now()
	b.sweep(start)
	ep, err := r.deps.Picker.PickAt(svc, route.Tags, p.avoid(), start)
	if err != nil {
		a.sem.release()
		p.setAll(attemptResult{class: unavailable, err: err})
		return
	}
	p.ep = ep
	buf := b.bufs.Get().(*[]byte)
	body := appendBatchBody((*buf)[:0], route.Name, p.items)
	status, answer, err := b.send.DoBatch(ep.Addr(), route.Method, route.Path, cmp.Or(route.Timeout, r.cfg.AttemptTimeout), body)
	if cap(body) <= maxKeptBatchBody {
		*buf = body[:0]
	}
	b.bufs.Put(buf)
	end := time.Now()
	elapsed := end.Sub(start)
	a.sem.release()

	bo := p.settle(status, answer, err)
	r.deps.Picker.DoneAt(ep, bo, elapsed, end)
	sm := r.mc.service(svc)
	sm.duration.Observe(elapsed.Seconds())
	for i := range p.items {
		sm.dispatched(p.items[i].res.class).Inc()
	}
}

// maxKeptBatchBody bounds a request buffer kept for reuse.
const maxKeptBatchBody = 1 << 20

// avoid is the instance to avoid: the one the first retried entry failed on.
func (p *pendingBatch) avoid() *balancer.Endpoint {
	for i := range p.items {
		if p.items[i].avoid != nil {
			return p.items[i].avoid
		}
	}
	return nil
}

// settle sets each entry's result from the answer and returns the
// balancer's view of the request. A transport error or a non-2xx status
// applies to every entry, classified like a single request's (408, 429,
// 5xx and transport errors transient, other statuses permanent). A 2xx
// answer decides per entry: SUCCESS delivered, DROP permanent, RETRY, an
// unknown status or no status at all transient. A 2xx answer that is not
// a statuses document makes every entry transient and counts as a failure
// of the instance (it did not do what it was asked).
func (p *pendingBatch) settle(status int, answer []byte, err error) balancer.Outcome {
	res := attemptResult{res: resultOf(status), err: err}
	switch {
	case err != nil:
		res.class = transient
		p.setAll(res)
		return balancer.Failure
	case status == 408 || status == 429 || status >= 500:
		res.class = transient
		p.setAll(res)
		return balancer.Failure
	case status < 200 || status >= 300:
		res.class = deadLetter
		p.setAll(res)
		return balancer.Success
	}
	statuses, perr := parseBatchAnswer(answer)
	if perr != nil {
		res.class, res.err = transient, perr
		p.setAll(res)
		return balancer.Failure
	}
	byID := p.statusOf(statuses)
	for i := range p.items {
		it := &p.items[i]
		it.res = res
		var st string
		ok := byID == nil
		if ok {
			st = strings.ToUpper(statuses[i].status)
		} else {
			st, ok = byID[it.msg.ID]
		}
		switch {
		case !ok:
			it.res.class, it.res.err = transient, errBatchMissing
		case st == statusSuccess:
			it.res.class = delivered
		case st == statusDrop:
			it.res.class, it.res.err = deadLetter, errBatchDrop
		case st == statusRetry:
			it.res.class, it.res.err = transient, errBatchRetry
		default:
			it.res.class, it.res.err = transient, fmt.Errorf("batch answer: unknown status %q (taken as RETRY)", st)
		}
	}
	return balancer.Success
}

// statusOf returns each answered entry's status (upper case) by entry ID,
// a later status of an ID replacing an earlier one; nil when statuses
// answer p's entries one each in p's order (as services usually write
// them), so that the i-th status is the i-th entry's. An entry ID names one
// entry of a batch (add), so the two readings agree.
func (p *pendingBatch) statusOf(statuses []entryStatus) map[string]string {
	inOrder := len(statuses) == len(p.items)
	for i := 0; inOrder && i < len(statuses); i++ {
		inOrder = statuses[i].id == p.items[i].msg.ID
	}
	if inOrder {
		return nil
	}
	byID := make(map[string]string, len(statuses))
	for _, s := range statuses {
		byID[s.id] = strings.ToUpper(s.status)
	}
	return byID
}

// resultOf is the Result every entry of a batch shares: the request's
// status. The answer body holds all entries' statuses, so none is kept
// (a reply_to stream gets the status without a payload).
func resultOf(status int) Result { return Result{Status: status} }
