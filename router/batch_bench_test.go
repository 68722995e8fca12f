package router

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/cputime"
	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/rules"
)

// okBatchSender answers every entry of a batch SUCCESS, as a service
// would: it finds each entryId in the request (the bench's payloads hold
// no such key) and renders the statuses document.
type okBatchSender struct{}

func (okBatchSender) DoBatch(_, _, _ string, _ time.Duration, body []byte) (int, []byte, error) {
	const key = `{"entryId":"`
	out := make([]byte, 0, 64+len(body)/8)
	out = append(out, `{"statuses":[`...)
	for n := 0; ; n++ {
		i := bytes.Index(body, []byte(key))
		if i < 0 {
			break
		}
		body = body[i+len(key):]
		end := bytes.IndexByte(body, '"')
		if n > 0 {
			out = append(out, ',')
		}
		out = append(out, `{"entryId":"`...)
		out = append(out, body[:end]...)
		out = append(out, `","status":"SUCCESS"}`...)
	}
	return 200, append(out, "]}"...), nil
}

// answer is okBatchSender's answer to a batch of n bench orders.
func (s okBatchSender) answer(n int) ([]byte, error) {
	items := make([]batchItem, n)
	for i := range items {
		e := benchOrder(i)
		items[i] = batchItem{msg: rules.NewMessage(e.Stream, e.ID, e.Fields, 1), attempt: 1}
	}
	_, out, err := s.DoBatch("", "", "", 0, appendBatchBody(nil, "bulk", items))
	return out, err
}

// benchBatchRouter builds a router whose rules read body fields (like the
// bench's realistic set: several routes evaluated before the one that
// matches) and whose matching route posts batches of size to one service
// of 10 instances (size 0: one request per message).
func benchBatchRouter(b testing.TB, size int) (*Router, *benchSettler) {
	b.Helper()
	var y strings.Builder
	y.WriteString("routes:\n")
	for i := range 8 {
		fmt.Fprintf(&y, "  - name: miss%d\n    match: 'body.type == \"order.created\" && body.total > %d && body.region == \"r%d\"'\n    service: svc\n    path: /m%d\n", i, 100+i, i, i)
	}
	fmt.Fprintf(&y, "  - name: bulk\n    match: 'body.type == \"order.created\" && body.total > 100 && body.region == \"eu\" && body.customer.tier in [\"gold\", \"platinum\"]'\n"+
		"    service: svc\n    path: /bulk\n")
	if size > 0 {
		fmt.Fprintf(&y, "    batch: {max_messages: %d, max_wait: 5ms}\n", size)
	}
	y.WriteString("default:\n  action: dlq\n")
	set := testRules(b, y.String())
	bal := testBalancer(b, 10, "svc")
	st := &benchSettler{}
	r, err := New(Config{Streams: []string{"orders"}, Batch: 256, MaxInflight: 1024, ServiceConcurrency: 1024,
		DLQStream: "dlq", Logger: quietLogger()},
		Deps{Source: benchSource{}, Settler: st, Publisher: benchPublisher{}, Picker: bal, Sender: okSender{},
			Batcher: okBatchSender{}, Rules: func() *rules.Set { return set }, Metrics: metrics.New()})
	if err != nil {
		b.Fatal(err)
	}
	return r, st
}

// benchOrder is a ~300-byte order the bulk route matches.
func benchOrder(i int) Entry {
	s := strconv.Itoa(i)
	return Entry{Stream: "orders", ID: "1700000000000-" + s, Deliveries: 1, Fields: map[string]string{
		"payload": `{"seq":` + s + `,"ts":1700000000000,"type":"order.created","id":"ord-` + s +
			`","region":"eu","currency":"EUR","priority":2,"total":151.5,"customer":{"id":"cus-1","tier":"gold","country":"de","since":"2021-04-01"},` +
			`"items":[{"sku":"A-1001","qty":2,"price":49.9},{"sku":"B-2002","qty":1,"price":55.7}],"shipping":{"method":"express","city":"Berlin","zip":"10115"},"note":"leave at door"}`,
		"type": "order.created",
	}}
}

// BenchmarkBatchPipeline measures the router's work per message on a
// batched route (100 per request), read batch by read batch as the reader
// hands them over: match, admission, worker hand-off, accumulation, the
// request body, a (fake, instant) service answering every entry SUCCESS,
// the answer's decoding, each entry's settling and the batched ack; and
// the same messages on the route without a batch (a fake, instant 200 per
// message), for comparison. An op is a message; cpu-ns/op is the process's
// CPU time per message (both cores), steadier than wall time on a shared
// machine.
func BenchmarkBatchPipeline(b *testing.B) {
	b.Run("batch-100", func(b *testing.B) { benchBatchPipeline(b, 100) })
	b.Run("unbatched", func(b *testing.B) { benchBatchPipeline(b, 0) })
}

func benchBatchPipeline(b *testing.B, size int) {
	const read = 256
	r, st := benchBatchRouter(b, size)
	ctx := context.Background()
	acked := make(chan struct{})
	go func() { r.acks.run(ctx); close(acked) }()
	entries := make([]Entry, read)
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for done := 0; done < b.N; done += read {
		n := min(read, b.N-done)
		for i := range n {
			entries[i] = benchOrder(done + i)
		}
		r.start(ctx, ctx, entries[:n])
	}
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
