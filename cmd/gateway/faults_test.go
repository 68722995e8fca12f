package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// Fault tests: real processes fail under steady load; every test stops
// itself within bounded time and reports one row: sent, delivered
// (distinct), duplicates, dead-lettered, lost. Lost must be 0.

const faultRules = `
routes:
  - name: orders
    match: 'headers.type == "order.created"'
    service: orders
    path: /orders
    retries: 2
default:
  action: dlq
`

// loadGen publishes to one stream at a steady rate and remembers every
// entry ID Redis acknowledged. XADD errors (Redis down) are counted, and
// the message is retried later as a new one.
type loadGen struct {
	h      *harness
	stream string
	mu     sync.Mutex
	sent   map[string]bool
	errs   int
	stop   chan struct{}
	done   chan struct{}
}

func (h *harness) steadyLoad(stream string, perSecond int) *loadGen {
	g := &loadGen{h: h, stream: stream, sent: map[string]bool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(perSecond/100, 1)
		seq := 0
		for {
			select {
			case <-g.stop:
				return
			case <-tick.C:
			}
			for range per {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				id, err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{
					"type", "order.created", "seq", strconv.Itoa(seq), "payload", fmt.Sprintf(`{"seq":%d}`, seq)}}).Result()
				cancel()
				g.mu.Lock()
				if err != nil {
					g.errs++
				} else {
					g.sent[id] = true
					seq++
				}
				g.mu.Unlock()
			}
		}
	}()
	return g
}

func (g *loadGen) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sent)
}

func (g *loadGen) halt() {
	close(g.stop)
	<-g.done
}

// faultRow is a fault test's outcome.
type faultRow struct {
	sent, delivered, dups, dead, lost, unknown, xaddErrors int
}

// settle stops the load, waits until every sent entry was delivered to one
// of the backends or dead-lettered and nothing is pending (at most
// within), then logs the row and fails the test if anything was lost.
func (g *loadGen) settle(t *testing.T, name string, within time.Duration, backends ...*backend) faultRow {
	t.Helper()
	g.halt()
	var row faultRow
	deadline := time.Now().Add(within)
	for {
		row = g.tally(backends)
		pending := g.h.pending(g.stream)
		if row.lost == 0 && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: not settled within %s: %d lost, %d pending", name, within, row.lost, pending)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("FAULT ROW | %-28s | sent %6d | delivered %6d | duplicates %4d | dead-lettered %3d | lost %d | (xadd errors %d, delivered entries not in sent %d)",
		name, row.sent, row.delivered, row.dups, row.dead, row.lost, row.xaddErrors, row.unknown)
	if row.lost != 0 {
		t.Errorf("%s: %d messages lost", name, row.lost)
	}
	return row
}

