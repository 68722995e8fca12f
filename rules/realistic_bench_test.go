package rules

import (
	"testing"

	"github.com/msgroute/gateway/internal/cputime"
	"github.com/msgroute/gateway/internal/workload"
)

// realisticRules and realisticPayload are the bench's realistic workload
// (internal/workload, issue #13): 100 routes reading JSON body fields, the
// 97th matching every message, and ~300-byte JSON orders.
func realisticRules(n int) string { return string(workload.RulesYAML(n, "svc", 0)) }

func realisticPayload(seq int) string {
	return string(workload.AppendOrder(nil, int64(seq), 1700000000000000000))
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
