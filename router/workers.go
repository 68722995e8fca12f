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
// The pool starts a worker when a job finds none idle, so it never holds
// more goroutines than the peak number of messages in flight (bounded by
// MaxInflight, whose slots the readers take before handing a job over);
// it keeps them until close. Safe for concurrent use.
type workerPool struct {
	run  func(ctx context.Context, j *job)
	jobs chan *job // unbuffered: a send succeeds only into an idle worker
	wg   sync.WaitGroup
}

func newWorkerPool(run func(ctx context.Context, j *job)) *workerPool {
	return &workerPool{run: run, jobs: make(chan *job)}
}

// hand runs j on an idle worker, or on a new one when none is idle. It
// never blocks. It must not be called after close.
func (p *workerPool) hand(ctx context.Context, j *job) {
	select {
	case p.jobs <- j:
	default:
		p.wg.Add(1)
		go p.work(ctx, j)
	}
}

func (p *workerPool) work(ctx context.Context, j *job) {
	defer p.wg.Done()
	for ok := true; ok; j, ok = <-p.jobs {
		p.run(ctx, j)
		j = nil // let the settled job be collected while this worker idles
	}
}

// close stops the idle workers once every job has been handed over and
// finished, and waits for them to exit.
func (p *workerPool) close() {
	close(p.jobs)
	p.wg.Wait()
}
