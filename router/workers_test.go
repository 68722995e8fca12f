package router

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWorkerPoolRunsEveryJobAndReusesWorkers(t *testing.T) {
	var ran atomic.Int64
	var mu sync.Mutex
	seen := make(map[*job]int)
	var wg sync.WaitGroup
	p := newWorkerPool(func(_ context.Context, j *job) {
		defer wg.Done()
		mu.Lock()
		seen[j]++
		mu.Unlock()
		ran.Add(1)
	})
	const n = 1000
	jobs := make([]job, n)
	for i := range jobs {
		wg.Add(1)
		p.hand(context.Background(), &jobs[i])
	}
	wg.Wait()
	p.close()
	if got := ran.Load(); got != n {
		t.Fatalf("ran %d jobs, want %d", got, n)
	}
	for j, c := range seen {
		if c != 1 {
			t.Errorf("job %p ran %d times, want 1", j, c)
		}
	}
}

// TestPipelineSettlesEveryEntry drives start (match, admission, worker
// hand-off, dispatch, settle) with fakes and checks every entry is acked
// once and every slot and queue token is given back.
func TestPipelineSettlesEveryEntry(t *testing.T) {
	r, st := benchRouter(t, 10)
	ctx := context.Background()
	acked := make(chan struct{})
	go func() { r.acks.run(ctx); close(acked) }()
	const total, batch = 2048, 128
	entries := make([]Entry, batch)
	for done := 0; done < total; done += batch {
		for i := range entries {
			entries[i] = benchEntry(done+i, 10)
		}
		r.start(ctx, ctx, entries)
	}
	r.work.Wait()
	r.acks.close()
	<-acked
	r.workers.close()
	if got := st.acked.Load(); got != total {
		t.Errorf("acked %d entries, want %d", got, total)
	}
	if n := r.slots.inUse(); n != 0 {
		t.Errorf("%d in-flight slots still held", n)
	}
	if n := r.svc.sem("svc").queued.n; n != 0 {
		t.Errorf("%d admission tokens of svc still held", n)
	}
}

// TestWorkerPoolReusesTheMostRecentlyIdleWorker: after a burst of
// concurrent jobs, a trickle keeps reusing the worker on top of the idle
// stack instead of cycling through all of them, and starts no new one.
func TestWorkerPoolReusesTheMostRecentlyIdleWorker(t *testing.T) {
	done := make(chan struct{}, 1)
	release := make(chan struct{})
	p := newWorkerPool(func(_ context.Context, j *job) {
		if j.tooBig { // the burst's jobs wait until all have started
			<-release
		}
		done <- struct{}{}
	})
	// idleTop waits until n workers are idle and returns the top one.
	idleTop := func(n int) *worker {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			p.mu.Lock()
			got := len(p.idle)
			var top *worker
			if got > 0 {
				top = p.idle[got-1]
			}
			p.mu.Unlock()
			if got == n {
				return top
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d idle workers, want %d", got, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ctx := context.Background()
	const burst = 8
	for range burst {
		p.hand(ctx, &job{jobState: jobState{tooBig: true}})
	}
	close(release)
	for range burst {
		<-done
	}
	top := idleTop(burst)
	for i := range 100 {
		p.hand(ctx, &job{})
		<-done
		if cur := idleTop(burst); cur != top {
			t.Fatalf("job %d of the trickle left another worker on top", i)
		}
	}
	p.close()
	if n := len(p.idle); n != 0 {
		t.Errorf("%d idle workers after close", n)
	}
}
