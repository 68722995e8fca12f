package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/testenv"
	"github.com/msgroute/gateway/rules"
)

// harness runs the whole gateway in-process against a real Redis and a real
// Consul agent, with real HTTP backends registered in Consul.
type harness struct {
	t      *testing.T
	redis  *testenv.Redis
	consul *testenv.Consul
	rdb    redis.UniversalClient
	// redisAddrs are the addresses the gateway is configured with: the
	// single node, or every node of a cluster.
	redisAddrs []string
	capi       *consul.Client
	dir        string
	admin      string
	// claimIdle is consumer.claim_idle for gateways started later; "2s"
	// keeps redelivery tests fast.
	claimIdle string
	cancel    context.CancelFunc
	done      chan error
	// env is added to the environment of gateway processes (spawn).
	env []string
}

// newClusterHarness is newHarness against a 3-master Redis Cluster.
func newClusterHarness(t *testing.T) *harness {
	t.Helper()
	c := testenv.StartRedisCluster(t, 3)
	h := &harness{t: t, consul: testenv.StartConsul(t), dir: t.TempDir(), claimIdle: "2s", redisAddrs: c.Addrs}
	h.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { h.rdb.Close() })
	var err error
	h.capi, err = consul.NewClient(&consul.Config{Address: h.consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, redis: testenv.StartRedis(t), consul: testenv.StartConsul(t), dir: t.TempDir(), claimIdle: "2s"}
	h.rdb = redis.NewClient(&redis.Options{Addr: h.redis.Addr})
	h.redisAddrs = []string{h.redis.Addr}
	t.Cleanup(func() { h.rdb.Close() })
	var err error
	h.capi, err = consul.NewClient(&consul.Config{Address: h.consul.Addr})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// writeRules writes the rules file the gateway will load.
func (h *harness) writeRules(body string) string {
	h.t.Helper()
	p := filepath.Join(h.dir, "rules.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// start runs the gateway with extra config lines appended to a minimal
// config naming the test's Redis, Consul and rules.
func (h *harness) start(streams []string, extra string) {
	h.t.Helper()
	cfgPath, admin := h.writeConfig("gateway.yaml", "test-gw", streams, extra)
	h.admin = admin
	cfg, err := config.Load(cfgPath)
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	set, err := rules.Load(cfg.Rules.Path)
	if err != nil {
		h.t.Fatalf("rules: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() { h.done <- serve(ctx, cfg, set, log) }()
	h.t.Cleanup(h.stop)
	h.waitFor("gateway ready", 15*time.Second, func() error {
		resp, err := http.Get("http://" + h.admin + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
}

// writeConfig writes a gateway config for consumer name with a fresh
// admin port and returns its path and the admin address.
func (h *harness) writeConfig(file, name string, streams []string, extra string) (string, string) {
	h.t.Helper()
	admin := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(h.t))
	cfgText := fmt.Sprintf(`
redis: {addrs: ["%s"]}
consumer:
  streams: [%s]
  name: %s
  block: 100ms
  claim_idle: %s
  max_deliveries: 3
%s
consul: {address: "%s"}
rules: {path: "%s"}
admin: {listen: "%s"}
dispatch: {timeout: 500ms}
log: {level: warn}
`, strings.Join(h.redisAddrs, `", "`), strings.Join(streams, ", "), name, h.claimIdle, extra, h.consul.Addr, filepath.Join(h.dir, "rules.yaml"), admin)
	p := filepath.Join(h.dir, file)
	if err := os.WriteFile(p, []byte(cfgText), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p, admin
}

// stop shuts the gateway down (as SIGTERM would) and checks it drained.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("serve returned %v", err)
		}
	case <-time.After(20 * time.Second):
		h.t.Error("gateway did not stop within 20s")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) waitFor(what string, timeout time.Duration, cond func() error) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// publish XADDs fields to stream and returns the entry ID.
func (h *harness) publish(stream string, fields ...string) string {
	h.t.Helper()
	id, err := h.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: fields}).Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *harness) pending(stream string) int64 {
	p, err := h.rdb.XPending(context.Background(), stream, "gateway").Result()
	if err != nil {
		return -1
	}
	return p.Count
}

// waitDistinct waits until b has received at least n distinct messages
// (exactly n when exact is set).
func (h *harness) waitDistinct(what string, timeout time.Duration, b *backend, n int, exact bool) {
	h.t.Helper()
	h.waitFor(what, timeout, func() error {
		d, _ := b.unique()
		if d < n || (exact && d != n) {
			return fmt.Errorf("delivered %d, want %d", d, n)
		}
		return nil
	})
}

// waitAcked waits until nothing is pending in the group on streams.
func (h *harness) waitAcked(timeout time.Duration, streams ...string) {
	h.t.Helper()
	h.waitFor("all acked", timeout, func() error {
		for _, s := range streams {
			if n := h.pending(s); n != 0 {
				return fmt.Errorf("%s: pending = %d", s, n)
			}
		}
		return nil
	})
}

func (h *harness) dlq() []redis.XMessage {
	msgs, _ := h.rdb.XRange(context.Background(), "gateway:dlq", "-", "+").Result()
	return msgs
}

// backend is a real HTTP service instance registered in Consul with a TTL
// check the test controls.
type backend struct {
	name, id string
	addr     string
	status   atomic.Int32 // HTTP status to answer
	delay    atomic.Int64 // service time, ns
	inflight atomic.Int64
	maxSeen  atomic.Int64 // most concurrent requests observed
	mu       sync.Mutex
	got      []received
	ids      map[string]int // X-Message-Id -> times received
	// light records only message IDs (for load tests).
	light atomic.Bool
	srv   *http.Server
}

type received struct {
	Method, Path string
	Header       http.Header
	Body         string
}

func (h *harness) backend(service, id string, tags ...string) *backend {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	b := &backend{name: service, id: id, addr: ln.Addr().String(), ids: map[string]int{}}
	b.status.Store(200)
	b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := b.inflight.Add(1)
		defer b.inflight.Add(-1)
		for {
			m := b.maxSeen.Load()
			if n <= m || b.maxSeen.CompareAndSwap(m, n) {
				break
			}
		}
		if d := b.delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		if b.light.Load() {
			b.mu.Lock()
			b.ids[r.Header.Get("X-Message-Id")]++
			b.mu.Unlock()
			w.WriteHeader(int(b.status.Load()))
			return
		}
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.got = append(b.got, received{r.Method, r.URL.RequestURI(), r.Header.Clone(), string(body)})
		b.ids[r.Header.Get("X-Message-Id")]++
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(b.status.Load()))
		fmt.Fprintf(w, `{"handled_by":%q}`, id)
	})}
	go b.srv.Serve(ln)
	h.t.Cleanup(func() { b.srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	err = h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: service, Address: "127.0.0.1", Port: port, Tags: tags,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "30s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

// setHealth passes or fails the instance's Consul check.
func (h *harness) setHealth(b *backend, passing bool) {
	h.t.Helper()
	status := consul.HealthPassing
	if !passing {
		status = consul.HealthCritical
	}
	if err := h.capi.Agent().UpdateTTL("check-"+b.id, "set by test", status); err != nil {
		h.t.Fatal(err)
	}
}

func (b *backend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

// unique returns how many distinct messages arrived and how many
// arrivals were duplicates.
func (b *backend) unique() (distinct, dups int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.ids {
		distinct++
		dups += n - 1
	}
	return distinct, dups
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.light.Load() {
		n := 0
		for _, c := range b.ids {
			n += c
		}
		return n
	}
	return len(b.got)
}
