package retention

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/metrics"
	"github.com/msgroute/gateway/internal/testenv"
)

func newRedis(t *testing.T) *redis.Client {
	t.Helper()
	r := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

// newTrimmer returns an acked Trimmer that trims on every pass.
func newTrimmer(t *testing.T, rdb Redis, cfg Config) (*Trimmer, *metrics.Metrics) {
	t.Helper()
	m := metrics.New()
	if cfg.Group == "" {
		cfg.Group = "gateway"
	}
	if cfg.Mode == "" {
		cfg.Mode = Acked
	}
	cfg.TrimInterval = time.Nanosecond
	tr, err := New(cfg, rdb, m)
	if err != nil {
		t.Fatal(err)
	}
	return tr, m
}

// add appends n entries to stream and returns their IDs in order.
func add(t *testing.T, rdb redis.Cmdable, stream string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: []string{"seq", strconv.Itoa(i)}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

// read reads up to n new entries of stream as group's consumer c.
func read(t *testing.T, rdb redis.Cmdable, stream, group string, n int) []string {
	t.Helper()
	res, err := rdb.XReadGroup(context.Background(), &redis.XReadGroupArgs{
		Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: int64(n), Block: -1}).Result()
	if err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range res {
		for _, m := range s.Messages {
			ids = append(ids, m.ID)
		}
	}
	return ids
}

func ack(t *testing.T, rdb redis.Cmdable, stream, group string, ids ...string) {
	t.Helper()
	if err := rdb.XAck(context.Background(), stream, group, ids...).Err(); err != nil {
		t.Fatal(err)
	}
}

func createGroup(t *testing.T, rdb redis.Cmdable, stream, group string) {
	t.Helper()
	if err := rdb.XGroupCreateMkStream(context.Background(), stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
}

// checkNothingUnfinishedTrimmed fails if an entry of all that some group
// of stream still has pending or has not read is missing from the stream.
func checkNothingUnfinishedTrimmed(t *testing.T, rdb redis.Cmdable, stream string, all []string) {
	t.Helper()
	ctx := context.Background()
	present := map[string]bool{}
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		present[m.ID] = true
	}
	groups, err := rdb.XInfoGroups(ctx, stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		last, _ := parseID(g.LastDeliveredID)
		for _, id := range all {
			if p, _ := parseID(id); last.less(p) && !present[id] {
				t.Errorf("entry %s unread by group %s (last delivered %s) was trimmed", id, g.Name, g.LastDeliveredID)
			}
		}
		pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: g.Name, Start: "-", End: "+", Count: 1 << 20}).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pend {
			if !present[p.ID] {
				t.Errorf("entry %s pending in group %s was trimmed", p.ID, g.Name)
			}
		}
	}
}

