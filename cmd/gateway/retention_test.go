package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// retentionExtra turns retention on with a short interval (consumer keys).
const retentionExtra = "  retention: acked\n  retention_interval: 100ms"

// xlenSampler records the largest XLEN of stream seen while it runs.
type xlenSampler struct {
	stop, done chan struct{}
	max        int64
}

func (h *harness) sampleXLen(stream string) *xlenSampler {
	s := &xlenSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			if n, err := h.rdb.XLen(context.Background(), stream).Result(); err == nil && n > s.max {
				s.max = n
			}
		}
	}()
	return s
}

func (s *xlenSampler) halt() int64 {
	close(s.stop)
	<-s.done
	return s.max
}

// TestRetentionSteadyLoadStaysBounded: with retention acked under a steady
// load, XLEN stays far below what was sent, every message is delivered
// (nothing unread was trimmed), messages waiting pending for a service
// without healthy instances stay in the stream throughout and are
// delivered once it is back, and the stream ends empty.
func TestRetentionSteadyLoadStaysBounded(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.writeRules(`
routes:
  - name: orders
    match: 'headers.type == "order.created"'
    service: orders
  - name: billing
    match: 'headers.type == "invoice"'
    service: billing
`)
	a := h.lightBackend("orders", "orders-a")
	billing := h.lightBackend("billing", "billing-a")
	h.setHealth(billing, false)
	h.start([]string{"orders"}, retentionExtra)
	load := h.steadyLoad("orders", 500)
	h.waitProgress("routing", 10*time.Second, 200, a)
	sampler := h.sampleXLen("orders")
	h.waitProgress("steady load", 60*time.Second, 2500, a)
	maxLen := sampler.halt()
	// Entries pending for a service without healthy instances hold
	// trimming back (everything after the oldest of them stays) and are
	// never trimmed themselves.
	var parked []string
	for i := 0; i < 5; i++ {
		parked = append(parked, h.publish("orders", "type", "invoice", "payload", "{}"))
	}
	checks, target := 0, deliveredSoFar(a)+1000
	for deliveredSoFar(a) < target {
		for _, id := range parked {
			if got, _ := h.rdb.XRange(ctx, "orders", id, id).Result(); len(got) != 1 {
				t.Fatalf("pending entry %s (its service has no healthy instance) was trimmed", id)
			}
		}
		checks++
		time.Sleep(50 * time.Millisecond)
		if checks > 1200 {
			t.Fatalf("load too slow: %d delivered of %d", deliveredSoFar(a), target)
		}
	}
	h.setHealth(billing, true)
	row := load.settle(t, "retention acked, steady load", 30*time.Second, a)
	h.waitDistinct("parked invoices delivered", 20*time.Second, billing, len(parked), true)
	// 500 msg/s with a 100 ms trim interval leaves well under a second of
	// entries; 1500 allows for a slow, shared machine.
	if maxLen > 1500 {
		t.Errorf("XLEN reached %d under load (sent %d), want it bounded below 1500", maxLen, row.sent)
	}
	h.waitFor("stream trimmed empty", 10*time.Second, func() error {
		if n, _ := h.rdb.XLen(ctx, "orders").Result(); n != 0 {
			return fmt.Errorf("XLEN %d", n)
		}
		return nil
	})
	t.Logf("sent %d, largest XLEN while routing %d, parked entries checked present %d times", row.sent, maxLen, checks)
}

