package rules

import (
	"fmt"
	"strings"
	"testing"

	"github.com/msgroute/gateway/internal/cputime"
)

// benchRules builds n routes shaped like a real deployment: most select an
// event type by attribute and add body conditions, spread over three
// streams, a few fan out, and three generic routes cannot be indexed.
func benchRules(n int) string {
	var b strings.Builder
	b.WriteString("routes:\n")
	streams := []string{"orders", "payments", "users"}
	for i := range n - 3 {
		typ := fmt.Sprintf("evt.%d", i/2)
		cond := fmt.Sprintf(`body.total > %d`, 100*(i%10))
		if i%2 == 1 {
			cond = `body.region == "eu" && body.customer.tier in ["gold", "silver"]`
		}
		fmt.Fprintf(&b, "  - name: r%d\n    service: svc-%d\n    streams: [%s]\n    priority: %d\n",
			i, i%20, streams[(i/2)%3], i%5)
		fmt.Fprintf(&b, "    match: 'headers.type == \"%s\" && %s'\n", typ, cond)
		if i%7 == 0 {
			b.WriteString("    continue: true\n")
		}
	}
	b.WriteString(`  - {name: redelivered, service: slow-lane, match: 'deliveries > 5'}
  - {name: urgent, service: pager, match: 'payload contains "urgent" && headers.source != "test"'}
  - {name: vip, service: vip, match: 'headers.tier == "vip" || body.customer?.tier == "platinum"'}
default: {action: dlq}
`)
	return b.String()
}

func benchMessages(n int) []*Message {
	streams := []string{"orders", "payments", "users"}
	var out []*Message
	for i := range 16 {
		k := (i * 7919) % max(1, (n-3)/2)
		out = append(out, NewMessage(streams[k%3], "1700000000000-0", map[string]string{
			"type":    fmt.Sprintf("evt.%d", k),
			"source":  "checkout",
			"payload": fmt.Sprintf(`{"id":"o-%d","total":%d.5,"region":"eu","currency":"EUR","customer":{"id":"c-1","tier":"gold"},"items":[{"sku":"a-1","qty":2}]}`, i, 100*i),
		}, 1))
	}
	return out
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			s := compileString(b, benchRules(n))
			msgs := benchMessages(n)
			dst := make([]Match, 0, 8)
			matched := 0
			b.ReportAllocs()
			cpu := cputime.Process()
			for i := 0; b.Loop(); i++ {
				dst = s.Match(msgs[i%len(msgs)], dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
			if matched == 0 {
				b.Fatal("no message matched: the benchmark measures nothing")
			}
		})
	}
}

// BenchmarkLinearScan is the baseline the index is measured against: every
// route's program evaluated in order, body decoded up front.
func BenchmarkLinearScan(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			s := compileString(b, benchRules(n))
			msgs := benchMessages(n)
			b.ReportAllocs()
			cpu := cputime.Process()
			for i := 0; b.Loop(); i++ {
				linearMatch(s, msgs[i%len(msgs)])
			}
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

func BenchmarkDecodeJSON(b *testing.B) {
	payload := benchMessages(10)[3].Payload
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			decodeJSON(payload)
		}
	})
	b.Run("shaped", func(b *testing.B) {
		sh := compileString(b, benchRules(10)).shape
		b.ReportAllocs()
		for b.Loop() {
			decodeJSONShape(payload, sh)
		}
	})
}
