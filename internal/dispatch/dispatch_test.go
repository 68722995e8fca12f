package dispatch

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// server is a real loopback fasthttp server recording the last request.
func server(t *testing.T, status int) (string, chan *fasthttp.Request) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *fasthttp.Request, 16)
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		r := &fasthttp.Request{}
		c.Request.CopyTo(r)
		got <- r
		c.SetStatusCode(status)
		c.SetContentType("text/plain")
		c.SetBodyString("answer")
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), got
}

func msg(fields map[string]string) *rules.Message {
	return rules.NewMessage("orders", "1-0", fields, 1)
}

func TestDoSendsContractHeaders(t *testing.T) {
	addr, got := server(t, 201)
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := msg(map[string]string{"payload": `{"a":1}`, "tenant": "acme", "order_id": "7", "correlation_id": "c1"})
	res, err := d.Do(&router.Request{Addr: addr, Method: "PUT", Path: "/x?y=1", Route: "r1", Msg: m, Attempt: 2, KeepBody: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != 201 || string(res.Body) != "answer" || res.ContentType != "text/plain" {
		t.Errorf("result = %+v", res)
	}
	r := <-got
	want := map[string]string{
		"Content-Type": "application/json", "X-Message-Id": "1-0", "X-Stream": "orders", "X-Route": "r1",
		"X-Correlation-Id": "c1", "Idempotency-Key": "orders/1-0/r1", "X-Delivery-Attempt": "2",
		"X-Msg-Tenant": "acme", "X-Msg-Order_id": "7",
	}
	for k, v := range want {
		if g := string(r.Header.Peek(k)); g != v {
			t.Errorf("header %s = %q, want %q", k, g, v)
		}
	}
	if string(r.Header.Method()) != "PUT" || string(r.RequestURI()) != "/x?y=1" || string(r.Body()) != `{"a":1}` {
		t.Errorf("request = %s %s %q", r.Header.Method(), r.RequestURI(), r.Body())
	}
}

func TestDoDropsUnsafeAttributes(t *testing.T) {
	addr, got := server(t, 200)
	d, _ := New(Config{})
	m := msg(map[string]string{
		"payload": "x", "ok": "fine",
		"evil":           "a\r\nX-Injected: 1",
		"bad name":       "v",
		"nul":            "a\x00b",
		"X-Message-Id":   "spoof", // forwarded as X-Msg-X-message-id, never overriding
		"tab":            "a\tb",
		"looooong" + "x": string(make([]byte, 9000)),
	})
	res, err := d.Do(&router.Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: m, Attempt: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != 4 {
		t.Errorf("dropped = %d, want 4", res.Dropped)
	}
	r := <-got
	if v := r.Header.Peek("X-Injected"); v != nil {
		t.Errorf("header injection got through: %q", v)
	}
	if string(r.Header.Peek("X-Message-Id")) != "1-0" || string(r.Header.Peek("X-Msg-Ok")) != "fine" || string(r.Header.Peek("X-Msg-Tab")) != "a\tb" {
		t.Errorf("headers = %s", r.Header.String())
	}
}

func TestDoRejectsPathsLeavingTheInstance(t *testing.T) {
	d, _ := New(Config{})
	for _, p := range []string{"", "orders", "//evil.example/x", "/a b", "/a\r\nHost: x", "/#frag", "http://evil/"} {
		_, err := d.Do(&router.Request{Addr: "127.0.0.1:1", Method: "POST", Path: p, Route: "r", Msg: msg(nil), Attempt: 1})
		if !errors.Is(err, router.ErrBadPath) {
			t.Errorf("Do(path %q) error = %v, want ErrBadPath", p, err)
		}
	}
}

func TestDoTransportErrors(t *testing.T) {
	d, _ := New(Config{Timeout: 200 * time.Millisecond})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens: connection refused
	if _, err := d.Do(&router.Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1}); err == nil {
		t.Error("refused connection gave no error")
	}
	// A server that accepts and never answers: timeout.
	hang, _ := net.Listen("tcp", "127.0.0.1:0")
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	start := time.Now()
	_, err := d.Do(&router.Request{Addr: hang.Addr().String(), Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
	if !errors.Is(err, fasthttp.ErrTimeout) {
		t.Errorf("hanging server error = %v, want timeout", err)
	}
	if e := time.Since(start); e > 2*time.Second {
		t.Errorf("timeout took %s, want about 200ms", e)
	}
}

func BenchmarkBuild(b *testing.B) {
	m := msg(map[string]string{"payload": `{"id":1,"total":10}`, "type": "order.created", "tenant": "acme"})
	r := &router.Request{Addr: "127.0.0.1:8080", Method: "POST", Path: "/orders", Route: "orders", Msg: m, Attempt: 1}
	b.ReportAllocs()
	for b.Loop() {
		req := fasthttp.AcquireRequest()
		if _, err := build(req, r); err != nil {
			b.Fatal(err)
		}
		fasthttp.ReleaseRequest(req)
	}
}

// BenchmarkDo is one whole attempt against a loopback fasthttp server in
// the same process (both sides' CPU), 8 concurrent callers.
func BenchmarkDo(b *testing.B) { benchDo(b, Config{}, 4) }

// BenchmarkDoAtCap is BenchmarkDo with 64 concurrent callers and 2
// connections allowed: 62 requests always wait for a free connection.
func BenchmarkDoAtCap(b *testing.B) { benchDo(b, Config{MaxConnsPerHost: 2}, 32) }

// benchDo runs parallelism x GOMAXPROCS callers of Do with cfg.
func benchDo(b *testing.B, cfg Config, parallelism int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {}}
	go srv.Serve(ln)
	defer srv.Shutdown()
	d, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	m := msg(map[string]string{"payload": `{"id":1,"total":10}`, "type": "order.created", "tenant": "acme"})
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		r := &router.Request{Addr: ln.Addr().String(), Method: "POST", Path: "/orders", Route: "orders", Msg: m, Attempt: 1}
		for pb.Next() {
			if res, err := d.Do(r); err != nil || res.Status != 200 {
				b.Fatal(res, err)
			}
		}
	})
}

// TestDoBoundsConnectionsPerInstance: more concurrent attempts than
// MaxConnsPerHost share that many connections (the rest wait for one)
// instead of dialing more, and all of them succeed.
func TestDoBoundsConnectionsPerInstance(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns, inflight, peak atomic.Int64
	srv := &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
		},
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	d, err := New(Config{MaxConnsPerHost: 4, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m := msg(map[string]string{"payload": `{}`})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &router.Request{Addr: ln.Addr().String(), Method: "POST", Path: "/", Route: "r", Msg: m, Attempt: 1}
			if res, err := d.Do(r); err != nil || res.Status != 200 {
				errs <- fmt.Errorf("status %d, err %v", res.Status, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c, p := conns.Load(), peak.Load(); c > 4 || p > 4 {
		t.Errorf("%d connections, %d requests at once; want at most 4 of each", c, p)
	}
}

// TestSendRefusesOnlyWhatCheckRefuses: the dispatcher and rule loading
// (`gateway check`) judge a route's path with one validator, so a path
// refused at send time never passes check (before, "//host/x" and "/a#b"
// passed check and then dead-lettered every message).
func TestSendRefusesOnlyWhatCheckRefuses(t *testing.T) {
	d, _ := New(Config{Timeout: 50 * time.Millisecond})
	for _, p := range []string{"/ok", "/x?y=1", "//evil.example/x", "/a#frag", "/a b", "/a\x7f", "/" + strings.Repeat("p", 9000), "orders"} {
		file := filepath.Join(t.TempDir(), "rules.yaml")
		body := "routes:\n  - name: r\n    match: 'true'\n    service: s\n    path: " + strconv.Quote(p) + "\n"
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, checkErr := rules.Load(file)
		_, sendErr := d.Do(&router.Request{Addr: "127.0.0.1:1", Method: "POST", Path: p, Route: "r", Msg: msg(nil), Attempt: 1})
		if refused := errors.Is(sendErr, router.ErrBadPath); refused != (checkErr != nil) {
			t.Errorf("path %.40q: refused at send = %v, check error = %v", p, refused, checkErr)
		}
	}
}

// TestDoCountsTimeoutFromStart: the attempt's deadline is Start+Timeout,
// so a request whose attempt began longer ago than its timeout (the
// router's pick took that long) times out at once, and one without a
// Start gets its whole timeout from the call.
func TestDoCountsTimeoutFromStart(t *testing.T) {
	addr, _ := server(t, 200)
	d, _ := New(Config{})
	req := &router.Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1,
		Timeout: time.Second, Start: time.Now().Add(-2 * time.Second)}
	if _, err := d.Do(req); !errors.Is(err, fasthttp.ErrTimeout) {
		t.Errorf("attempt started past its timeout: err = %v, want timeout", err)
	}
	req.Start = time.Now()
	if res, err := d.Do(req); err != nil || res.Status != 200 {
		t.Errorf("attempt started now: %d, %v; want 200", res.Status, err)
	}
	req.Start = time.Time{}
	if res, err := d.Do(req); err != nil || res.Status != 200 {
		t.Errorf("attempt without a start: %d, %v; want 200", res.Status, err)
	}
}
