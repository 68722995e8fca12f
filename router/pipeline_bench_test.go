package router

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/msgroute/gateway/internal/cputime"
	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// Fakes for the pipeline benchmark: no I/O, instant 200s, counted acks.

type benchSettler struct{ acked atomic.Int64 }

func (s *benchSettler) AckMany(_ context.Context, by map[string][]string) error {
	for _, ids := range by {
		s.acked.Add(int64(len(ids)))
	}
	return nil
}
func (s *benchSettler) Park(context.Context, string, string, int64, time.Duration, time.Duration) error {
	return nil
}
func (s *benchSettler) Renew(context.Context, string, []string) error { return nil }
func (s *benchSettler) SettledRoutes(context.Context, string, string) ([]string, error) {
	return nil, nil
}
func (s *benchSettler) RememberSettled(context.Context, string, string, []string, time.Duration) error {
	return nil
}

type benchPublisher struct{}

func (benchPublisher) Add(context.Context, string, int64, []string) (string, error) { return "", nil }

type benchSource struct{}

func (benchSource) EnsureGroup(context.Context, string) error { return nil }
func (benchSource) Read(context.Context, string, string, int, time.Duration) ([]Entry, error) {
	return nil, nil
}
func (benchSource) Claim(context.Context, string, string, time.Duration, int) ([]Entry, string, error) {
	return nil, "0-0", nil
}

type okSender struct{}

func (okSender) Do(*Request) (Result, error) {
	return Result{Status: 200}, nil
}

// benchRouter builds a router over the bench scenario's shape: routes
// matching headers.rk, one service of 10 instances.
func benchRouter(b testing.TB, routes int) (*Router, *benchSettler) {
	b.Helper()
	return benchRouterWith(b, routes, 512, okSender{})
}

// benchRouterWith is benchRouter with maxInflight places and sender.
func benchRouterWith(b testing.TB, routes, maxInflight int, sender Sender) (*Router, *benchSettler) {
	b.Helper()
	var y strings.Builder
	y.WriteString("routes:\n")
	for i := range routes {
		fmt.Fprintf(&y, "  - name: r%d\n    match: 'headers.rk == \"r%d\"'\n    service: svc\n    path: /r%d\n", i, i, i)
	}
	y.WriteString("default:\n  action: dlq\n")
	set := testRules(b, y.String())
	bal := testBalancer(b, 10, "svc")
	st := &benchSettler{}
	r, err := New(Config{Streams: []string{"s"}, Batch: 256, MaxInflight: maxInflight, ServiceConcurrency: 512,
		DLQStream: "dlq", Logger: quietLogger()},
		Deps{Source: benchSource{}, Settler: st, Publisher: benchPublisher{}, Picker: bal, Sender: sender,
			Rules: func() *rules.Set { return set }, Metrics: metrics.New()})
	if err != nil {
		b.Fatal(err)
	}
	return r, st
}

func benchEntry(i, routes int) Entry {
	rk := "r" + strconv.Itoa(i%routes)
	return Entry{Stream: "s", ID: "1700000000000-" + strconv.Itoa(i), Deliveries: 1, Fields: map[string]string{
		"payload": `{"seq":` + strconv.Itoa(i) + `,"ts":1700000000000000000,"rk":"` + rk + `","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
		"rk":      rk,
	}}
}

// BenchmarkPipeline measures the router's own work per message, batch by
// batch as the reader hands them over: match, admission, worker hand-off,
// pick, a (fake, instant) dispatch, metrics, settle and the batched ack.
func BenchmarkPipeline(b *testing.B) { benchPipeline(b, nil) }

// parkedSender answers each request from another goroutine, over a
// channel round trip, as the netpoller wakes a worker whose HTTP answer
// came: the worker parks, so with a backlog the window stays full and
// every finished message frees a place that a waiting reader wants.
type parkedSender struct {
	calls   chan chan struct{}
	replies sync.Pool // of chan struct{}, capacity 1
}

func newParkedSender() *parkedSender {
	s := &parkedSender{calls: make(chan chan struct{}, 1024)}
	s.replies.New = func() any { return make(chan struct{}, 1) }
	go func() {
		for c := range s.calls {
			c <- struct{}{}
		}
	}()
	return s
}

func (s *parkedSender) Do(*Request) (Result, error) {
	c := s.replies.Get().(chan struct{})
	s.calls <- c
	<-c
	s.replies.Put(c)
	return Result{Status: 200}, nil
}

// BenchmarkPipelineParked is BenchmarkPipeline with 128 places in flight
// and answers that park the worker (parkedSender): the window is full and
// the reader waits for places, as in a real drain. cpu-ns/op is the
// process's CPU per message.
func BenchmarkPipelineParked(b *testing.B) {
	s := newParkedSender()
	defer close(s.calls)
	r, st := benchRouterWith(b, 100, 128, s)
	runPipeline(b, r, st, 100, 256, true)
}

func benchPipeline(b *testing.B, tracer trace.Tracer) {
	const routes, batch = 100, 256
	r, st := benchRouter(b, routes)
	r.deps.Tracer = tracer
	runPipeline(b, r, st, routes, batch, false)
}

// runPipeline hands b.N entries to r, batch by batch, and waits until
// every one is acked. cpu-ns/op is the process's CPU per message. With
// read, a batch is matched while the one before is handed out by another
// goroutine (handLoop), as readLoop does; else each is matched, then handed
// out (start).
func runPipeline(b *testing.B, r *Router, st *benchSettler, routes, batch int, read bool) {
	ctx := context.Background()
	acked := make(chan struct{})
	go func() { r.acks.run(ctx); close(acked) }()
	entries := make([]Entry, batch)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	batches := make(chan preparedBatch, 1)
	handed := make(chan struct{})
	go func() { r.handLoop(ctx, ctx, batches); close(handed) }()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for i := range n {
			entries[i] = benchEntry(done+i, routes)
		}
		if read {
			batches <- r.prepareBatch(entries[:n])
		} else {
			r.start(ctx, ctx, entries[:n])
		}
	}
	close(batches)
	<-handed
	r.work.Wait()
	r.acks.close()
	<-acked
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
	r.workers.close()
	if got := st.acked.Load(); got != int64(b.N) {
		b.Fatalf("acked %d of %d", got, b.N)
	}
}

// BenchmarkPrepare measures decoding and matching one entry.
func BenchmarkPrepare(b *testing.B) {
	r, _ := benchRouter(b, 100)
	e := benchEntry(7, 100)
	b.ReportAllocs()
	for b.Loop() {
		r.prepare(&e)
	}
}
