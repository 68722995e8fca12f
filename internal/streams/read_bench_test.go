package streams

import (
	"context"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/cputime"
	"github.com/msgroute/gateway/internal/testenv"
	"github.com/msgroute/gateway/rules"
)

// benchOrderPayload is a ~300-byte order, the shape of the bench's
// realistic messages.
func benchOrderPayload(i int) string {
	s := strconv.Itoa(i)
	return `{"seq":` + s + `,"ts":1700000000000,"type":"order.created","id":"ord-` + s +
		`","region":"eu","currency":"EUR","priority":2,"total":151.5,"customer":{"id":"cus-1","tier":"gold","country":"de","since":"2021-04-01"},` +
		`"items":[{"sku":"A-1001","qty":2,"price":49.9},{"sku":"B-2002","qty":1,"price":55.7}],"shipping":{"method":"express","city":"Berlin","zip":"10115"},"note":"leave at door"}`
}

// BenchmarkReadEntries measures the gateway's side of a read: go-redis's
// XREADGROUP reply parse, the entries' conversion, and each entry's
// rules.Message. An op is one entry; 256 per read, re-read from the
// consumer's pending list.
func BenchmarkReadEntries(b *testing.B) {
	const batch = 256
	r := testenv.StartRedis(b)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	g := NewGroup(rdb, "gw", "c1")
	if err := g.EnsureGroup(ctx, "s"); err != nil {
		b.Fatal(err)
	}
	for i := range batch {
		if _, err := g.Add(ctx, "s", 0, []string{"payload", benchOrderPayload(i), "type", "order.created"}); err != nil {
			b.Fatal(err)
		}
	}
	if got, err := g.readEntries(ctx, "s", ">", batch, -1); err != nil || len(got) != batch {
		b.Fatalf("read %d, %v", len(got), err)
	}
	var msg rules.Message
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for done := 0; done < b.N; done += batch {
		out, err := g.readEntries(ctx, "s", "0", batch, -1)
		if err != nil || len(out) != batch {
			b.Fatalf("read %d, %v", len(out), err)
		}
		for i := range out {
			msg.Reset(out[i].Stream, out[i].ID, out[i].Fields, out[i].Deliveries)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
}
