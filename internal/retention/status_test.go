package retention

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/msgroute/gateway/internal/metrics"
)

// TestStreamsStatus: /streams figures and the gauges come from one pass.
func TestStreamsStatus(t *testing.T) {
	rdb := newRedis(t)
	ctx := context.Background()
	createGroup(t, rdb, "orders", "gateway")
	createGroup(t, rdb, "orders", "audit")
	ids := add(t, rdb, "orders", 10)
	read(t, rdb, "orders", "gateway", 6) // 6 delivered, 4 lag
	ack(t, rdb, "orders", "gateway", ids[:4]...)
	read(t, rdb, "orders", "audit", 10)
	ack(t, rdb, "orders", "audit", ids...)

	m := metrics.New()
	tr, err := New(Config{Streams: []string{"orders"}, Group: "gateway", StatsInterval: time.Hour,
		Ownership: func(s string) (bool, string) { return true, "replica-" + s }}, rdb, m)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Streams(); len(got) != 1 || got[0].Stream != "orders" || got[0].Group != "gateway" {
		t.Fatalf("Streams() before a pass = %+v, want orders/gateway", got)
	}
	tr.pass(ctx)
	m.Consumed.WithLabelValues("orders").Add(50)
	tr.lastPass = tr.lastPass.Add(-time.Second) // as if a second went by
	tr.pass(ctx)

	st := tr.Streams()[0]
	if st.Length != 10 || st.Lag != 4 || st.Pending != 2 || st.TrimmedTotal != 0 {
		t.Errorf("status = %+v, want length 10, lag 4, pending 2, trimmed 0 (mode off)", st)
	}
	if !st.Ordered || st.Owner != "replica-orders" {
		t.Errorf("ordered, owner = %v, %q; want true, replica-orders", st.Ordered, st.Owner)
	}
	if st.ConsumedPerSec < 40 || st.ConsumedPerSec > 51 {
		t.Errorf("consumed_per_sec = %v, want about 50", st.ConsumedPerSec)
	}
	if st.OldestAgeSeconds <= 0 || st.OldestAgeSeconds > 30 {
		t.Errorf("oldest_age_seconds = %v, want the first entry's small positive age", st.OldestAgeSeconds)
	}
	if st.OldestUnfinishedAgeSeconds <= 0 || st.OldestUnfinishedAgeSeconds > st.OldestAgeSeconds {
		t.Errorf("oldest_unfinished_age_seconds = %v, want positive, at most oldest_age %v", st.OldestUnfinishedAgeSeconds, st.OldestAgeSeconds)
	}
	gauges := []struct {
		name string
		got  float64
		want float64
	}{
		{"gateway_consumer_lag", testutil.ToFloat64(m.ConsumerLag.WithLabelValues("orders")), 4},
		{"gateway_pending_messages", testutil.ToFloat64(m.Pending.WithLabelValues("orders")), 2},
		{"gateway_stream_length", testutil.ToFloat64(m.StreamLength.WithLabelValues("orders")), 10},
		{"gateway_stream_oldest_unfinished_age_seconds", testutil.ToFloat64(m.OldestUnfinishedAge.WithLabelValues("orders")), st.OldestUnfinishedAgeSeconds},
		{"gateway_stream_trimmed_total", testutil.ToFloat64(m.StreamTrimmed.WithLabelValues("orders")), 0},
	}
	for _, g := range gauges {
		if g.got != g.want {
			t.Errorf("%s{stream=orders} = %v, want %v", g.name, g.got, g.want)
		}
	}
	b, _ := json.Marshal(st)
	for _, key := range []string{"stream", "group", "length", "lag", "pending", "consumed_per_sec", "oldest_age_seconds",
		"oldest_unfinished_age_seconds", "trimmed_total", "ordered", "owner"} {
		if !strings.Contains(string(b), `"`+key+`":`) {
			t.Errorf("JSON %s lacks key %q", b, key)
		}
	}

	// Everything finished: the unfinished age drops to 0.
	read(t, rdb, "orders", "gateway", 10)
	ack(t, rdb, "orders", "gateway", ids...)
	tr.pass(ctx)
	if st := tr.Streams()[0]; st.OldestUnfinishedAgeSeconds != 0 || st.Lag != 0 || st.Pending != 0 {
		t.Errorf("all finished: %+v, want unfinished age 0, lag 0, pending 0", st)
	}
}
