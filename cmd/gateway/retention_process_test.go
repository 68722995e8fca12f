package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/testenv"
)

// Retention under failures: gateway processes killed, Redis restarted,
// several replicas trimming the same stream.

// TestRetentionGatewayKill9 kills the gateway twice under load while it
// trims every 100 ms: nothing is lost.
func TestRetentionGatewayKill9(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	a.delay.Store(int64(2 * time.Millisecond))
	b.delay.Store(int64(2 * time.Millisecond))
	gw := h.spawn("gw-a", []string{"orders"}, retentionExtra)
	load := h.steadyLoad("orders", 300)
	for i := 0; i < 2; i++ {
		h.waitProgress("routing", 10*time.Second, 300, a, b)
		_ = gw.cmd.Process.Kill()
		gw.wait(t, 5*time.Second)
		time.Sleep(time.Second) // a backlog builds while no gateway runs
		gw = h.spawn("gw-a", []string{"orders"}, retentionExtra)
	}
	h.waitProgress("routing after the last restart", 10*time.Second, 300, a, b)
	row := load.settle(t, "retention + gateway kill -9 x2", 30*time.Second, a, b)
	if n, _ := h.rdb.XLen(context.Background(), "orders").Result(); n >= int64(row.sent) {
		t.Errorf("XLEN %d after settling %d: nothing was trimmed", n, row.sent)
	}
}

// TestRetentionRedisRestart restarts Redis (AOF, fsync always) twice under
// load while the gateway trims every 100 ms: nothing is lost.
func TestRetentionRedisRestart(t *testing.T) {
	r := testenv.StartRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	h := newHarnessOn(t, r, &redis.Options{}, testenv.StartConsul(t), "")
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	h.start([]string{"orders"}, retentionExtra)
	load := h.steadyLoad("orders", 200)
	h.waitProgress("routing before the restart", 10*time.Second, 200, a, b)
	for i := 0; i < 2; i++ {
		h.redis.Kill()
		time.Sleep(2 * time.Second)
		h.redis.Start()
		h.waitProgress("routing after the restart", 20*time.Second, 100, a, b)
	}
	row := load.settle(t, "retention + redis kill -9 x2", 30*time.Second, a, b)
	h.waitFor("trimmed after the restarts", 10*time.Second, func() error {
		if n, _ := h.rdb.XLen(context.Background(), "orders").Result(); n != 0 {
			return fmt.Errorf("XLEN %d of %d sent", n, row.sent)
		}
		return nil
	})
}

// TestRetentionTwoReplicas: two gateway processes sharing the group both
// trim the stream every 100 ms under load; nothing is lost and the stream
// ends empty.
func TestRetentionTwoReplicas(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	a, b := h.lightBackend("orders", "orders-a"), h.lightBackend("orders", "orders-b")
	h.spawn("gw-a", []string{"orders"}, retentionExtra)
	h.spawn("gw-b", []string{"orders"}, retentionExtra)
	load := h.steadyLoad("orders", 300)
	h.waitProgress("routing", 20*time.Second, 1500, a, b)
	row := load.settle(t, "retention on two replicas", 30*time.Second, a, b)
	h.waitFor("stream trimmed empty", 10*time.Second, func() error {
		if n, _ := h.rdb.XLen(context.Background(), "orders").Result(); n != 0 {
			return fmt.Errorf("XLEN %d of %d sent", n, row.sent)
		}
		return nil
	})
}
