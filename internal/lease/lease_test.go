package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// replica is one Manager with a holder per stream that keeps acquiring the
// stream and releases it when its grant's context ends, as the router does.
type replica struct {
	name   string
	m      *Manager
	rdb    *redis.Client
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	owned  map[string]*Grant
}

// startReplica starts a replica whose holders keep a stream for drain after
// its grant's context ended, as the router does while messages in flight
// finish.
func startReplica(t *testing.T, addr, name string, ttl, drain time.Duration, streams ...string) *replica {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	m, err := New(rdb, Config{Group: "g", Owner: name, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, m: m, rdb: rdb, cancel: cancel, done: make(chan struct{}), owned: map[string]*Grant{}}
	var wg sync.WaitGroup
	for _, s := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				g, err := m.Acquire(ctx, s)
				if err != nil {
					return
				}
				r.mu.Lock()
				r.owned[s] = g
				r.mu.Unlock()
				select { // ownership ends, or this replica stops
				case <-g.Context().Done():
				case <-ctx.Done():
				}
				// Drain: the router finishes what it sends before it
				// releases; the stream is still this replica's meanwhile.
				time.Sleep(drain) // the router's drain, simulated
				r.mu.Lock()
				delete(r.owned, s)
				r.mu.Unlock()
				g.Release()
			}
		}()
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	go func() {
		defer close(r.done)
		wg.Wait() // holders release first, as the router drains first
		stopRun()
	}()
	go func() { _ = m.Run(runCtx) }()
	t.Cleanup(func() { r.stop(); rdb.Close() })
	return r
}

func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func (r *replica) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.owned)
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkExclusive fails if two replicas hold one stream at once (a holder
// still draining a stream it is handing over counts as holding it).
func checkExclusive(t *testing.T, rs []*replica, streams []string) {
	t.Helper()
	for _, s := range streams {
		var owners []string
		for _, r := range rs {
			r.mu.Lock()
			if g := r.owned[s]; g != nil {
				owners = append(owners, r.name)
			}
			r.mu.Unlock()
		}
		if len(owners) > 1 {
			t.Fatalf("stream %s owned by %v at once", s, owners)
		}
	}
}

func TestSpreadAndRebalance(t *testing.T) {
	t.Parallel()
	rd := testenv.StartRedis(t)
	streams := []string{"orders.0", "orders.1", "orders.2", "orders.3"}
	// The drain outlasts the TTL: a stream being handed over stays leased
	// (renewed) until its holder releases it, or another would take it.
	ttl, drain := 600*time.Millisecond, 800*time.Millisecond
	a := startReplica(t, rd.Addr, "a", ttl, drain, streams...)
	b := startReplica(t, rd.Addr, "b", ttl, drain, streams...)
	all := []*replica{a, b}
	counts := func(rs ...*replica) string {
		out := ""
		for _, r := range rs {
			out += fmt.Sprintf("%s=%d ", r.name, r.count())
		}
		return out
	}
	watch := func(rs []*replica, want map[*replica]int) {
		t.Helper()
		waitUntil(t, "spread "+fmt.Sprint(want), 10*time.Second, func() bool {
			checkExclusive(t, all, streams)
			for r, n := range want {
				if r.count() != n {
					return false
				}
			}
			return true
		})
		t.Logf("spread: %s", counts(rs...))
	}
	watch(all, map[*replica]int{a: 2, b: 2})
	c := startReplica(t, rd.Addr, "c", ttl, drain, streams...)
	all = append(all, c)
	watch(all, map[*replica]int{a: 2, b: 1, c: 1})
	b.stop() // graceful: hands over at once
	start := time.Now()
	watch(all, map[*replica]int{a: 2, b: 0, c: 2})
	if el := time.Since(start); el > ttl+drain {
		t.Errorf("graceful handover took %v, want well under the TTL %v", el, ttl)
	}
	for _, s := range streams {
		owner, err := a.m.Owner(context.Background(), s)
		if err != nil || (owner != "a" && owner != "c") {
			t.Errorf("Owner(%s) = %q, %v; want a or c", s, owner, err)
		}
	}
}

// TestCrashTakeover: an owner whose Redis connection dies stops before its
// lease expires; the other replica takes over within TTL + Interval, and
// the dead owner's fenced acks fail.
func TestCrashTakeover(t *testing.T) {
	t.Parallel()
	rd := testenv.StartRedis(t)
	ttl := 1200 * time.Millisecond
	a := startReplica(t, rd.Addr, "a", ttl, 0, "s")
	waitUntil(t, "a owns s", 5*time.Second, func() bool { return a.count() == 1 })
	a.mu.Lock()
	ga := a.owned["s"]
	a.mu.Unlock()
	b := startReplica(t, rd.Addr, "b", ttl, 0, "s")
	ctx := context.Background()
	// An entry pending for the group, to ack.
	admin := redis.NewClient(&redis.Options{Addr: rd.Addr})
	defer admin.Close()
	admin.XGroupCreateMkStream(ctx, "s", "g", "0")
	id := admin.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Val()
	admin.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "a", Streams: []string{"s", ">"}})

	a.rdb.Close() // a's Redis is gone: it cannot renew
	crash := time.Now()
	<-ga.Context().Done()
	stopped := time.Since(crash)
	waitUntil(t, "b owns s", 5*time.Second, func() bool { return b.count() == 1 })
	took := time.Since(crash)
	t.Logf("a stopped after %v, b took over after %v", stopped, took)
	if stopped >= took {
		t.Errorf("a stopped after %v, not before b took over (%v)", stopped, took)
	}
	if took > ttl+a.m.cfg.Interval+500*time.Millisecond {
		t.Errorf("takeover took %v, want within TTL+interval (%v)", took, ttl+a.m.cfg.Interval)
	}
	// a's grant, used through a live client, is fenced off.
	stale := &Grant{m: &Manager{cfg: a.m.cfg, rdb: admin, log: a.m.log}, stream: "s", value: ga.value}
	if err := stale.Ack(ctx, []string{id}); !errors.Is(err, ErrLost) {
		t.Errorf("stale grant's Ack = %v, want ErrLost", err)
	}
	if n := admin.XPending(ctx, "s", "g").Val().Count; n != 1 {
		t.Errorf("pending after the fenced ack = %d, want 1", n)
	}
	b.mu.Lock()
	gb := b.owned["s"]
	b.mu.Unlock()
	if gb.Token() <= ga.Token() {
		t.Errorf("new token %d not above old %d", gb.Token(), ga.Token())
	}
	if err := gb.Ack(ctx, []string{id}); err != nil {
		t.Errorf("owner's Ack = %v", err)
	}
	if n := admin.XPending(ctx, "s", "g").Val().Count; n != 0 {
		t.Errorf("pending after the owner's ack = %d, want 0", n)
	}
}

