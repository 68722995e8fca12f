package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// arrivals is an HTTP service registered in Consul that records when each
// message (by Idempotency-Key) first arrived and how often.
type arrivals struct {
	id, addr string
	mu       sync.Mutex
	first    map[string]time.Time
	times    map[string]int
}

func (h *harness) arrivals(service, id string) *arrivals {
	h.t.Helper()
	a := &arrivals{id: id, first: map[string]time.Time{}, times: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	a.addr = ln.Addr().String()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		// The message ID part of STREAM/ID/ROUTE.
		key := strings.SplitN(r.Header.Get("Idempotency-Key"), "/", 3)[1]
		a.mu.Lock()
		if a.times[key] == 0 {
			a.first[key] = now
		}
		a.times[key]++
		a.mu.Unlock()
		w.WriteHeader(200)
	})}
	go srv.Serve(ln)
	h.t.Cleanup(func() { srv.Close() })
	if err := h.declare(&backend{name: service, id: id, addr: a.addr}, nil); err != nil {
		h.t.Fatal(err)
	}
	return a
}

// idMillis is the millisecond part of a stream entry ID.
func idMillis(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

func (a *arrivals) distinct() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.times)
}

// TestSubscriptionsUnderLoad: at 1000 msg/s, a subscription appears and
// disappears 20 times (declared by re-registering, removed alternately by
// deregistering and by re-registering without it). Nothing is lost: the
// file route receives every message, nothing is dead-lettered, everything
// is acked. Every message the gateway read while the subscription was
// active (and that was settled before it was removed) reaches the
// subscriber, and none read while it was gone does. A copy that failed
// transiently is sent again on the message's redelivery only if the
// subscription still exists then, so each removal waits until what was
// read before it is settled.
// "Read while active" is decided without looking inside the gateway: a
// message is read after it was published and before the file route's
// copy arrived, and both routes are matched in that one read.
func TestSubscriptionsUnderLoad(t *testing.T) {
	h := newHarness(t)
	h.writeRules(`
routes:
  - name: all
    streams: [orders]
    service: sink
default:
  action: dlq
`)
	sink := h.arrivals("sink", "sink-1")
	sub := h.arrivals("audit", "audit-1")
	auditBackend := &backend{name: "audit", id: "audit-1", addr: sub.addr}
	h.start([]string{"orders"}, "")

	// Producer: 1000 msg/s, every 10 ms what is due (10 when on time).
	type batch struct {
		ids        []string
		start, end time.Time
	}
	var (
		pmu     sync.Mutex
		batches []batch
	)
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		ctx := context.Background()
		began := time.Now()
		for seq := 0; ; {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			start := time.Now()
			due := min(int(start.Sub(began).Milliseconds())-seq, 100)
			if due <= 0 {
				continue
			}
			pipe := h.rdb.Pipeline()
			cmds := make([]*redis.StringCmd, due)
			for i := range cmds {
				seq++
				cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: "orders", Values: []string{"type", "load", "payload", fmt.Sprintf(`{"seq":%d}`, seq)}})
			}
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			b := batch{start: start, end: time.Now()}
			for _, c := range cmds {
				b.ids = append(b.ids, c.Val())
			}
			pmu.Lock()
			batches = append(batches, b)
			pmu.Unlock()
		}
	}()

	type window struct{ from, to time.Time }
	var active, inactive []window
	inactiveFrom := time.Now()
	decl := map[string]string{"gateway-sub-trail": `{"stream":"orders","match":"true"}`}
	const cycles = 20
	for i := 0; i < cycles; i++ {
		declareAt := time.Now()
		inactive = append(inactive, window{inactiveFrom, declareAt})
		if err := h.declare(auditBackend, decl); err != nil {
			t.Fatal(err)
		}
		h.waitFor("subscription active", 10*time.Second, func() error {
			if r := h.activeRoutes(); len(r) != 1 {
				return fmt.Errorf("active: %v", r)
			}
			return nil
		})
		activeFrom, n := time.Now(), sub.distinct()
		h.waitFor("subscriber receiving", 30*time.Second, func() error {
			if d := sub.distinct() - n; d < 300 {
				return fmt.Errorf("received %d since active", d)
			}
			return nil
		})
		// A copy that failed transiently is sent again on the message's
		// redelivery, if the subscription still exists then: wait until
		// everything read so far is settled before removing it.
		settledBy := time.Now()
		h.waitFor("messages read while active settled", 30*time.Second, func() error {
			p, err := h.rdb.XPending(context.Background(), "orders", "gateway").Result()
			if err != nil {
				return err
			}
			if p.Count > 0 && idMillis(p.Lower) <= settledBy.UnixMilli() {
				return fmt.Errorf("oldest pending %s", p.Lower)
			}
			return nil
		})
		active = append(active, window{activeFrom, settledBy})
		var err error
		if i%2 == 0 {
			err = h.capi.Agent().ServiceDeregister("audit-1")
		} else {
			err = h.declare(auditBackend, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor("subscription removed", 10*time.Second, func() error {
			if r := h.activeRoutes(); len(r) != 0 {
				return fmt.Errorf("active: %v", r)
			}
			return nil
		})
		inactiveFrom, n = time.Now(), sink.distinct()
		h.waitFor("traffic while inactive", 30*time.Second, func() error {
			if d := sink.distinct() - n; d < 300 {
				return fmt.Errorf("sink received %d since removal", d)
			}
			return nil
		})
	}
	inactive = append(inactive, window{inactiveFrom, time.Now()})
	close(stop)
	<-produced
	pmu.Lock()
	defer pmu.Unlock()
	total := 0
	for _, b := range batches {
		total += len(b.ids)
	}
	h.waitFor("file route received everything", 60*time.Second, func() error {
		if d := sink.distinct(); d != total {
			return fmt.Errorf("sink has %d of %d", d, total)
		}
		return nil
	})
	h.waitAcked(30*time.Second, "orders")
	if d := h.dlq(); len(d) != 0 {
		t.Errorf("dlq has %d entries, want 0", len(d))
	}

	within := func(ws []window, from, to time.Time) bool {
		for _, w := range ws {
			if !from.Before(w.from) && !to.After(w.to) {
				return true
			}
		}
		return false
	}
	sink.mu.Lock()
	sub.mu.Lock()
	defer sink.mu.Unlock()
	defer sub.mu.Unlock()
	var whileActive, whileInactive, transition, missed, wrong, dups int
	for _, b := range batches {
		for _, id := range b.ids {
			arrived := sink.first[id]
			_, got := sub.times[id]
			dups += max(sub.times[id]-1, 0)
			switch {
			case within(active, b.start, arrived):
				whileActive++
				if !got {
					missed++
					if missed <= 5 {
						t.Errorf("%s (published %s, file copy %s) read while the subscription was active, not delivered to it",
							id, b.start.Format("15:04:05.000"), arrived.Format("15:04:05.000"))
					}
				}
			case within(inactive, b.start, arrived):
				whileInactive++
				if got {
					wrong++
					if wrong <= 5 {
						t.Errorf("%s read while no subscription was active, delivered to the subscriber", id)
					}
				}
			default:
				transition++
			}
		}
	}
	t.Logf("%d cycles, %d messages at %.0f msg/s: %d read while active (%d not delivered), %d while inactive (%d delivered), %d during a change; %d duplicate deliveries",
		cycles, total, float64(total)/batches[len(batches)-1].end.Sub(batches[0].start).Seconds(),
		whileActive, missed, whileInactive, wrong, transition, dups)
	if missed > 0 || wrong > 0 {
		for _, o := range []string{"delivered", "transient", "permanent", "no_instance"} {
			t.Logf("gateway_dispatch_total{service=audit,outcome=%s} = %s", o,
				h.metric(`gateway_dispatch_total{outcome="`+o+`",service="audit"}`))
		}
	}
	if whileActive < cycles*200 || whileInactive < cycles*200 {
		t.Errorf("too few messages inside the windows (%d active, %d inactive): the test did not exercise the cycles", whileActive, whileInactive)
	}
}
