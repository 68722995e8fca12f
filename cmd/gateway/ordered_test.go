package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"

	"github.com/msgroute/gateway/internal/config"
	"github.com/msgroute/gateway/internal/partition"
	"github.com/msgroute/gateway/rules"
)

// orderedRules sends every message to service "seq", ordered by body.k.
const orderedRules = `
routes:
  - name: by-key
    service: seq
    order_key: 'body.k'
`

// seqBackend is an instance of service "seq" that answers 503 with
// probability fail (and always 500 to poison messages), sleeps a random
// 0..maxDelay, and records, per key, the order of successful deliveries.
type seqBackend struct {
	addr     string
	fail     float64
	maxDelay time.Duration
	mu       sync.Mutex
	events   []seqEvent // successful deliveries, in the order they succeeded
}

type seqEvent struct {
	key string
	n   int
	at  time.Time
}

func (h *harness) seqBackend(id string, fail float64, maxDelay time.Duration) *seqBackend {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	b := &seqBackend{addr: ln.Addr().String(), fail: fail, maxDelay: maxDelay}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			K      string
			N      int
			Poison bool
		}
		_ = json.Unmarshal(body, &m)
		if b.maxDelay > 0 {
			time.Sleep(time.Duration(rand.Int64N(int64(b.maxDelay) + 1)))
		}
		if m.Poison {
			w.WriteHeader(500)
			return
		}
		if rand.Float64() < b.fail {
			w.WriteHeader(503)
			return
		}
		b.mu.Lock()
		b.events = append(b.events, seqEvent{m.K, m.N, time.Now()})
		b.mu.Unlock()
		w.WriteHeader(200)
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	err = h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: "seq", Address: "127.0.0.1", Port: port,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "60s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

func (b *seqBackend) snapshot() []seqEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]seqEvent(nil), b.events...)
}

// orderReport checks the deliveries of keys (each with messages 0..n-1):
// per key of keys (other keys' events are ignored) the first successful
// delivery of n+1 never comes before that of n (violations), every message arrived (missing), and a repeat is only of
// the key's latest message at the time (badDups); dups counts repeats.
type orderReport struct {
	violations, missing, dups, badDups int
	first                              string // the first violation or bad repeat, for the log
}

func checkOrder(events []seqEvent, keys []string, n int) orderReport {
	var rep orderReport
	next := map[string]int{} // per key: the next message never delivered yet
	for _, k := range keys {
		next[k] = 0
	}
	for _, e := range events {
		if _, ok := next[e.key]; !ok {
			continue // not one of keys
		}
		switch {
		case e.n == next[e.key]:
			next[e.key]++
		case e.n > next[e.key]:
			rep.violations++
			if rep.first == "" {
				rep.first = fmt.Sprintf("key %s: message %d delivered before %d", e.key, e.n, next[e.key])
			}
			next[e.key] = e.n + 1
		default:
			rep.dups++
			if e.n != next[e.key]-1 {
				rep.badDups++
				if rep.first == "" {
					rep.first = fmt.Sprintf("key %s: message %d repeated after %d", e.key, e.n, next[e.key]-1)
				}
			}
		}
	}
	for _, k := range keys {
		if next[k] < n {
			rep.missing += n - next[k]
		}
	}
	return rep
}

func (r orderReport) String() string {
	return fmt.Sprintf("order violations %d, missing %d, duplicates %d (of them not the key's latest message: %d) %s",
		r.violations, r.missing, r.dups, r.badDups, r.first)
}

// publishKeyed publishes n messages for each key, interleaved
// (k0#0, k1#0, ..., k0#1, ...), to stream(key).
func (h *harness) publishKeyed(keys []string, n int, stream func(key string) string) {
	h.t.Helper()
	ctx := context.Background()
	pipe := h.rdb.Pipeline()
	for i := 0; i < n; i++ {
		for _, k := range keys {
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: stream(k), Values: []string{
				"type", "keyed", "payload", fmt.Sprintf(`{"k":%q,"n":%d}`, k, i)}})
		}
		if pipe.Len() >= 1000 {
			if _, err := pipe.Exec(ctx); err != nil {
				h.t.Fatal(err)
			}
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		h.t.Fatal(err)
	}
}

