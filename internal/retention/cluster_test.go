package retention

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// TestTrimRedisCluster: streams on different masters of a 3-master
// cluster are each trimmed to what their groups have not finished.
func TestTrimRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	streams := []string{"orders", "payments", "events", "audit"}
	masters := map[string]bool{}
	for _, s := range streams {
		m, err := rdb.MasterForKey(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Options().Addr] = true
	}
	if len(masters) < 2 {
		t.Fatalf("streams %v all on one master; the test proves nothing", streams)
	}
	all := map[string][]string{}
	for _, s := range streams {
		createGroup(t, rdb, s, "gateway")
		all[s] = add(t, rdb, s, 50)
		read(t, rdb, s, "gateway", 50)
		ack(t, rdb, s, "gateway", all[s][:30]...) // 20 still pending
	}
	tr, m := newTrimmer(t, rdb, Config{Streams: streams})
	tr.pass(ctx)
	for _, s := range streams {
		checkNothingUnfinishedTrimmed(t, rdb, s, all[s])
		if n := xlen(t, rdb, s); n != 20 {
			t.Errorf("%s: XLEN = %d, want 20 (the pending ones)", s, n)
		}
		if got := testutil.ToFloat64(m.StreamTrimmed.WithLabelValues(s)); got != 30 {
			t.Errorf("gateway_stream_trimmed_total{stream=%s} = %v, want 30", s, got)
		}
		if st := tr.Streams(); st[indexOf(streams, s)].Pending != 20 {
			t.Errorf("%s: /streams pending = %d, want 20", s, st[indexOf(streams, s)].Pending)
		}
	}
	t.Logf("%d streams on %d masters each trimmed to their 20 pending entries", len(streams), len(masters))
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