// TestRetentionSecondGroupHoldsTrimming: another application's group that
// is stopped holds trimming back; as it reads, trimming follows it, never
// past its pending entries; when it has caught up it has read every entry.
func TestRetentionSecondGroupHoldsTrimming(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.writeRules(faultRules)
	a := h.lightBackend("orders", "orders-a")
	if err := h.rdb.XGroupCreateMkStream(ctx, "orders", "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	h.start([]string{"orders"}, retentionExtra)
	const n = 600
	h.publishN("orders", n, "order.created")
	h.waitDistinct("gateway delivered all", 20*time.Second, a, n, true)
	h.waitAcked(10*time.Second, "orders")
	trimmed := func() int64 { return int64(h.streamsStatus(t, "")[0]["trimmed_total"].(float64)) }
	// The gateway finished everything, audit nothing: several trim passes
	// later nothing is trimmed.
	h.waitFor("a trim pass after the gateway finished", 10*time.Second, func() error {
		if st := h.streamsStatus(t, "")[0]; st["pending"].(float64) != 0 || st["lag"].(float64) != 0 {
			return fmt.Errorf("status %v", st)
		}
		return nil
	})
	h.waitPasses(t, "", 3) // a trim must not happen
	if l, _ := h.rdb.XLen(ctx, "orders").Result(); l != n || trimmed() != 0 {
		t.Fatalf("stopped group: XLEN = %d, trimmed %d; want %d, 0", l, trimmed(), n)
	}

	seen := map[string]bool{}
	auditRead := func(count int) []string {
		res, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "audit", Consumer: "a1",
			Streams: []string{"orders", ">"}, Count: int64(count), Block: -1}).Result()
		if err != nil && err != redis.Nil {
			t.Fatal(err)
		}
		var ids []string
		for _, s := range res {
			for _, m := range s.Messages {
				if m.Values["seq"] == nil {
					t.Fatalf("audit read entry %s without fields", m.ID)
				}
				seen[m.Values["seq"].(string)] = true
				ids = append(ids, m.ID)
			}
		}
		return ids
	}
	// Audit reads 200 slowly and acks all but its first 50 of them.
	var held []string
	for i := 0; i < 4; i++ {
		ids := auditRead(50)
		if i == 0 {
			held = ids
			continue
		}
		h.rdb.XAck(ctx, "orders", "audit", ids...)
	}
	h.waitPasses(t, "", 3) // the held entries must stay
	for _, id := range held {
		if got, _ := h.rdb.XRange(ctx, "orders", id, id).Result(); len(got) != 1 {
			t.Fatalf("entry %s pending in group audit was trimmed", id)
		}
	}
	if l, _ := h.rdb.XLen(ctx, "orders").Result(); l != n {
		t.Errorf("audit's oldest pending is the first entry: XLEN = %d, want %d", l, n)
	}
	h.rdb.XAck(ctx, "orders", "audit", held...)
	h.waitFor("trimmed up to audit's unread entries", 10*time.Second, func() error {
		if l, _ := h.rdb.XLen(ctx, "orders").Result(); l != n-200 {
			return fmt.Errorf("XLEN %d, want %d", l, n-200)
		}
		return nil
	})
	for len(seen) < n {
		ids := auditRead(100)
		if len(ids) == 0 {
			break
		}
		h.rdb.XAck(ctx, "orders", "audit", ids...)
	}
	for i := 0; i < n; i++ {
		if !seen[strconv.Itoa(i)] {
			t.Errorf("audit never read seq %d: trimmed before it caught up", i)
		}
	}
	h.waitFor("everything trimmed once audit caught up", 10*time.Second, func() error {
		if l, _ := h.rdb.XLen(ctx, "orders").Result(); l != 0 || trimmed() != n {
			return fmt.Errorf("XLEN %d, trimmed_total %d", l, trimmed())
		}
		return nil
	})
}

// waitPasses waits until the gateway's retention has inspected the first
// consumed stream n more times (its oldest entry's age in /streams
// changes on every pass while the stream is not empty). With interval
// 100 ms every pass trims; 3 leaves a margin.
func (h *harness) waitPasses(t *testing.T, token string, n int) {
	t.Helper()
	last, changes := h.streamsStatus(t, token)[0]["oldest_age_seconds"], 0
	h.waitFor(fmt.Sprintf("%d retention passes", n), 15*time.Second, func() error {
		st := h.streamsStatus(t, token)[0]
		if st["length"].(float64) == 0 {
			t.Fatalf("stream %v is empty while passes are counted: everything was trimmed", st["stream"])
		}
		if age := st["oldest_age_seconds"]; age != last {
			last, changes = age, changes+1
		}
		if changes < n {
			return fmt.Errorf("%d passes seen", changes)
		}
		return nil
	})
}