// spawnOrdered starts a gateway process with max_deliveries md.
func (h *harness) spawnOrdered(name string, streams []string, md int) *gwProc {
	h.t.Helper()
	return h.spawnWith(name, streams, fmt.Sprintf("  max_deliveries: %d", md))
}

// spawnWith is spawn with consumer lines that replace the harness's
// max_deliveries.
func (h *harness) spawnWith(name string, streams []string, consumerExtra string) *gwProc {
	h.t.Helper()
	p, _ := h.writeConfig("gateway-"+name+".yaml", name, streams, consumerExtra)
	data, err := os.ReadFile(p)
	if err != nil {
		h.t.Fatal(err)
	}
	text := strings.Replace(string(data), "  max_deliveries: 3\n", "", 1)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h.spawnConfig(name, p)
}

// leaseOwner returns the consumer owning stream's lease ("" when none).
func (h *harness) leaseOwner(stream string) string {
	v, _ := h.rdb.Get(context.Background(), "gateway:lease:{"+stream+"}:gateway").Result()
	if i := strings.LastIndexByte(v, ' '); i >= 0 {
		return v[:i]
	}
	return v
}

func keysN(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	return keys
}

// testOrderedReplicas: 2 replicas, 1 ordered stream, 50 keys x 200
// messages, 10% 503s and 0-5 ms latency; stop is nil, or kills or
// terminates the owner midway.
func testOrderedReplicas(t *testing.T, stop syscall.Signal) {
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.10, 5*time.Millisecond)
	procs := map[string]*gwProc{
		"gw-a": h.spawnOrdered("gw-a", []string{"orders"}, 20),
		"gw-b": h.spawnOrdered("gw-b", []string{"orders"}, 20),
	}
	keys := keysN(50)
	const per = 200
	total := len(keys) * per
	h.waitFor("a replica owns orders", 10*time.Second, func() error {
		if h.leaseOwner("orders") == "" {
			return fmt.Errorf("no owner")
		}
		return nil
	})
	start := time.Now()
	h.publishKeyed(keys, per, func(string) string { return "orders" })
	if stop != 0 {
		h.waitFor("half delivered", 30*time.Second, func() error {
			if n := len(b.snapshot()); n < total/2 {
				return fmt.Errorf("%d delivered", n)
			}
			return nil
		})
		owner := h.leaseOwner("orders")
		p := procs[owner]
		if p == nil {
			t.Fatalf("lease owner %q is not a replica", owner)
		}
		at := time.Now()
		before := len(b.snapshot())
		p.signal(t, stop)
		var took time.Duration
		h.waitFor("the other replica owns orders", 20*time.Second, func() error {
			if o := h.leaseOwner("orders"); o == "" || o == owner {
				return fmt.Errorf("owner %q", o)
			}
			took = time.Since(at)
			return nil
		})
		first := time.Duration(0)
		h.waitFor("deliveries by the new owner", 20*time.Second, func() error {
			for _, e := range b.snapshot() {
				if e.at.After(at.Add(took)) {
					first = e.at.Sub(at)
					return nil
				}
			}
			return fmt.Errorf("none yet")
		})
		t.Logf("%v to the owner %s at %d/%d delivered: lease taken over after %v, first delivery by the new owner %v after the signal (claim_idle %s)",
			stop, owner, before, total, took.Round(time.Millisecond), first.Round(time.Millisecond), h.claimIdle)
		if stop == syscall.SIGTERM {
			if code := p.wait(t, 20*time.Second); code != 0 {
				t.Errorf("owner exited %d after SIGTERM", code)
			}
		}
	}
	h.waitFor("every message delivered", 60*time.Second, func() error {
		if rep := checkOrder(b.snapshot(), keys, per); rep.missing > 0 {
			return fmt.Errorf("%v", rep)
		}
		return nil
	})
	elapsed := time.Since(start)
	h.waitAcked(20*time.Second, "orders")
	rep := checkOrder(b.snapshot(), keys, per)
	t.Logf("%d messages (%d keys x %d) in %v: %v", total, len(keys), per, elapsed.Round(time.Millisecond), rep)
	if rep.violations != 0 || rep.missing != 0 || rep.badDups != 0 {
		t.Errorf("%v; want no violations, nothing missing, repeats only of a key's latest message", rep)
	}
	// Without a stop, a repeat still happens when an attempt times out
	// (dispatch.timeout 500ms) on a loaded machine after the service
	// handled it: allowed, as a repeat of the key's latest message.
	if stop == 0 {
		// The replica that never owned the stream never read it: Redis
		// creates a group's consumer on its first XREADGROUP or XAUTOCLAIM.
		cs, err := h.rdb.XInfoConsumers(context.Background(), "orders", "gateway").Result()
		if err != nil || len(cs) != 1 || cs[0].Name != h.leaseOwner("orders") {
			t.Errorf("consumers of orders = %+v, %v; want only the owner %s", cs, err, h.leaseOwner("orders"))
		}
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries: %v", len(d), d[0].Values)
	}
}

