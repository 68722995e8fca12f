package main

// Helpers of the ordered-delivery tests: a service that records the order
// of successful deliveries per key, and the order checker.

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
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
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

// streamOwnership is one stream's ordered flag and owner as GET /streams
// on admin reports them.
type streamOwnership struct {
	Ordered bool   `json:"ordered"`
	Owner   string `json:"owner"`
}

// streamsOwnership GETs /streams from admin (no token) and returns each
// stream's ordered flag and owner.
func streamsOwnership(admin string) (map[string]streamOwnership, error) {
	resp, err := http.Get("http://" + admin + "/streams")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /streams = %d", resp.StatusCode)
	}
	var body struct {
		Streams []struct {
			Stream string `json:"stream"`
			streamOwnership
		} `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /streams: %w", err)
	}
	out := make(map[string]streamOwnership, len(body.Streams))
	for _, s := range body.Streams {
		out[s.Stream] = s.streamOwnership
	}
	return out, nil
}
