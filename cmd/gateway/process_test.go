package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/testenv"
)

// The tests in this file run the gateway as a separate process (the binary
// built from this package), so they can kill -9 it and send it signals.

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binary returns the path of a command of this module (gateway or
// demoservice), built once per test run without the race detector, so load
// tests measure the product, not the instrumentation.
func binary(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gateway-bin")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", binDir+"/", ".", "../demoservice").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func gatewayBinary(t *testing.T) string { return binary(t, "gateway") }

// gwProc is one gateway process.
type gwProc struct {
	cmd   *exec.Cmd
	admin string
	done  chan struct{}
	log   *lockedLog
}

type lockedLog struct {
	mu sync.Mutex
	b  []byte
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	return len(p), nil
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

// spawn starts a gateway process as consumer name and waits until ready.
func (h *harness) spawn(name string, streams []string, extra string) *gwProc {
	h.t.Helper()
	cfgPath, _ := h.writeConfig("gateway-"+name+".yaml", name, streams, extra)
	return h.spawnConfig(name, cfgPath)
}

// spawnConfig starts a gateway process as consumer name with the config
// at cfgPath (written by writeConfig) and waits until ready.
func (h *harness) spawnConfig(name, cfgPath string) *gwProc {
	h.t.Helper()
	cfg, err := config.Load(cfgPath)
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	admin := cfg.Admin.Listen
	p := &gwProc{admin: admin, done: make(chan struct{}), log: &lockedLog{}}
	p.cmd = exec.Command(gatewayBinary(h.t), "run", "--config", cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Env = append(os.Environ(), h.env...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		close(p.done)
	}()
	h.t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if h.t.Failed() {
			h.t.Logf("--- gateway %s log ---\n%s", name, p.log.String())
		}
	})
	h.waitFor("gateway "+name+" ready", 20*time.Second, func() error {
		select {
		case <-p.done:
			return fmt.Errorf("exited: %s", p.log.String())
		default:
		}
		resp, err := http.Get("http://" + admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return p
}

func (p *gwProc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func (p *gwProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("gateway did not exit within %s", timeout)
		return -1
	}
}

// publishN publishes n order messages with a seq field, pipelined.
func (h *harness) publishN(stream string, n int, typ string) {
	h.t.Helper()
	ctx := context.Background()
	for start := 0; start < n; start += 1000 {
		pipe := h.rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{
				"type", typ, "seq", strconv.Itoa(i), "payload", fmt.Sprintf(`{"id":"%d","total":1}`, i)}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			h.t.Fatal(err)
		}
	}
}

func TestProcessSIGTERMDrainsAndExitsZero(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	slow := h.backend("orders", "orders-1")
	slow.delay.Store(int64(200 * time.Millisecond))
	gw := h.spawn("gw-a", []string{"orders"}, "")
	h.publishN("orders", 50, "order.created")
	h.waitFor("requests in flight", 5*time.Second, func() error {
		if slow.inflight.Load() == 0 {
			return fmt.Errorf("none in flight")
		}
		return nil
	})
	gw.signal(t, syscall.SIGTERM)
	if code := gw.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("exit code = %d, want 0\n%s", code, gw.log.String())
	}
	// Everything the gateway started was finished and acked: nothing is
	// pending, and every delivered message is acked exactly once.
	if n := h.pending("orders"); n != 0 {
		t.Errorf("pending after graceful stop = %d, want 0", n)
	}
	if d, dups := slow.unique(); d == 0 || dups != 0 {
		t.Errorf("delivered %d distinct with %d duplicates, want >0 and 0", d, dups)
	}
}

func TestProcessKill9ThenRestartLosesNothing(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	b.delay.Store(int64(2 * time.Millisecond))
	const n = 3000
	const maxInflight = 64
	extra := fmt.Sprintf("  max_inflight: %d", maxInflight)
	gw := h.spawn("gw-a", []string{"orders"}, extra)
	h.publishN("orders", n, "order.created")
	h.waitDistinct("some delivered", 10*time.Second, b, n/4, false)
	_ = gw.cmd.Process.Kill()
	gw.wait(t, 5*time.Second)
	before, _ := b.unique()
	if before >= n {
		t.Fatalf("all %d delivered before the kill; test proves nothing", n)
	}
	h.spawn("gw-a", []string{"orders"}, extra) // same consumer name: re-reads its own backlog
	h.waitDistinct("all delivered after restart", 60*time.Second, b, n, true)
	h.waitAcked(10*time.Second, "orders")
	_, dups := b.unique()
	t.Logf("kill -9 at %d/%d delivered: %d duplicates after restart (bound: max_inflight %d + ack batch)", before, n, dups, maxInflight)
	if dups > maxInflight+512 {
		t.Errorf("duplicates = %d, more than could have been in flight", dups)
	}
	if len(h.dlq()) != 0 {
		t.Errorf("dlq has %d entries", len(h.dlq()))
	}
}

func TestProcessSurvivorClaimsDeadReplicasEntries(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	b.delay.Store(int64(5 * time.Millisecond))
	const n = 1000
	a := h.spawn("gw-a", []string{"orders"}, "")
	h.spawn("gw-b", []string{"orders"}, "")
	h.publishN("orders", n, "order.created")
	h.waitDistinct("both replicas working", 10*time.Second, b, n/5, false)
	_ = a.cmd.Process.Kill()
	a.wait(t, 5*time.Second)
	ctx := context.Background()
	h.waitDistinct("all delivered by the survivor", 30*time.Second, b, n, true)
	h.waitFor("dead replica has nothing pending", 10*time.Second, func() error {
		p, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: "orders", Group: "gateway",
			Start: "-", End: "+", Count: 10, Consumer: "gw-a"}).Result()
		if err != nil || len(p) != 0 {
			return fmt.Errorf("gw-a pending %d (%v)", len(p), err)
		}
		if h.pending("orders") != 0 {
			return fmt.Errorf("group pending %d", h.pending("orders"))
		}
		return nil
	})
}