func TestOrderedTwoReplicas(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, 0)
}

func TestOrderedOwnerKilled(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, syscall.SIGKILL)
}

func TestOrderedOwnerSIGTERM(t *testing.T) {
	t.Parallel()
	testOrderedReplicas(t, syscall.SIGTERM)
}

// TestOrderedPartitionsRebalance: 4 partition streams over 2, then 3, then
// 2 replicas; ownership is spread at each stage and order holds throughout.
func TestOrderedPartitionsRebalance(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.05, 3*time.Millisecond)
	streams := []string{"orders.0", "orders.1", "orders.2", "orders.3"}
	keys := keysN(40)
	part := func(k string) string { return partition.Stream("orders", k, len(streams)) }
	procs := map[string]*gwProc{}
	spawn := func(name string) { procs[name] = h.spawnOrdered(name, streams, 20) }
	spread := func(stage string, names ...string) {
		h.waitFor(stage+": streams spread", 20*time.Second, func() error {
			count := map[string]int{}
			for _, s := range streams {
				count[h.leaseOwner(s)]++
			}
			if count[""] > 0 {
				return fmt.Errorf("unowned streams: %v", count)
			}
			for _, n := range names {
				if count[n] == 0 || count[n] == len(streams) {
					return fmt.Errorf("ownership %v", count)
				}
				// gateway_stream_owned says the same as the leases.
				owned := 0
				for _, s := range streams {
					v := metricValue(h.t, procs[n].admin, `gateway_stream_owned{stream="`+s+`"}`)
					if v == 1 {
						owned++
						if h.leaseOwner(s) != n {
							return fmt.Errorf("%s reports owning %s, lease says %s", n, s, h.leaseOwner(s))
						}
					}
				}
				if owned != count[n] {
					return fmt.Errorf("%s: gateway_stream_owned sums to %d, leases to %d", n, owned, count[n])
				}
			}
			t.Logf("%s: ownership %v", stage, count)
			return nil
		})
	}
	spawn("gw-a")
	spawn("gw-b")
	spread("2 replicas", "gw-a", "gw-b")
	const per = 60
	var round atomic.Int32
	publish := func() { // each round publishes messages round*per/3 .. of every key
		r := int(round.Add(1)) - 1
		ctx := context.Background()
		pipe := h.rdb.Pipeline()
		for i := r * per / 3; i < (r+1)*per/3; i++ {
			for _, k := range keys {
				pipe.XAdd(ctx, &redis.XAddArgs{Stream: part(k), Values: []string{
					"payload", fmt.Sprintf(`{"k":%q,"n":%d}`, k, i)}})
			}
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	publish()
	spawn("gw-c")
	spread("3 replicas", "gw-a", "gw-b", "gw-c")
	// What GET /streams reports: ordered, and the lease's owner.
	set, err := rules.Compile([]rules.Source{{Name: "r.yaml", Data: []byte(orderedRules)}})
	if err != nil {
		t.Fatal(err)
	}
	probe, err := newLeases(h.rdb, config.Consumer{Group: "gateway", Name: "probe", ClaimIdle: 2 * time.Second}, nil)
	if err != nil {
		t.Fatal(err)
	}
	so := streamOrdering{rules: func() *rules.Set { return set }, leases: probe}
	for _, s := range streams {
		ordered, owner, err := so.Ordering(context.Background(), s)
		if err != nil || !ordered || owner != h.leaseOwner(s) || owner == "" {
			t.Errorf("Ordering(%s) = %v, %q, %v; want true, %q", s, ordered, owner, err, h.leaseOwner(s))
		}
	}
	publish()
	procs["gw-c"].signal(t, syscall.SIGTERM)
	procs["gw-c"].wait(t, 20*time.Second)
	spread("back to 2 replicas", "gw-a", "gw-b")
	publish()
	h.waitFor("every message delivered", 60*time.Second, func() error {
		if rep := checkOrder(b.snapshot(), keys, per); rep.missing > 0 {
			return fmt.Errorf("%v", rep)
		}
		return nil
	})
	h.waitAcked(20*time.Second, streams...)
	rep := checkOrder(b.snapshot(), keys, per)
	t.Logf("partitions through 2, 3, 2 replicas: %v", rep)
	if rep.violations != 0 || rep.missing != 0 || rep.badDups != 0 {
		t.Errorf("%v; want no violations, nothing missing, repeats only of a key's latest message", rep)
	}
}

// TestOrderedPoisonMessage: a message its service always refuses is
// dead-lettered after max_deliveries; its key then moves on, and other keys
// are never held up by it. A message without a key is dead-lettered as
// bad_message at once.
//
// Each message also goes, by fan-out, to an unordered route (service
// audit): there the poison key's later messages are not held back.
func TestOrderedPoisonMessage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: by-key
    service: seq
    order_key: 'body.k'
    continue: true
  - name: audit
    service: audit
`)
	b := h.seqBackend("seq-1", 0, 0)
	audit := h.backend("audit", "audit-1")
	h.spawnOrdered("gw-a", []string{"orders"}, 6)
	keys := keysN(20)
	const per = 20
	ctx := context.Background()
	pipe := h.rdb.Pipeline()
	for i := 0; i < per; i++ {
		for _, k := range append([]string{"poison"}, keys...) {
			payload := fmt.Sprintf(`{"k":%q,"n":%d}`, k, i)
			if k == "poison" && i == 0 {
				payload = `{"k":"poison","n":0,"poison":true}`
			}
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"payload", payload}})
		}
	}
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"payload", `{"n":1}`}})
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// The unordered route has the poison key's messages while the ordered
	// one still retries the poison.
	h.waitFor("audit got every message of the poison key", 20*time.Second, func() error {
		seen := map[int]bool{}
		for _, r := range audit.received() {
			var m struct {
				K string
				N int
			}
			_ = json.Unmarshal([]byte(r.Body), &m)
			if m.K == "poison" {
				seen[m.N] = true
			}
		}
		if len(seen) != per {
			return fmt.Errorf("audit got %d of %d", len(seen), per)
		}
		return nil
	})
	for _, m := range h.dlq() {
		if m.Values["dlq_reason"] == "max_deliveries" {
			t.Errorf("the poison was dead-lettered before audit had its key's messages: the unordered route was held back")
		}
	}
	h.waitFor("poison and keyless messages dead-lettered", 30*time.Second, func() error {
		if n := len(h.dlq()); n != 2 {
			return fmt.Errorf("dlq has %d", n)
		}
		return nil
	})
	h.waitFor("every other message delivered", 30*time.Second, func() error {
		ev := b.snapshot()
		if rep := checkOrder(ev, keys, per); rep.missing > 0 {
			return fmt.Errorf("other keys: %v", rep)
		}
		var poisonKey []seqEvent
		for _, e := range ev {
			if e.key == "poison" {
				poisonKey = append(poisonKey, e)
			}
		}
		if len(poisonKey) < per-1 {
			return fmt.Errorf("poison key: %d of %d delivered", len(poisonKey), per-1)
		}
		return nil
	})
	h.waitAcked(10*time.Second, "orders")
	reasons := map[string]string{}
	var poisonAt time.Time
	for _, m := range h.dlq() {
		reasons[fmt.Sprint(m.Values["payload"])] = fmt.Sprintf("%v attempts=%v err=%v", m.Values["dlq_reason"], m.Values["dlq_attempts"], m.Values["dlq_error"])
		if m.Values["dlq_reason"] == "max_deliveries" {
			ms, _ := strconv.ParseInt(fmt.Sprint(m.Values["dlq_at"]), 10, 64)
			poisonAt = time.UnixMilli(ms)
		}
	}
	if r := reasons[`{"k":"poison","n":0,"poison":true}`]; !strings.HasPrefix(r, "max_deliveries attempts=6") {
		t.Errorf("poison message dead-lettered as %q, want max_deliveries after 6", r)
	}
	if r := reasons[`{"n":1}`]; !strings.HasPrefix(r, "bad_message") || !strings.Contains(r, "order_key") {
		t.Errorf("keyless message dead-lettered as %q, want bad_message naming order_key", r)
	}
	ev := b.snapshot()
	var lastOther, firstPoisonKey time.Time
	for _, e := range ev {
		if e.key == "poison" {
			if firstPoisonKey.IsZero() {
				firstPoisonKey = e.at
			}
		} else if e.at.After(lastOther) {
			lastOther = e.at
		}
	}
	t.Logf("poison dead-lettered at +%v after the other keys finished; its key's next message %v after that",
		poisonAt.Sub(lastOther).Round(time.Millisecond), firstPoisonKey.Sub(poisonAt).Round(time.Millisecond))
	if !lastOther.Before(poisonAt) {
		t.Errorf("other keys finished at %v, after the poison was dead-lettered at %v: they were held up", lastOther, poisonAt)
	}
	if firstPoisonKey.Before(poisonAt.Add(-time.Millisecond)) { // dlq_at has ms resolution
		t.Errorf("poison key's next message delivered at %v, before the poison was dead-lettered at %v", firstPoisonKey, poisonAt)
	}
	next := 1 // the poison key's messages after the poison, in order
	for _, e := range ev {
		if e.key == "poison" && e.n == next {
			next++
		} else if e.key == "poison" && e.n > next {
			t.Errorf("poison key: message %d delivered before %d", e.n, next)
		}
	}
}

// metricValue returns the value of the sample named series (name and
// labels as exposed) on the admin server at admin, or -1 when absent.
func metricValue(t *testing.T, admin, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// TestOrderedRuleReload: reloads that remove and add order_key switch a
// stream between unordered and ordered reading without losing anything,
// and messages published once ordering is back are in order.
func TestOrderedRuleReload(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.writeRules(orderedRules)
	b := h.seqBackend("seq-1", 0.05, 2*time.Millisecond)
	gw := h.spawnOrdered("gw-a", []string{"orders"}, 20)
	owned := func(want bool) func() error {
		return func() error {
			if got := h.leaseOwner("orders") == "gw-a"; got != want {
				return fmt.Errorf("lease held: %v", got)
			}
			if v := metricValue(t, gw.admin, `gateway_stream_owned{stream="orders"}`); (v == 1) != want {
				return fmt.Errorf("gateway_stream_owned = %v", v)
			}
			return nil
		}
	}
	h.waitFor("ordered reading", 10*time.Second, owned(true))
	first := keysN(30)
	h.publishKeyed(first, 100, func(string) string { return "orders" })
	h.waitFor("some delivered", 20*time.Second, func() error {
		if n := len(b.snapshot()); n < 500 {
			return fmt.Errorf("%d delivered", n)
		}
		return nil
	})
	h.writeRules(strings.Replace(orderedRules, "    order_key: 'body.k'\n", "", 1))
	gw.signal(t, syscall.SIGHUP)
	h.waitFor("unordered reading (lease given up)", 20*time.Second, owned(false))
	h.writeRules(orderedRules)
	gw.signal(t, syscall.SIGHUP)
	h.waitFor("ordered reading again", 20*time.Second, owned(true))
	second := make([]string, 30)
	for i := range second {
		second[i] = "later-" + strconv.Itoa(i)
	}
	h.publishKeyed(second, 50, func(string) string { return "orders" })
	h.waitFor("every message delivered", 60*time.Second, func() error {
		ev := b.snapshot()
		if rep := checkOrder(ev, first, 100); rep.missing > 0 {
			return fmt.Errorf("before the reloads: %v", rep)
		}
		if rep := checkOrder(ev, second, 50); rep.missing > 0 {
			return fmt.Errorf("after: %v", rep)
		}
		return nil
	})
	h.waitAcked(20*time.Second, "orders")
	rep := checkOrder(b.snapshot(), second, 50)
	t.Logf("published after ordering came back: %v", rep)
	if rep.violations != 0 || rep.badDups != 0 {
		t.Errorf("after the reloads: %v", rep)
	}
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries", len(d))
	}
}