// streamsStatus GETs /streams (with token, if set) and returns its list.
func (h *harness) streamsStatus(t *testing.T, token string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+h.admin+"/streams", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /streams = %d", resp.StatusCode)
	}
	var body struct {
		Streams []map[string]any `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Streams
}

// TestStreamsEndpoint: GET /streams needs the admin token and reports each
// consumed stream's figures, consistent with the Prometheus gauges.
func TestStreamsEndpoint(t *testing.T) {
	const token = "adm-streams-81"
	t.Setenv("GATEWAY_ADMIN_TOKEN", token)
	h := newHarness(t)
	ctx := context.Background()
	a := h.lightBackend("orders", "orders-a")
	// billing's only instance is unhealthy: its messages wait pending.
	h.setHealth(h.lightBackend("billing", "billing-a"), false)
	h.writeRules(`
routes:
  - name: orders
    match: 'headers.type == "order.created"'
    service: orders
  - name: billing
    match: 'headers.type == "invoice"'
    service: billing
`)
	if err := h.rdb.XGroupCreateMkStream(ctx, "orders", "audit", "0").Err(); err != nil {
		t.Fatal(err)
	}
	h.start([]string{"orders", "payments"}, retentionExtra)
	if code := statusOf(t, "http://"+h.admin+"/streams", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /streams without token = %d, want 401", code)
	}
	h.publishN("orders", 40, "order.created")
	h.publishN("orders", 3, "invoice") // left pending: billing has no healthy instance
	h.waitDistinct("orders delivered", 20*time.Second, a, 40, true)
	var st map[string]any
	h.waitFor("/streams shows the state", 15*time.Second, func() error {
		list := h.streamsStatus(t, token)
		if len(list) != 2 || list[0]["stream"] != "orders" || list[1]["stream"] != "payments" {
			return fmt.Errorf("streams %v", list)
		}
		st = list[0]
		if st["length"].(float64) != 43 || st["lag"].(float64) != 0 || st["pending"].(float64) != 3 {
			return fmt.Errorf("orders %v: want length 43 (audit holds), lag 0, pending 3", st)
		}
		return nil
	})
	if st["group"] != "gateway" || st["ordered"] != false || st["owner"] != "" || st["trimmed_total"].(float64) != 0 {
		t.Errorf("orders status %v: want group gateway, ordered false, owner \"\", trimmed_total 0", st)
	}
	if age := st["oldest_age_seconds"].(float64); age <= 0 || age > 60 {
		t.Errorf("oldest_age_seconds = %v", age)
	}
	if age := st["oldest_unfinished_age_seconds"].(float64); age <= 0 || age > st["oldest_age_seconds"].(float64) {
		t.Errorf("oldest_unfinished_age_seconds = %v, want positive (audit has read nothing)", age)
	}
	for _, key := range []string{"consumed_per_sec", "owner"} {
		if _, ok := st[key]; !ok {
			t.Errorf("orders status lacks %q: %v", key, st)
		}
	}
	metrics := h.scrape(t, token)
	for _, want := range []string{`gateway_pending_messages{stream="orders"} 3`, `gateway_consumer_lag{stream="orders"} 0`,
		`gateway_stream_trimmed_total{stream="orders"} 0`, `gateway_stream_trimmed_total{stream="payments"} 0`,
		`gateway_stream_oldest_unfinished_age_seconds{stream="orders"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Audit goes away: everything but the gateway's 3 pending is trimmed.
	if err := h.rdb.XGroupDestroy(ctx, "orders", "audit").Err(); err != nil {
		t.Fatal(err)
	}
	h.waitFor("trimmed to the pending entries", 15*time.Second, func() error {
		st := h.streamsStatus(t, token)[0]
		if st["length"].(float64) > 3 || st["trimmed_total"].(float64) < 40 || st["lag"].(float64) != 0 {
			return fmt.Errorf("orders %v", st)
		}
		return nil
	})
}

// scrape GETs /metrics with the admin token.
func (h *harness) scrape(t *testing.T, token string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+h.admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func statusOf(t *testing.T, url, token string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestDLQMaxLenEndToEnd: with consumer.dlq_maxlen the running gateway
// keeps the newest dead letters, drops the oldest and counts them.
func TestDLQMaxLenEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.writeRules(faultRules)
	h.lightBackend("orders", "orders-a")
	h.start([]string{"orders"}, "  dlq_maxlen: 5\n  retention_interval: 100ms")
	var ids []string
	for i := 0; i < 12; i++ {
		// One at a time, so the dead letters are written in this order.
		id := h.publish("orders", "type", "unrouted", "payload", "{}")
		ids = append(ids, id)
		h.waitFor("dead-lettered "+id, 10*time.Second, func() error {
			for _, m := range h.dlq() {
				if m.Values["dlq_id"] == id {
					return nil
				}
			}
			return fmt.Errorf("not in the dlq")
		})
	}
	h.waitFor("dlq bounded to the newest 5", 15*time.Second, func() error {
		dlq := h.dlq()
		if len(dlq) != 5 {
			return fmt.Errorf("dlq holds %d", len(dlq))
		}
		for i, m := range dlq {
			if m.Values["dlq_id"] != ids[7+i] {
				return fmt.Errorf("dlq[%d] is %v, want dead letter of %s", i, m.Values["dlq_id"], ids[7+i])
			}
		}
		return nil
	})
	h.waitFor("trimmed dead letters counted", 10*time.Second, func() error {
		if m := h.get("/metrics"); !strings.Contains(m, `gateway_stream_trimmed_total{stream="gateway:dlq"} 7`) {
			return fmt.Errorf("metric not at 7 yet")
		}
		return nil
	})
}
