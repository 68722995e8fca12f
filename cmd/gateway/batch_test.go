package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"
	"github.com/redis/go-redis/v9"
)

// batchEntry is one entry of a batch request as a service decodes it.
type batchEntry struct {
	EntryID     string            `json:"entryId"`
	Stream      string            `json:"stream"`
	ContentType string            `json:"contentType"`
	Payload     json.RawMessage   `json:"payload"`
	Metadata    map[string]string `json:"metadata"`
}

// batchRequest is one batch request a batch service received.
type batchRequest struct {
	At          time.Time
	Method      string
	Path        string
	ContentType string
	Entries     []batchEntry
}

// batchService is a real HTTP service instance, registered in Consul, that
// takes batch requests. answer decides each request's reply from its
// index (0 for the first request) and entries; by default every entry is
// answered by its "want" metadata: success, retry, drop, or omit (left out
// of the answer).
type batchService struct {
	addr     string
	delay    atomic.Int64 // service time of the first request, ns
	inflight atomic.Int64
	maxSeen  atomic.Int64
	mu       sync.Mutex
	reqs     []batchRequest
	answer   func(n int, entries []batchEntry) (int, string)
}

func (h *harness) batchService(service, id string, answer func(n int, entries []batchEntry) (int, string)) *batchService {
	h.t.Helper()
	if answer == nil {
		answer = answerByWant
	}
	s := &batchService{answer: answer}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.inflight.Add(1)
		defer s.inflight.Add(-1)
		for m := s.maxSeen.Load(); n > m && !s.maxSeen.CompareAndSwap(m, n); m = s.maxSeen.Load() {
		}
		at := time.Now()
		body, _ := io.ReadAll(r.Body)
		var doc struct {
			Entries []batchEntry `json:"entries"`
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			h.t.Errorf("batch request is not JSON: %v: %s", err, body)
		}
		s.mu.Lock()
		idx := len(s.reqs)
		s.reqs = append(s.reqs, batchRequest{At: at, Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"), Entries: doc.Entries})
		s.mu.Unlock()
		if d := s.delay.Load(); d > 0 && idx == 0 {
			time.Sleep(time.Duration(d))
		}
		status, text := s.answer(idx, doc.Entries)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, text)
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { srv.Close() })
	err = h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: service, Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "30s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// answerByWant answers each entry by its "want" metadata (default success).
func answerByWant(_ int, entries []batchEntry) (int, string) { return 200, statusesByWant(entries) }

func statusesByWant(entries []batchEntry) string {
	type st struct {
		EntryID string `json:"entryId"`
		Status  string `json:"status"`
	}
	out := []st{}
	for _, e := range entries {
		switch e.Metadata["want"] {
		case "omit":
		case "retry":
			out = append(out, st{e.EntryID, "RETRY"})
		case "drop":
			out = append(out, st{e.EntryID, "DROP"})
		default:
			out = append(out, st{e.EntryID, "SUCCESS"})
		}
	}
	b, _ := json.Marshal(map[string]any{"statuses": out})
	return string(b)
}

func (s *batchService) requests() []batchRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.reqs)
}

// attempts returns, per entry ID, the delivery_attempt of each time the
// entry was sent, in order.
func (s *batchService) attempts() map[string][]string {
	out := map[string][]string{}
	for _, r := range s.requests() {
		for _, e := range r.Entries {
			out[e.EntryID] = append(out[e.EntryID], e.Metadata["delivery_attempt"])
		}
	}
	return out
}

// sizes returns each request's entry count, in arrival order.
func (s *batchService) sizes() []int {
	var out []int
	for _, r := range s.requests() {
		out = append(out, len(r.Entries))
	}
	return out
}

// dlqByID returns the dead letters by original STREAM/ENTRY_ID.
func (h *harness) dlqByID() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, m := range h.dlq() {
		out[m.Values["dlq_stream"].(string)+"/"+m.Values["dlq_id"].(string)] = m.Values
	}
	return out
}

// publishAll XADDs msgs in one transaction, so that one read takes them
// all, and returns their entry IDs.
func (h *harness) publishAll(stream string, msgs [][]string) []string {
	h.t.Helper()
	ctx := context.Background()
	cmds := make([]*redis.StringCmd, len(msgs))
	_, err := h.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, fields := range msgs {
			cmds[i] = p.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields})
		}
		return nil
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ids := make([]string, len(msgs))
	for i, c := range cmds {
		ids[i] = c.Val()
	}
	return ids
}

