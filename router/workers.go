package router

import (
	"context"
	"sync"
)

// workerPool runs jobs on long-lived goroutines. A goroutine per message
// costs more than its creation: each new one starts on a small stack and
// grows it (copying) on the way down the dispatch path, which the profile
// showed at ~7% of the gateway's CPU. Workers keep their grown stacks.
//
// Idle workers are reused last-in, first-out. The garbage collector
// shrinks the stacks of goroutines that sit idle, and a shrunk worker pays
// the copy again on its next job; with a FIFO hand-off (one shared
// channel) every worker cycles through idleness, so under partial load all
// of them were shrunk and regrown at every GC (~4% of CPU at half load).
// LIFO keeps the few workers the load needs hot and lets the rest sleep.
//
// The pool starts a worker when a job finds none idle, so it never holds
// more goroutines than the peak number of messages in flight (bounded by
// MaxInflight, whose slots the readers take before handing a job over);
// it keeps them until close. Safe for concurrent use.
type workerPool struct {
	run    func(ctx context.Context, j *job)
	mu     sync.Mutex
	idle   []*worker // stack: the most recently idle worker is on top
	closed bool
	wg     sync.WaitGroup
}

type worker struct {
	jobs chan *job // capacity 1: hand never blocks on an idle worker
}

func newWorkerPool(run func(ctx context.Context, j *job)) *workerPool {
	return &workerPool{run: run}
}

// hand runs j on the most recently idle worker, or on a new one when none
// is idle. It never blocks. It must not be called after close.
func (p *workerPool) hand(ctx context.Context, j *job) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w.jobs <- j
		return
	}
	p.mu.Unlock()
	p.wg.Add(1)
	go p.work(ctx, &worker{jobs: make(chan *job, 1)}, j)
}

func (p *workerPool) work(ctx context.Context, w *worker, j *job) {
	defer p.wg.Done()
	for {
		p.run(ctx, j)
		j = nil // let the settled job be collected while this worker idles
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		var ok bool
		if j, ok = <-w.jobs; !ok {
			return
		}
	}
}

// close stops the idle workers once every job has been handed over and
// finished, and waits for them to exit.
func (p *workerPool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, w := range idle {
		close(w.jobs)
	}
	p.wg.Wait()
}