func TestProcessRedisRestartResumesRouting(t *testing.T) {
	h := newHarness(t)
	h.writeRules(e2eRules)
	b := h.backend("orders", "orders-1")
	gw := h.spawn("gw-a", []string{"orders"}, "")
	h.publish("orders", "type", "order.created", "payload", `{"id":"before","total":1}`)
	h.waitFor("delivered before restart", 5*time.Second, func() error {
		if b.count() != 1 {
			return fmt.Errorf("got %d", b.count())
		}
		return nil
	})
	h.redis.Kill()
	h.waitFor("not ready while Redis is down", 10*time.Second, func() error {
		resp, err := http.Get("http://" + gw.admin + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 503 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	h.redis.Start() // empty: no persistence, so the stream and group are gone too
	restarted := time.Now()
	h.waitFor("routing resumes within 10s", 10*time.Second, func() error {
		// Publish until one gets through: the gateway re-creates its group
		// from the start of the stream, so early ones are not lost either.
		h.publish("orders", "type", "order.created", "payload", `{"id":"after","total":1}`)
		if b.count() < 2 {
			return fmt.Errorf("nothing routed since the restart")
		}
		return nil
	})
	t.Logf("routing resumed %s after Redis came back", time.Since(restarted).Round(time.Millisecond))
	select {
	case <-gw.done:
		t.Fatal("gateway exited during the Redis outage")
	default:
	}
}

func TestProcessBurstAgainstCappedService(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: slow
    match: 'headers.type == "slow"'
    service: slow
  - name: fast
    match: 'headers.type == "fast"'
    service: fast
`)
	// The capped service is a demoservice process: it counts requests and
	// the most it ever had in flight, and serves at full speed even when
	// this test binary runs under the race detector.
	slowAddr := "127.0.0.1:" + strconv.Itoa(testenv.FreePort(t))
	slow := exec.Command(binary(t, "demoservice"), "-name", "slow", "-id", "slow-1", "-listen", slowAddr,
		"-consul", h.consul.Addr, "-latency", "500us", "-quiet")
	slow.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slow.Process.Kill(); _ = slow.Wait() })
	fast := h.backend("fast", "fast-1")
	const burst = 100_000
	// The burst and the other service's traffic come on separate streams
	// (a stream is a log: within one stream the burst is ahead of anything
	// published after it).
	h.spawn("gw-a", []string{"orders", "payments"}, "  max_inflight: 256\n  service_limits: {slow: 8}")
	h.publishN("orders", burst, "slow")
	stats := func() (received, maxInflight int64) {
		resp, err := http.Get("http://" + slowAddr + "/stats")
		if err != nil {
			return -1, -1
		}
		defer resp.Body.Close()
		var s struct{ Received, Max_inflight int64 }
		_ = json.NewDecoder(resp.Body).Decode(&s)
		return s.Received, s.Max_inflight
	}
	h.waitFor("burst is being worked on", 20*time.Second, func() error {
		if n, _ := stats(); n < 100 {
			return fmt.Errorf("slow got %d", n)
		}
		return nil
	})
	// While the burst drains, the fast service's messages keep flowing.
	var worst time.Duration
	for i := 0; i < 20; i++ {
		sent := time.Now()
		h.publish("payments", "type", "fast", "payload", "{}")
		h.waitFor("fast message delivered", 5*time.Second, func() error {
			if fast.count() != i+1 {
				return fmt.Errorf("fast got %d", fast.count())
			}
			return nil
		})
		worst = max(worst, time.Since(sent))
	}
	got, _ := stats()
	remaining := burst - got
	start := time.Now()
	h.waitFor("burst drained and acked", 5*time.Minute, func() error {
		if n, _ := stats(); n < burst {
			return fmt.Errorf("slow received %d of %d", n, burst)
		}
		if p := h.pending("orders"); p != 0 {
			return fmt.Errorf("pending %d", p)
		}
		return nil
	})
	received, maxSeen := stats()
	t.Logf("burst %d: max concurrent at the capped service %d; fast messages' worst latency %s with %d burst messages still queued; rest drained in %s; received %d (duplicates %d)",
		burst, maxSeen, worst.Round(time.Millisecond), remaining, time.Since(start).Round(time.Millisecond), received, received-burst)
	if maxSeen > 8 {
		t.Errorf("capped service saw %d concurrent requests, want <= 8", maxSeen)
	}
	if worst > time.Second {
		t.Errorf("fast service's message waited %s behind the burst", worst)
	}
	if len(h.dlq()) != 0 {
		t.Errorf("dlq has %d entries", len(h.dlq()))
	}
	if received != burst {
		t.Errorf("capped service received %d requests for %d messages", received, burst)
	}
}
