package router

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// seqSender answers with statuses in turn and records the trace context
// of each request.
type seqSender struct {
	mu       sync.Mutex
	statuses []int
	parents  []string
	states   []string
}

func (s *seqSender) Do(r *Request) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.statuses[min(len(s.parents), len(s.statuses)-1)]
	s.parents = append(s.parents, r.TraceParent)
	s.states = append(s.states, r.TraceState)
	return Result{Status: st}, nil
}

func tracedRouter(t *testing.T, sender Sender, rec *tracetest.SpanRecorder) *Router {
	t.Helper()
	set := testRules(t, "routes:\n  - {name: pay, service: svc, retries: 1, path: /pay}\n")
	bal := testBalancer(t, 2, "svc")
	deps := Deps{Source: benchSource{}, Settler: &benchSettler{}, Publisher: benchPublisher{}, Picker: bal, Sender: sender,
		Rules: func() *rules.Set { return set }, Metrics: metrics.New()}
	if rec != nil {
		deps.Tracer = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)).Tracer("test")
	}
	r, err := New(Config{Streams: []string{"s"}, DLQStream: "dlq", Logger: quietLogger()}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func runOne(t *testing.T, r *Router, fields map[string]string) verdict {
	t.Helper()
	e := Entry{Stream: "s", ID: "1-0", Deliveries: 1, Fields: fields}
	j := r.prepare(&e)
	defer freeJob(j)
	if !admit(context.Background(), j.sems) {
		t.Fatal("admission refused")
	}
	return r.process(context.Background(), j)
}

const (
	entryTrace  = "0af7651916cd43dd8448eb211c80319c"
	entryParent = "00-" + entryTrace + "-b7ad6b7169203331-01"
)

// TestTracingSpans: a message with a traceparent gets a process span
// under the entry's trace, and each attempt (a 503, then a 200 on the
// retry) a dispatch span under it whose context is what the service gets
// as traceparent.
func TestTracingSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	snd := &seqSender{statuses: []int{503, 200}}
	r := tracedRouter(t, snd, rec)
	if v := runOne(t, r, map[string]string{"payload": "{}", "traceparent": entryParent, "tracestate": "k=v"}); !v.ack {
		t.Fatalf("verdict %+v, want ack", v)
	}
	spans := rec.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans ended, want 3 (2 attempts, 1 message)", len(spans))
	}
	msg := spans[2]
	if msg.Name() != spanProcess || msg.Parent().TraceID().String() != entryTrace || msg.Parent().SpanID().String() != "b7ad6b7169203331" {
		t.Fatalf("message span %q parent %v, want process under the entry's traceparent", msg.Name(), msg.Parent())
	}
	for i, want := range []struct {
		status  int64
		outcome string
	}{{503, "transient"}, {200, "delivered"}} {
		a := spans[i]
		if a.Name() != spanDispatch || a.Parent().SpanID() != msg.SpanContext().SpanID() {
			t.Errorf("attempt %d: span %q parent %v, want dispatch under the message span", i+1, a.Name(), a.Parent().SpanID())
		}
		got := map[string]string{}
		for _, kv := range a.Attributes() {
			got[string(kv.Key)] = kv.Value.Emit()
		}
		for k, v := range map[string]string{"gateway.route": "pay", "gateway.service": "svc", "gateway.attempt": strconv.Itoa(i + 1),
			"http.response.status_code": strconv.FormatInt(want.status, 10), "gateway.outcome": want.outcome} {
			if got[k] != v {
				t.Errorf("attempt %d: attribute %s = %q, want %q", i+1, k, got[k], v)
			}
		}
		if !strings.HasPrefix(got["gateway.instance"], "127.0.0.1:1000") {
			t.Errorf("attempt %d: gateway.instance = %q", i+1, got["gateway.instance"])
		}
		wantParent := "00-" + entryTrace + "-" + a.SpanContext().SpanID().String() + "-01"
		if snd.parents[i] != wantParent || snd.states[i] != "k=v" {
			t.Errorf("attempt %d sent traceparent %q tracestate %q, want %q k=v", i+1, snd.parents[i], snd.states[i], wantParent)
		}
	}
}

// TestTracingOffForwardsEntryContext: without a tracer the entry's own
// trace context is what the service gets.
func TestTracingOffForwardsEntryContext(t *testing.T) {
	snd := &seqSender{statuses: []int{200}}
	r := tracedRouter(t, snd, nil)
	runOne(t, r, map[string]string{"payload": "{}", "traceparent": entryParent, "tracestate": "k=v"})
	if len(snd.parents) != 1 || snd.parents[0] != entryParent || snd.states[0] != "k=v" {
		t.Errorf("sent traceparent %q tracestate %q, want the entry's %q k=v", snd.parents, snd.states, entryParent)
	}
}

// TestTracingWithoutEntryContext: a message without (or with a malformed)
// traceparent starts a trace of its own, which the service joins.
func TestTracingWithoutEntryContext(t *testing.T) {
	for _, tp := range []string{"", "00-bad-01"} {
		rec := tracetest.NewSpanRecorder()
		snd := &seqSender{statuses: []int{200}}
		r := tracedRouter(t, snd, rec)
		fields := map[string]string{"payload": "{}"}
		if tp != "" {
			fields["traceparent"] = tp
		}
		runOne(t, r, fields)
		spans := rec.Ended()
		if len(spans) != 2 || spans[1].Parent().IsValid() {
			t.Fatalf("traceparent %q: %d spans, message span parent %v; want 2 and a root", tp, len(spans), spans[len(spans)-1].Parent())
		}
		want := "00-" + spans[0].SpanContext().TraceID().String() + "-" + spans[0].SpanContext().SpanID().String() + "-01"
		if snd.parents[0] != want {
			t.Errorf("traceparent %q: sent %q, want %q", tp, snd.parents[0], want)
		}
	}
}

// BenchmarkPipelineTraced is BenchmarkPipeline with tracing on: the SDK
// with a batch span processor whose exporter discards (the OTLP encoding
// and the HTTP export are not counted).
func BenchmarkPipelineTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	benchPipeline(b, tp.Tracer("bench"))
}