func xlen(t *testing.T, rdb redis.Cmdable, stream string) int64 {
	t.Helper()
	n, err := rdb.XLen(context.Background(), stream).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestTrimStopsAtEveryGroupsOldestUnfinished walks two groups through
// reads and acks; after every step a pass trims exactly the entries both
// groups finished, and nothing pending or unread is gone.
func TestTrimStopsAtEveryGroupsOldestUnfinished(t *testing.T) {
	rdb := newRedis(t)
	ctx := context.Background()
	createGroup(t, rdb, "s", "gateway")
	createGroup(t, rdb, "s", "audit") // another application's group
	ids := add(t, rdb, "s", 100)
	tr, m := newTrimmer(t, rdb, Config{Streams: []string{"s"}})

	got := read(t, rdb, "s", "gateway", 100)
	for i, id := range got {
		if i != 40 && i != 70 {
			ack(t, rdb, "s", "gateway", id)
		}
	}
	read(t, rdb, "s", "audit", 60)
	ack(t, rdb, "s", "audit", ids[:60]...)

	steps := []struct {
		name    string
		act     func()
		wantLen int64
	}{
		{"gateway's oldest pending (#40) holds", func() {}, 60},
		{"audit's unread (#60) holds once #40 is acked", func() { ack(t, rdb, "s", "gateway", ids[40]) }, 40},
		{"gateway's pending #70 holds once audit caught up", func() {
			read(t, rdb, "s", "audit", 100)
			ack(t, rdb, "s", "audit", ids[60:]...)
		}, 30},
		{"everything finished", func() { ack(t, rdb, "s", "gateway", ids[70]) }, 0},
	}
	var trimmed int64
	for _, st := range steps {
		st.act()
		tr.pass(ctx)
		checkNothingUnfinishedTrimmed(t, rdb, "s", ids)
		n := xlen(t, rdb, "s")
		if n != st.wantLen {
			t.Errorf("%s: XLEN = %d, want %d", st.name, n, st.wantLen)
		}
		trimmed = 100 - n
	}
	if got := testutil.ToFloat64(m.StreamTrimmed.WithLabelValues("s")); got != float64(trimmed) {
		t.Errorf("gateway_stream_trimmed_total{stream=s} = %v, want %d", got, trimmed)
	}
	// New entries after everything was trimmed are unread: kept.
	more := add(t, rdb, "s", 5)
	tr.pass(ctx)
	if n := xlen(t, rdb, "s"); n != 5 {
		t.Errorf("after 5 new entries: XLEN = %d, want 5", n)
	}
	checkNothingUnfinishedTrimmed(t, rdb, "s", append(ids, more...))
}

// TestTrimKeepWindow: finished entries younger than Keep stay.
func TestTrimKeepWindow(t *testing.T) {
	rdb := newRedis(t)
	ctx := context.Background()
	now, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	createGroup(t, rdb, "s", "gateway")
	ages := []time.Duration{120 * time.Second, 61 * time.Second, 59 * time.Second, 10 * time.Second, 0}
	var ids []string
	for i, age := range ages {
		id := fmt.Sprintf("%d-%d", now.Add(-age).UnixMilli(), i)
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "s", ID: id, Values: []string{"i", "x"}}).Err(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	read(t, rdb, "s", "gateway", 10)
	ack(t, rdb, "s", "gateway", ids...)
	tr, _ := newTrimmer(t, rdb, Config{Streams: []string{"s"}, Keep: time.Minute})
	tr.pass(ctx)
	left, err := rdb.XRange(ctx, "s", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 3 || left[0].ID != ids[2] {
		t.Errorf("after a pass with keep 1m: %d entries left starting %v, want the 3 younger than 1m (from %s)", len(left), left, ids[2])
	}
}

// TestNoTrimWithoutGroupsOrWhenOff: a stream nobody consumes, and any
// stream with mode off, keep everything.
func TestNoTrimWithoutGroupsOrWhenOff(t *testing.T) {
	rdb := newRedis(t)
	ctx := context.Background()
	add(t, rdb, "nogroup", 10)
	createGroup(t, rdb, "done", "gateway")
	ids := add(t, rdb, "done", 10)
	read(t, rdb, "done", "gateway", 10)
	ack(t, rdb, "done", "gateway", ids...)

	off, _ := newTrimmer(t, rdb, Config{Streams: []string{"nogroup", "done", "missing"}, Mode: Off})
	off.pass(ctx)
	if a, b := xlen(t, rdb, "nogroup"), xlen(t, rdb, "done"); a != 10 || b != 10 {
		t.Errorf("mode off: XLEN = %d, %d; want 10, 10", a, b)
	}
	acked, _ := newTrimmer(t, rdb, Config{Streams: []string{"nogroup", "done", "missing"}})
	acked.pass(ctx)
	if a, b := xlen(t, rdb, "nogroup"), xlen(t, rdb, "done"); a != 10 || b != 0 {
		t.Errorf("mode acked: XLEN = %d, %d; want 10 (no group), 0 (all finished)", a, b)
	}
}

// TestRunUntilCancelled: Run trims on its own ticker and returns nil when
// its context ends.
func TestRunUntilCancelled(t *testing.T) {
	rdb := newRedis(t)
	createGroup(t, rdb, "s", "gateway")
	ids := add(t, rdb, "s", 20)
	read(t, rdb, "s", "gateway", 20)
	ack(t, rdb, "s", "gateway", ids...)
	m := metrics.New()
	tr, err := New(Config{Streams: []string{"s"}, Group: "gateway", Mode: Acked,
		TrimInterval: 50 * time.Millisecond, StatsInterval: 50 * time.Millisecond}, rdb, m)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for xlen(t, rdb, "s") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not trim the finished stream within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestConfigErrors(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no streams", Config{Group: "g"}, "no streams"},
		{"no group", Config{Streams: []string{"s"}}, "no group"},
		{"bad mode", Config{Streams: []string{"s"}, Group: "g", Mode: "always"}, `mode "always"`},
		{"negative keep", Config{Streams: []string{"s"}, Group: "g", Keep: -time.Second}, "negative"},
	}
	for _, c := range cases {
		if _, err := New(c.cfg, rdb, metrics.New()); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: New error = %v, want one containing %q", c.name, err, c.want)
		}
	}
}
