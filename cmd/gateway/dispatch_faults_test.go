package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	consul "github.com/hashicorp/consul/api"

	"github.com/msgroute/gateway/balancer"
)

// keyedBackend is a real HTTP instance, registered healthy in Consul,
// that counts the requests it received per Idempotency-Key.
type keyedBackend struct {
	id   string
	mu   sync.Mutex
	keys map[string]int
}

func (b *keyedBackend) add(key string) {
	b.mu.Lock()
	b.keys[key]++
	b.mu.Unlock()
}

// counts returns the distinct keys received and the repeated arrivals.
func (b *keyedBackend) counts() (distinct, dups int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.keys {
		distinct++
		dups += n - 1
	}
	return distinct, dups
}

// keyedBackend starts instance id of service answering with answer after
// counting the request's Idempotency-Key.
func (h *harness) keyedBackend(service, id string, answer func(n int64, w http.ResponseWriter, r *http.Request)) *keyedBackend {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	b := &keyedBackend{id: id, keys: map[string]int{}}
	var n atomic.Int64
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.add(r.Header.Get("Idempotency-Key"))
		if answer == nil { // hang until the test ends or the gateway gives up
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		answer(n.Add(1), w, r)
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { close(release); srv.Close() })
	err = h.capi.Agent().ServiceRegister(&consul.AgentServiceRegistration{
		ID: id, Name: service, Address: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port,
		Check: &consul.AgentServiceCheck{CheckID: "check-" + id, TTL: "60s", Status: consul.HealthPassing},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return b
}

const dispatchFaultRules = `
routes:
  - name: closing
    match: 'headers.kind == "close"'
    service: closing
    path: /c
  - name: big
    match: 'headers.kind == "big"'
    service: big
    path: /b
  - name: orders
    match: 'headers.kind == "hang"'
    service: orders
    path: /o
    retries: 2
default:
  action: dlq
`

// TestDispatchFaultsEndToEnd (issue 12, "Done when"): three backends that
// broke the hand-written pool, behind a real gateway, Redis and Consul:
//   - service "closing": two instances answering "Connection: close" on
//     every 100th request;
//   - service "big": one instance answering 200 with a 2 MiB body (plain
//     messages, and one request-reply message);
//   - service "orders": one healthy instance and one that hangs.
//
// Every message is acked with nothing in the DLQ, each service sees each
// Idempotency-Key once (the hung instance aside: it never answers), no
// attempt to a healthy instance fails, and no healthy instance is ever
// ejected. The reply to the request-reply message carries the cut body
// and says so.
func TestDispatchFaultsEndToEnd(t *testing.T) {
	h := newHarness(t)
	h.writeRules(dispatchFaultRules)
	// A timeout is a transient failure whose request the instance may have
	// processed: its retry elsewhere is an allowed duplicate. On a loaded
	// machine (with -race) the harness's 500ms was exceeded by healthy
	// instances; 3s leaves only the hung instance to time out.
	t.Setenv("GATEWAY_DISPATCH_TIMEOUT", "3s")
	h.claimIdle = "10s" // dispatch.timeout must stay under claim_idle/2
	closeEvery100 := func(n int64, w http.ResponseWriter, _ *http.Request) {
		if n%100 == 0 {
			w.Header().Set("Connection", "close")
		}
	}
	big := bytes.Repeat([]byte("b"), 2<<20)
	closingA := h.keyedBackend("closing", "closing-a", closeEvery100)
	closingB := h.keyedBackend("closing", "closing-b", closeEvery100)
	bigA := h.keyedBackend("big", "big-a", func(_ int64, w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(big)
	})
	ordersOK := h.keyedBackend("orders", "orders-ok", func(int64, http.ResponseWriter, *http.Request) {})
	hung := h.keyedBackend("orders", "orders-hung", nil)
	h.start([]string{"mix"}, "")

	// Watch the healthy instances for as long as the load runs.
	healthy := map[string]bool{"closing-a": true, "closing-b": true, "big-a": true, "orders-ok": true}
	var badMu sync.Mutex
	var bad []string
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for watchCtx.Err() == nil {
			var pools []balancer.ServiceStats
			if resp, err := http.Get("http://" + h.admin + "/instances"); err == nil {
				_ = json.NewDecoder(resp.Body).Decode(&pools)
				resp.Body.Close()
			}
			for _, p := range pools {
				for _, in := range p.Instances {
					if healthy[in.ID] && (in.State != balancer.StateHealthy || in.ConsecutiveFailures > 0) {
						badMu.Lock()
						bad = append(bad, fmt.Sprintf("%s: state %s, %d consecutive failures", in.ID, in.State, in.ConsecutiveFailures))
						badMu.Unlock()
					}
				}
			}
			select {
			case <-watchCtx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()

	const nClose, nBig, nHang = 2000, 40, 300
	for i := range max(nClose, nBig, nHang) {
		if i < nClose {
			h.publish("mix", "kind", "close", "payload", `{"i":`+strconv.Itoa(i)+`}`)
		}
		if i < nBig {
			h.publish("mix", "kind", "big", "payload", `{"i":`+strconv.Itoa(i)+`}`)
		}
		if i < nHang {
			h.publish("mix", "kind", "hang", "payload", `{"i":`+strconv.Itoa(i)+`}`)
		}
	}
	h.publish("mix", "kind", "big", "payload", `{"reply":true}`, "reply_to", "replies", "correlation_id", "c-big")
	h.waitAcked(90*time.Second, "mix")
	stopWatch()
	<-watched

	if d := h.dlq(); len(d) != 0 {
		t.Errorf("%d messages dead-lettered, want 0; first: %v", len(d), d[0].Values)
	}
	for _, c := range []struct {
		name     string
		backends []*keyedBackend
		want     int
	}{
		{"closing", []*keyedBackend{closingA, closingB}, nClose},
		{"big", []*keyedBackend{bigA}, nBig + 1},
		{"orders", []*keyedBackend{ordersOK}, nHang},
	} {
		all := map[string]int{}
		for _, b := range c.backends {
			b.mu.Lock()
			for k, n := range b.keys {
				all[k] += n
			}
			b.mu.Unlock()
		}
		dups := 0
		for _, n := range all {
			dups += n - 1
		}
		t.Logf("service %s: %d distinct keys, %d duplicates", c.name, len(all), dups)
		if len(all) != c.want || dups != 0 {
			t.Errorf("service %s: %d distinct Idempotency-Keys with %d duplicates, want %d and 0", c.name, len(all), dups, c.want)
		}
	}
	hungKeys, _ := hung.counts()
	t.Logf("requests that reached the hung instance (timed out, then sent to orders-ok): %d", hungKeys)
	if hungKeys == 0 {
		t.Error("the hung instance was never tried: the scenario did not happen")
	}
	badMu.Lock()
	if len(bad) > 0 {
		t.Errorf("healthy instances failed or were ejected %d times; first: %s", len(bad), bad[0])
	}
	badMu.Unlock()
	metrics := h.get("/metrics")
	for _, svc := range []string{"closing", "big"} {
		re := regexp.MustCompile(`gateway_dispatch_total\{outcome="transient",service="` + svc + `"\} (\d+)`)
		if m := re.FindStringSubmatch(metrics); m != nil && m[1] != "0" {
			t.Errorf("service %s: %s transient attempts, want 0", svc, m[1])
		}
	}
	replies, err := h.rdb.XRange(context.Background(), "replies", "-", "+").Result()
	if err != nil || len(replies) != 1 {
		t.Fatalf("replies = %d entries, %v; want 1", len(replies), err)
	}
	v := replies[0].Values
	if v["status"] != "200" || v["payload_truncated"] != "true" || len(fmt.Sprint(v["payload"])) != 1<<20 || v["correlation_id"] != "c-big" {
		t.Errorf("reply: status %v, payload_truncated %v, %d payload bytes, correlation_id %v; want 200, true, %d, c-big",
			v["status"], v["payload_truncated"], len(fmt.Sprint(v["payload"])), v["correlation_id"], 1<<20)
	}
}