// payloads returns n messages with JSON payloads {"n":i}.
func payloads(n int) [][]string {
	out := make([][]string, n)
	for i := range out {
		out[i] = []string{"payload", fmt.Sprintf(`{"n":%d}`, i)}
	}
	return out
}

// waitSees waits until the gateway lists every one of svcs's instances,
// so a batch read next is not parked for want of an instance.
func (h *harness) waitSees(svcs ...*batchService) {
	h.t.Helper()
	h.waitFor("gateway sees the instances", 15*time.Second, func() error {
		body := h.get("/instances")
		for _, s := range svcs {
			if !strings.Contains(body, s.addr) {
				return fmt.Errorf("%s not in /instances: %s", s.addr, body)
			}
		}
		return nil
	})
}

// TestBatchMixedStatuses: one batch of eight entries answered per entry
// with SUCCESS, RETRY, DROP or nothing. Each entry keeps its own outcome:
// SUCCESS delivered once; DROP dead-lettered at once (permanent_error);
// RETRY and a missing status retried on redeliveries (delivery_attempt
// 1, 2, 3) until max_deliveries (3 in the harness) dead-letters them.
// Every entry is acked. The request carries the CONTRACT's document.
func TestBatchMixedStatuses(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: bulk
    streams: [orders]
    service: bulk
    path: /bulk
    batch: {max_messages: 8, max_wait: 100ms}
`)
	svc := h.batchService("bulk", "bulk-1", nil)
	wants := []string{"success", "retry", "drop", "omit", "success", "retry", "drop", "omit"}
	var msgs [][]string
	for i, w := range wants {
		payload := fmt.Sprintf(`{"n":%d,"s":"x\"y"}`, i)
		if i == 4 {
			payload = "plain \"text\"\n" // not JSON: sent as a JSON string
		}
		msgs = append(msgs, []string{"payload", payload, "want", w, "note", "a\"b\\c\n"})
	}
	h.start([]string{"orders"}, "")
	h.waitSees(svc)
	ids := h.publishAll("orders", msgs)
	h.waitAcked(40*time.Second, "orders")
	h.waitFor("six dead letters", 10*time.Second, func() error {
		if n := len(h.dlq()); n != 6 {
			return fmt.Errorf("dlq has %d", n)
		}
		return nil
	})

	first := svc.requests()[0]
	if len(first.Entries) != 8 || first.Method != "POST" || first.Path != "/bulk" || first.ContentType != "application/json" {
		t.Fatalf("first request: %s %s %q with %d entries, want POST /bulk application/json with 8", first.Method, first.Path, first.ContentType, len(first.Entries))
	}
	byID := map[string]batchEntry{}
	for _, e := range first.Entries {
		byID[e.EntryID] = e
	}
	for i, id := range ids {
		e, ok := byID[id]
		if !ok {
			t.Fatalf("entry %s not in the first request", id)
		}
		var payload string
		if i == 4 {
			if err := json.Unmarshal(e.Payload, &payload); err != nil || payload != msgs[i][1] {
				t.Errorf("non-JSON payload = %s (%v), want the JSON string %q", e.Payload, err, msgs[i][1])
			}
		} else if string(e.Payload) != msgs[i][1] {
			t.Errorf("payload = %s, want embedded as is: %s", e.Payload, msgs[i][1])
		}
		want := map[string]string{"idempotency_key": "orders/" + id + "/bulk", "correlation_id": id,
			"delivery_attempt": "1", "want": wants[i], "note": "a\"b\\c\n"}
		if e.Stream != "orders" || e.ContentType != "application/json" || fmt.Sprint(e.Metadata) != fmt.Sprint(want) {
			t.Errorf("entry %s: stream %q contentType %q metadata %v, want orders, application/json, %v", id, e.Stream, e.ContentType, e.Metadata, want)
		}
	}

	att, dlq := svc.attempts(), h.dlqByID()
	for i, id := range ids {
		d := dlq["orders/"+id]
		switch wants[i] {
		case "success":
			if fmt.Sprint(att[id]) != "[1]" || d != nil {
				t.Errorf("SUCCESS entry %s: attempts %v, dead letter %v; want sent once, not dead-lettered", id, att[id], d)
			}
		case "drop":
			if fmt.Sprint(att[id]) != "[1]" || d == nil || d["dlq_reason"] != "permanent_error" || d["dlq_status"] != "200" ||
				d["dlq_error"] != "batch answer: DROP" || d["dlq_attempts"] != "1" || d["dlq_route"] != "bulk" {
				t.Errorf("DROP entry %s: attempts %v, dead letter %v; want sent once, permanent_error 200 after 1 attempt", id, att[id], d)
			}
		default:
			wantErr := "batch answer: RETRY"
			if wants[i] == "omit" {
				wantErr = "batch answer has no status for this entry"
			}
			if fmt.Sprint(att[id]) != "[1 2 3]" || d == nil || d["dlq_reason"] != "max_deliveries" ||
				d["dlq_error"] != wantErr || d["dlq_attempts"] != "3" || d["payload"] != msgs[i][1] {
				t.Errorf("%s entry %s: attempts %v, dead letter %v; want attempts [1 2 3], max_deliveries %q", wants[i], id, att[id], d, wantErr)
			}
		}
	}
}

// TestBatchSizesAndMaxWait: a backlog of 12 goes as batches of 5, 5 and 2
// (the last sent when max_wait is over); a lone message waits max_wait,
// then goes alone.
func TestBatchSizesAndMaxWait(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: bulk
    service: bulk
    batch: {max_messages: 5, max_wait: 300ms}
`)
	svc := h.batchService("bulk", "bulk-1", nil)
	h.start([]string{"orders"}, "")
	h.waitSees(svc)
	h.publishAll("orders", payloads(12))
	h.waitAcked(15*time.Second, "orders")
	sizes := svc.sizes()
	slices.Sort(sizes)
	if fmt.Sprint(sizes) != "[2 5 5]" {
		t.Fatalf("batch sizes %v, want [2 5 5]", svc.sizes())
	}
	sent := time.Now()
	id := h.publish("orders", "payload", `{"lone":true}`, "reply_to", "replies")
	h.waitFor("lone message sent", 10*time.Second, func() error {
		if n := len(svc.requests()); n != 4 {
			return fmt.Errorf("%d requests", n)
		}
		return nil
	})
	last := svc.requests()[3]
	if len(last.Entries) != 1 || last.Entries[0].EntryID != id {
		t.Fatalf("lone request entries %+v, want only %s", last.Entries, id)
	}
	if waited := last.At.Sub(sent); waited < 300*time.Millisecond || waited > 5*time.Second {
		t.Errorf("lone message arrived %v after publishing, want max_wait (300ms) or a little more", waited)
	}
	h.waitAcked(10*time.Second, "orders")
	replies, err := h.rdb.XRange(context.Background(), "replies", "-", "+").Result()
	if err != nil || len(replies) != 1 || replies[0].Values["status"] != "200" || replies[0].Values["message_id"] != id || replies[0].Values["route"] != "bulk" {
		t.Errorf("replies %v (%v), want one with status 200 for %s over bulk", replies, err, id)
	}
}

