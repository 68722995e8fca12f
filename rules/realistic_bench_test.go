package rules

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/msgroute/gateway/internal/cputime"
)

// The realistic workload of bench/realistic.go (issue #13), restated here
// because bench is a main package: 100 routes reading JSON body fields with
// equality, ranges, `||`, `in` and nested fields, the 97th matching every
// message, and ~300-byte JSON orders.

func realisticRules(n int) string {
	var b strings.Builder
	b.WriteString("routes:\n")
	hit := max(n-4, 0)
	for i := range n {
		var match string
		switch {
		case i == hit:
			match = `body.type == "order.created" && body.total > 100 && body.total <= 5000 && body.region == "eu" && body.customer.tier in ["gold", "platinum"]`
		case i%4 == 0:
			match = fmt.Sprintf(`body.type == "order.created" && body.total > %d && body.region == "r%d"`, 100+i, i)
		case i%4 == 1:
			match = fmt.Sprintf(`headers.type == "evt.%d" || body.customer.tier in ["t%d", "u%d"]`, i, i, i)
		case i%4 == 2:
			match = fmt.Sprintf(`body.total >= %d && body.total < %d && body.currency == "C%d"`, i*10, i*10+5, i)
		default:
			match = fmt.Sprintf(`body.items[0].sku == "S-%d" || (body.customer.country in ["c%d", "d%d"] && body.priority >= 3)`, i, i, i)
		}
		fmt.Fprintf(&b, "  - name: r%d\n    match: '%s'\n    service: svc\n    path: /r%d\n", i, match, i)
	}
	b.WriteString("default:\n  action: dlq\n")
	return b.String()
}

func realisticPayload(seq int) string {
	s := strconv.Itoa(seq)
	return `{"seq":` + s + `,"ts":1700000000000000000,"type":"order.created","id":"ord-` + s +
		`","region":"eu","currency":"EUR","priority":2,"total":` + strconv.Itoa(150+seq%4000) +
		`.5,"customer":{"id":"cus-` + strconv.Itoa(seq%997) +
		`","tier":"gold","country":"de","since":"2021-04-01"},"items":[{"sku":"A-1001","qty":2,"price":49.9},{"sku":"B-2002","qty":1,"price":55.7}],"shipping":{"method":"express","city":"Berlin","zip":"10115"},"note":"leave at door"}`
}

// BenchmarkRealisticMatch is Match on the realistic workload.
func BenchmarkRealisticMatch(b *testing.B) {
	s := compileString(b, realisticRules(100))
	var msgs []*Message
	for i := range 16 {
		msgs = append(msgs, NewMessage("orders", "1700000000000-0",
			map[string]string{"payload": realisticPayload(i), "source": "bench"}, 1))
	}
	dst := make([]Match, 0, 8)
	b.ReportAllocs()
	cpu := cputime.Process()
	for i := 0; b.Loop(); i++ {
		dst = s.Match(msgs[i%len(msgs)], dst[:0])
		if len(dst) != 1 || dst[0].Route.Name != "r96" {
			b.Fatalf("Match = %s, want [r96]", names(dst))
		}
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkRealisticDecode is the shaped decoding of a realistic payload
// for the realistic rule set's shape.
func BenchmarkRealisticDecode(b *testing.B) {
	s := compileString(b, realisticRules(100))
	payload := realisticPayload(7)
	sc := &jsonScratch{maps: make([]map[string]any, s.shapeNodes)}
	b.ReportAllocs()
	for b.Loop() {
		if _, st := decodeJSONShapeInto(payload, s.shape, sc); st != bodyJSON {
			b.Fatal("not JSON")
		}
	}
}