func TestTargetFor(t *testing.T) {
	tests := []struct{ n, r, rank, want int }{
		{4, 2, 0, 2}, {4, 2, 1, 2}, {4, 3, 0, 2}, {4, 3, 1, 1}, {4, 3, 2, 1},
		{1, 2, 0, 1}, {1, 2, 1, 0}, {16, 3, 0, 6}, {16, 3, 2, 5}, {3, 0, 0, 3},
	}
	for _, tt := range tests {
		if got := targetFor(tt.n, tt.r, tt.rank); got != tt.want {
			t.Errorf("targetFor(%d, %d, %d) = %d, want %d", tt.n, tt.r, tt.rank, got, tt.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{{Owner: "a"}, {Group: "g"},
		{Group: "g", Owner: "a", TTL: time.Second, Interval: 900 * time.Millisecond}} {
		if _, err := New(nil, c); err == nil {
			t.Errorf("New(%+v) = nil error", c)
		}
	}
}

// TestOwnerWithSpace: a consumer name with spaces owns, reports and
// re-acquires (after a restart under the same name) like any other.
func TestOwnerWithSpace(t *testing.T) {
	t.Parallel()
	rd := testenv.StartRedis(t)
	r := startReplica(t, rd.Addr, "gw one", time.Second, 0, "s")
	waitUntil(t, "gw one owns s", 5*time.Second, func() bool { return r.count() == 1 })
	if owner, err := r.m.Owner(context.Background(), "s"); err != nil || owner != "gw one" {
		t.Errorf(`Owner = %q, %v; want "gw one"`, owner, err)
	}
	// A restart under the same name takes its lease back at once instead of
	// waiting for it to expire; another name does not get it.
	keys := []string{r.m.leaseKey("s"), r.m.fenceKey("s")}
	if _, err := acquireScript.Run(context.Background(), r.rdb, keys, "other", 1000).Int64(); err == nil {
		t.Error("another owner acquired a held lease")
	}
	tok, err := acquireScript.Run(context.Background(), r.rdb, keys, "gw one", 1000).Int64()
	if err != nil || tok < 2 {
		t.Errorf("same owner's re-acquire = %d, %v; want a new token", tok, err)
	}
}
