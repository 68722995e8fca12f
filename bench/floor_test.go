package main

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/backend"
	"github.com/msgroute/gateway/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// TestFloorDeliversAndAcks runs the floor in-process against a real Redis
// and three backends: every produced message arrives once, round robin,
// and nothing is left pending.
func TestFloorDeliversAndAcks(t *testing.T) {
	rs := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n, instances = 3000, 3
	rec := newRecorder(n, instances)
	var addrs []string
	for i := range instances {
		b, err := backend.New(backend.Config{Name: "svc", OnMessage: func(m *backend.Message) { rec.observe(i, m) }})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		bctx, bstop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- b.Run(bctx, ln) }()
		t.Cleanup(func() { bstop(); <-done })
		addrs = append(addrs, ln.Addr().String())
	}

	floorCtx, stopFloor := context.WithCancel(ctx)
	ready := make(chan struct{})
	floorDone := make(chan error, 1)
	cfg := floorConfig{redisAddr: rs.Addr, stream: "s", group: "floor", consumer: "c", instances: addrs, batch: 64, inflight: 16}
	go func() { floorDone <- runFloor(floorCtx, cfg, func() { close(ready) }) }()
	<-ready

	p := &producer{rdb: rdb, stream: "s", total: n, routes: 10, batch: 100}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	err := waitUntil(ctx, 20*time.Second, nil, func() error {
		x, err := rdb.XPending(ctx, "s", "floor").Result()
		if err != nil {
			return err
		}
		if rec.Distinct() < n || x.Count > 0 {
			return context.DeadlineExceeded
		}
		return nil
	})
	stopFloor()
	if ferr := <-floorDone; ferr != nil {
		t.Errorf("runFloor: %v", ferr)
	}
	if err != nil {
		t.Fatalf("received %d/%d, waiting for acks: %v", rec.Distinct(), n, err)
	}
	if d, l := rec.dups.Load(), rec.lost(); d != 0 || l != 0 {
		t.Errorf("duplicates %d, lost %d; want 0, 0", d, l)
	}
	for i := range instances {
		if got := rec.instances[i].Load(); got != n/instances {
			t.Errorf("instance %d received %d, want %d (round robin)", i, got, n/instances)
		}
	}
}

func TestOpenLoopStampsIntendedTimes(t *testing.T) {
	rs := testenv.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const rate, n = 1000.0, 200
	p := &producer{rdb: rdb, stream: "s", total: n, routes: 3, rate: rate}
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	msgs, err := rdb.XRange(ctx, "s", "-", "+").Result()
	if err != nil || len(msgs) != n {
		t.Fatalf("XRANGE = %d entries, %v; want %d", len(msgs), err, n)
	}
	start := p.started.Load()
	for i, m := range msgs {
		seq, ts, ok := parseStamp([]byte(m.Values["payload"].(string)))
		want := start + int64(float64(i)*float64(time.Second)/rate)
		if !ok || seq != int64(i) || ts != want {
			t.Fatalf("entry %d: seq %d ts %d ok %v; want seq %d ts %d", i, seq, ts, ok, i, want)
		}
		if rk := m.Values["rk"]; rk != "r"+string(rune('0'+i%3)) {
			t.Fatalf("entry %d: rk %v, want r%d", i, rk, i%3)
		}
	}
}