func (g *loadGen) tally(backends []*backend) faultRow {
	got := map[string]int{}
	for _, b := range backends {
		b.mu.Lock()
		for id, n := range b.ids {
			got[id] += n
		}
		b.mu.Unlock()
	}
	dead := map[string]bool{}
	for _, m := range g.h.dlq() {
		dead[fmt.Sprint(m.Values["dlq_id"])] = true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	row := faultRow{sent: len(g.sent), xaddErrors: g.errs}
	for id := range g.sent {
		n := got[id]
		switch {
		case n > 0:
			row.delivered++
			row.dups += n - 1
		case dead[id]:
			row.dead++
		default:
			row.lost++
		}
	}
	for id := range got {
		if !g.sent[id] {
			row.unknown++
		}
	}
	return row
}

// deliveredSoFar is the number of distinct messages the backends got.
func deliveredSoFar(backends ...*backend) int {
	n := 0
	for _, b := range backends {
		d, _ := b.unique()
		n += d
	}
	return n
}

// waitProgress waits until the backends received at least n more
// distinct messages than they had.
func (h *harness) waitProgress(what string, within time.Duration, n int, backends ...*backend) {
	h.t.Helper()
	start := deliveredSoFar(backends...)
	h.waitFor(what, within, func() error {
		if d := deliveredSoFar(backends...) - start; d < n {
			return fmt.Errorf("%d new deliveries, want %d", d, n)
		}
		return nil
	})
}

func (h *harness) lightBackend(service, id string) *backend {
	b := h.backend(service, id)
	b.light.Store(true)
	return b
}

// reregister registers b again (a dev Consul agent forgets everything
// when restarted).
func (h *harness) reregister(b *backend) {
	h.t.Helper()
	_, port, _ := net.SplitHostPort(b.addr)
	p, _ := strconv.Atoi(port)
	err := h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: b.id, Name: b.name, Address: "127.0.0.1", Port: p,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + b.id, TTL: "30s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// consulDetail returns /readyz's HTTP status and the consul check's
// degraded flag.
func (h *harness) consulDetail(admin string) (int, bool) {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]struct {
			OK     bool `json:"ok"`
			Detail struct {
				Degraded bool `json:"degraded"`
			} `json:"detail"`
		} `json:"checks"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Checks["consul"].Detail.Degraded
}

func TestFaultConsulDownSixtySeconds(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	h.start([]string{"orders"}, "")
	load := h.steadyLoad("orders", 200)
	h.waitProgress("routing before the outage", 10*time.Second, 100, a, b)

	h.consul.Kill()
	down := time.Now()
	h.waitFor("consul reported degraded", 45*time.Second, func() error {
		if code, degraded := h.consulDetail(h.admin); code != 200 || !degraded {
			return fmt.Errorf("readyz %d, degraded %v", code, degraded)
		}
		return nil
	})
	// For the whole outage: ready, degraded, and still routing to the last
	// instances Consul named.
	checks := 0
	for time.Since(down) < 60*time.Second {
		h.waitProgress("routing during the outage", 5*time.Second, 50, a, b)
		if code, degraded := h.consulDetail(h.admin); code != 200 || !degraded {
			t.Fatalf("%s into the outage: readyz %d, degraded %v; want 200 and degraded", time.Since(down).Round(time.Second), code, degraded)
		}
		checks++
	}
	t.Logf("consul down %s: ready, degraded and routing at %d checks", time.Since(down).Round(time.Second), checks)

	h.consul.Start()
	h.reregister(a)
	h.reregister(b)
	c := h.lightBackend("orders", "orders-c") // an update that must now reach the gateway
	h.waitFor("consul healthy again", 30*time.Second, func() error {
		if code, degraded := h.consulDetail(h.admin); code != 200 || degraded {
			return fmt.Errorf("readyz %d, degraded %v", code, degraded)
		}
		return nil
	})
	h.waitProgress("new instance registered after the outage gets traffic", 30*time.Second, 20, c)
	load.settle(t, "consul down 60s", 30*time.Second, a, b, c)
}

func TestFaultBackendFlappingHealthCheck(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	steady, flappy := h.lightBackend("orders", "orders-steady"), h.lightBackend("orders", "orders-flappy")
	h.start([]string{"orders"}, "")
	load := h.steadyLoad("orders", 200)
	h.waitProgress("routing", 10*time.Second, 100, steady, flappy)
	before, _ := flappy.unique()
	passing := true
	for i := 0; i < 40; i++ { // 10 s of flapping, 4 changes a second
		passing = !passing
		h.setHealth(flappy, passing)
		time.Sleep(250 * time.Millisecond)
	}
	h.setHealth(flappy, true)
	after, _ := flappy.unique()
	t.Logf("flapping instance took %d messages while flapping", after-before)
	load.settle(t, "backend flapping check", 30*time.Second, steady, flappy)
}

func TestFaultRedisRestartUnderLoad(t *testing.T) {
	// AOF with fsync always, so a SIGKILL loses nothing Redis acknowledged
	// (the gateway's guarantee starts at an acknowledged XADD).
	r := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	h := newHarnessOn(t, r, &redis.Options{}, testenv.StartConsul(t), "")
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	h.start([]string{"orders"}, "")
	load := h.steadyLoad("orders", 200)
	h.waitProgress("routing before the restart", 10*time.Second, 200, a, b)
	for i := 0; i < 2; i++ {
		h.redis.Kill()
		time.Sleep(2 * time.Second)
		h.redis.Start()
		restarted := time.Now()
		h.waitProgress("routing after the restart", 20*time.Second, 100, a, b)
		t.Logf("restart %d: routing resumed %s after Redis came back", i+1, time.Since(restarted).Round(time.Millisecond))
	}
	if code, body := h.readyz(); code != 200 {
		t.Errorf("readyz after the restarts = %d: %s", code, body)
	}
	load.settle(t, "redis kill -9 + restart x2", 30*time.Second, a, b)
}

func TestFaultGatewayKill9UnderLoad(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	a.delay.Store(int64(2 * time.Millisecond))
	b.delay.Store(int64(2 * time.Millisecond))
	gw := h.spawn("gw-a", []string{"orders"}, "")
	load := h.steadyLoad("orders", 300)
	for i := 0; i < 2; i++ {
		h.waitProgress("routing", 10*time.Second, 300, a, b)
		_ = gw.cmd.Process.Kill()
		gw.wait(t, 5*time.Second)
		// The backlog grows while no gateway runs; the restarted one has
		// the same consumer name, so it re-reads its own pending entries.
		time.Sleep(time.Second)
		gw = h.spawn("gw-a", []string{"orders"}, "")
	}
	h.waitProgress("routing after the last restart", 10*time.Second, 300, a, b)
	load.settle(t, "gateway kill -9 x2", 30*time.Second, a, b)
}

// hangingBackend accepts requests and never answers until the test ends.
func (h *harness) hangingBackend(service, id string) (hung *int64Counter) {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	release := make(chan struct{})
	hung = &int64Counter{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hung.add()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { close(release); srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	err = h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: service, Address: "127.0.0.1", Port: port,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "30s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return hung
}

type int64Counter struct {
	mu sync.Mutex
	n  int64
}

func (c *int64Counter) add() {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
}

func (c *int64Counter) get() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestFaultBackendHangs(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	h.start([]string{"orders"}, "")
	load := h.steadyLoad("orders", 200)
	h.waitProgress("routing", 10*time.Second, 100, a, b)
	hung := h.hangingBackend("orders", "orders-hung") // registers healthy, never answers
	h.waitFor("the hung instance is tried", 15*time.Second, func() error {
		if hung.get() == 0 {
			return fmt.Errorf("no request reached it")
		}
		return nil
	})
	h.waitProgress("routing around the hung instance", 15*time.Second, 1000, a, b)
	t.Logf("requests that hung until the 500ms timeout: %d", hung.get())
	load.settle(t, "backend hangs", 30*time.Second, a, b)
}