// TestBatchCountsOneServiceSlotPerRequest: with service_concurrency 1, a
// backlog of 30 still goes as three batches of 10 (a batch takes one place
// of the cap, not one per entry, and the service's queue admits enough
// messages to fill one), and never two requests at once.
func TestBatchCountsOneServiceSlotPerRequest(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: bulk
    service: bulk
    batch: {max_messages: 10, max_wait: 1s}
`)
	svc := h.batchService("bulk", "bulk-1", nil)
	svc.delay.Store(int64(200 * time.Millisecond))
	h.start([]string{"orders"}, "  service_concurrency: 1")
	h.waitSees(svc)
	h.publishAll("orders", payloads(30))
	h.waitAcked(20*time.Second, "orders")
	if got := svc.sizes(); fmt.Sprint(got) != "[10 10 10]" {
		t.Errorf("batch sizes %v, want [10 10 10]", got)
	}
	if m := svc.maxSeen.Load(); m != 1 {
		t.Errorf("requests at once: %d, want 1 (service_concurrency)", m)
	}
}

// TestBatchWholeRequestOutcomes: answers that decide every entry of a
// batch at once. A 503 is transient (retried on the route's retries), a
// 400 permanent (every entry dead-lettered), an unparsable 2xx answer and
// a timeout transient (retried on redelivery); each entry keeps its own
// attempts and is acked.
func TestBatchWholeRequestOutcomes(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - {name: flaky, streams: [a], service: flaky, retries: 1, batch: {max_messages: 4, max_wait: 200ms}}
  - {name: strict, streams: [b], service: strict, batch: {max_messages: 3, max_wait: 200ms}}
  - {name: garbled, streams: [c], service: garbled, batch: {max_messages: 3, max_wait: 200ms}}
  - {name: slow, streams: [d], service: slow, timeout: 300ms, batch: {max_messages: 3, max_wait: 200ms}}
  - {name: absent, streams: [e], service: absent, batch: {max_messages: 3, max_wait: 200ms}}
`)
	firstThen := func(status int, text string) func(int, []batchEntry) (int, string) {
		return func(n int, entries []batchEntry) (int, string) {
			if n == 0 {
				return status, text
			}
			return answerByWant(n, entries)
		}
	}
	flaky := h.batchService("flaky", "flaky-1", firstThen(503, `{"error":"busy"}`))
	strict := h.batchService("strict", "strict-1", func(int, []batchEntry) (int, string) { return 400, `{"error":"bad"}` })
	garbled := h.batchService("garbled", "garbled-1", firstThen(200, `<html>oops</html>`))
	slow := h.batchService("slow", "slow-1", nil)
	slow.delay.Store(int64(time.Second))
	h.start([]string{"a", "b", "c", "d", "e"}, "")
	h.waitSees(flaky, strict, garbled, slow)
	ids := map[string][]string{}
	for _, st := range []string{"a", "b", "c", "d"} {
		n := 3
		if st == "a" {
			n = 4
		}
		ids[st] = h.publishAll(st, payloads(n))
	}
	// Stream e's service has no instance yet: its entries are parked
	// (not counted as deliveries) until one registers.
	absentIDs := h.publishAll("e", payloads(2))
	h.waitAcked(40*time.Second, "a", "b", "c", "d")
	if n := h.pending("e"); n != 2 {
		t.Errorf("stream e without instances: %d pending, want 2", n)
	}
	absent := h.batchService("absent", "absent-1", nil)
	h.waitAcked(30*time.Second, "e")
	for _, id := range absentIDs {
		if got := fmt.Sprint(absent.attempts()[id]); got != "[1]" {
			t.Errorf("parked entry %s: attempts %s, want [1] (waiting for an instance is not an attempt)", id, got)
		}
	}

	dlq := h.dlqByID()
	check := func(svc *batchService, stream, wantAttempts string) {
		t.Helper()
		att := svc.attempts()
		for _, id := range ids[stream] {
			if got := fmt.Sprint(att[id]); got != wantAttempts {
				t.Errorf("stream %s entry %s: attempts %s, want %s", stream, id, got, wantAttempts)
			}
		}
	}
	check(flaky, "a", "[1 2]")   // 503, then the route's retry in the same delivery
	check(strict, "b", "[1]")    // 400: permanent
	check(garbled, "c", "[1 2]") // unparsable: transient, redelivered
	check(slow, "d", "[1 2]")    // timed out: transient, redelivered
	if s := flaky.sizes(); s[0] != 4 {
		t.Errorf("flaky batch sizes %v, want the first of 4", s)
	}
	for st, stIDs := range ids {
		for _, id := range stIDs {
			d := dlq[st+"/"+id]
			if st != "b" {
				if d != nil {
					t.Errorf("stream %s entry %s dead-lettered: %v", st, id, d)
				}
				continue
			}
			if d == nil || d["dlq_reason"] != "permanent_error" || d["dlq_status"] != "400" || d["dlq_error"] != "HTTP 400" || d["dlq_route"] != "strict" {
				t.Errorf("400 entry %s dead letter %v, want permanent_error, status 400, error HTTP 400", id, d)
			}
		}
	}
	if n := len(dlq); n != 3 {
		t.Errorf("%d dead letters, want 3 (the 400 batch)", n)
	}
}
