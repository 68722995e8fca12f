package router

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/msgroute/gateway/internal/streams"
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
	entries := make([]streams.Entry, batch)
	for done := 0; done < total; done += batch {
		for i := range entries {
			entries[i] = benchEntry(done+i, 10)
		}
		for got := 0; got < batch; {
			got += r.acquire(ctx, batch-got)
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
	if n := len(r.slots); n != 0 {
		t.Errorf("%d in-flight slots still held", n)
	}
	if n := len(r.svc.sem("svc").queue); n != 0 {
		t.Errorf("%d admission tokens of svc still held", n)
	}
}
