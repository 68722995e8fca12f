package dispatch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/msgroute/gateway/router"
	"github.com/msgroute/gateway/rules"
)

// Failure modes of real servers (issue 12, findings 2-4), each against a
// real loopback HTTP server.

// keyCounter counts requests per Idempotency-Key, to find duplicates.
type keyCounter struct {
	mu   sync.Mutex
	seen map[string]int
	dups int
}

func (k *keyCounter) add(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen == nil {
		k.seen = map[string]int{}
	}
	k.seen[key]++
	if k.seen[key] > 1 {
		k.dups++
	}
}

func (k *keyCounter) counts() (keys, dups int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.seen), k.dups
}

// serve runs srv on a loopback port until the test ends.
func serve(t *testing.T, srv *fasthttp.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// req is one attempt of entry id to addr.
func req(addr, id string, keep bool) *router.Request {
	m := rules.NewMessage("orders", id, map[string]string{"payload": `{"id":"` + id + `"}`}, 1)
	return &router.Request{Addr: addr, Method: "POST", Path: "/orders", Route: "r", Msg: m, Attempt: 1, KeepBody: keep}
}

// TestCloseEvery100UnderLoad (finding 3): a backend that answers
// "Connection: close" on every 100th request, under 32 concurrent callers
// on 4 connections. Every request succeeds (none fails against the
// instance) and the backend sees each Idempotency-Key exactly once.
func TestCloseEvery100UnderLoad(t *testing.T) {
	var n atomic.Int64
	var keys keyCounter
	addr := serve(t, &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		keys.add(string(c.Request.Header.Peek("Idempotency-Key")))
		if n.Add(1)%100 == 0 {
			c.SetConnectionClose()
		}
	}})
	d, err := New(Config{MaxConnsPerHost: 4, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 32, 100
	var failures atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				res, err := d.Do(req(addr, fmt.Sprintf("%d-%d", c, i), false))
				if err != nil || res.Status != 200 {
					failures.Add(1)
					t.Errorf("Do = %+v, %v; want 200", res, err)
				}
			}
		})
	}
	wg.Wait()
	if got, dups := keys.counts(); failures.Load() != 0 || got != callers*each || dups != 0 {
		t.Errorf("failures %d, keys %d (want %d), duplicates %d; want 0 failures, 0 duplicates",
			failures.Load(), got, callers*each, dups)
	}
}

// TestLargeAnswerIsADelivery (finding 2): a 2 MiB 200 to a plain message
// is a delivery, sent once; the connection is closed rather than read,
// and the next request works. With KeepBody the body is cut at
// MaxResponseBytes and the Result says so.
func TestLargeAnswerIsADelivery(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 2<<20)
	var keys keyCounter
	addr := serve(t, &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		keys.add(string(c.Request.Header.Peek("Idempotency-Key")))
		c.SetContentType("application/json")
		c.SetBody(big)
	}})
	d, err := New(Config{MaxResponseBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		name string
		keep bool
		want int // body bytes kept
	}{
		{"no reply wanted", false, 0},
		{"reply_to", true, 1 << 20},
		{"no reply wanted again", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := d.Do(req(addr, fmt.Sprintf("1-%d", i), tc.keep))
			if err != nil || res.Status != 200 || !res.Truncated || len(res.Body) != tc.want {
				t.Fatalf("Do = status %d, truncated %v, %d body bytes, err %v; want 200, truncated, %d bytes, nil",
					res.Status, res.Truncated, len(res.Body), err, tc.want)
			}
			if tc.keep && (res.ContentType != "application/json" || !bytes.Equal(res.Body, big[:1<<20])) {
				t.Errorf("kept body: content type %q, %d bytes not the answer's beginning", res.ContentType, len(res.Body))
			}
		})
	}
	if got, dups := keys.counts(); got != 3 || dups != 0 {
		t.Errorf("backend saw %d keys, %d duplicates; want 3, 0", got, dups)
	}
}

// TestSmallAnswerKeptWhole: an answer within MaxResponseBytes is kept
// whole, not marked cut, and its connection is reused.
func TestSmallAnswerKeptWhole(t *testing.T) {
	var conns atomic.Int64
	addr := serve(t, &fasthttp.Server{
		Handler: func(c *fasthttp.RequestCtx) { c.SetBodyString(strings.Repeat("y", 5000)) },
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				conns.Add(1)
			}
		},
	})
	d, _ := New(Config{})
	for i, keep := range []bool{true, false, true, false} {
		res, err := d.Do(req(addr, fmt.Sprintf("1-%d", i), keep))
		if err != nil || res.Status != 200 || res.Truncated || (keep && len(res.Body) != 5000) {
			t.Fatalf("Do(keep %v) = status %d, truncated %v, %d bytes, %v", keep, res.Status, res.Truncated, len(res.Body), err)
		}
	}
	if c := conns.Load(); c != 1 {
		t.Errorf("%d connections for 4 sequential requests, want 1", c)
	}
}

// TestHangingBackend (finding 3's slow head): an attempt to a backend that
// never answers times out as a transport error, once (never resent),
// within its timeout, while another instance keeps answering at once.
func TestHangingBackend(t *testing.T) {
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hang.Close() })
	var received keyCounter
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var r fasthttp.Request
					if r.Read(br) != nil {
						return
					}
					received.add(string(r.Header.Peek("Idempotency-Key"))) // and never answer
				}
			}()
		}
	}()
	var keys keyCounter
	good := serve(t, &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		keys.add(string(c.Request.Header.Peek("Idempotency-Key")))
	}})
	d, _ := New(Config{MaxConnsPerHost: 2})
	const hung = 4
	errs := make(chan error, hung)
	start := time.Now()
	for i := range hung {
		go func() {
			r := req(hang.Addr().String(), fmt.Sprintf("9-%d", i), false)
			r.Timeout = 500 * time.Millisecond
			_, err := d.Do(r)
			errs <- err
		}()
	}
	for i := range 200 {
		if res, err := d.Do(req(good, fmt.Sprintf("1-%d", i), false)); err != nil || res.Status != 200 {
			t.Fatalf("healthy instance: Do = %+v, %v while another hangs", res, err)
		}
	}
	for range hung {
		if err := <-errs; !errors.Is(err, fasthttp.ErrTimeout) {
			t.Errorf("hanging backend: err = %v, want fasthttp.ErrTimeout", err)
		}
	}
	if e := time.Since(start); e > 5*time.Second {
		t.Errorf("attempts of 500ms took %s", e)
	}
	// None was resent after its timeout (a request waiting for one of the
	// two connections may get one freed by a timed-out request, and reach
	// the backend too).
	if got, dups := received.counts(); got == 0 || dups != 0 {
		t.Errorf("hanging backend received %d keys, %d of them again; want some, none again (no resend after a timeout)", got, dups)
	}
	if got, dups := keys.counts(); got != 200 || dups != 0 {
		t.Errorf("healthy backend saw %d keys, %d duplicates; want 200, 0", got, dups)
	}
}

// TestStaleKeepAliveResentOnce (finding 3's other half): the server closes
// a keep-alive connection between two requests without saying so. The
// second request finds its pooled connection dead before any answer byte,
// is resent once on a new connection, and succeeds: no error for the
// router to count against the instance, and the server processes each
// request once.
func TestStaleKeepAliveResentOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var keys keyCounter
	var accepted atomic.Int64
	closed := make(chan struct{}, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				// One request per connection, answered as keep-alive,
				// then the connection is closed without a word.
				defer func() { c.Close(); closed <- struct{}{} }()
				var r fasthttp.Request
				if r.Read(bufio.NewReader(c)) != nil {
					return
				}
				keys.add(string(r.Header.Peek("Idempotency-Key")))
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
			}()
		}
	}()
	d, _ := New(Config{})
	const n = 5
	for i := range n {
		res, err := d.Do(req(ln.Addr().String(), fmt.Sprintf("1-%d", i), false))
		if err != nil || res.Status != 200 {
			t.Fatalf("request %d: Do = %+v, %v; want 200 after one resend", i, res, err)
		}
		<-closed // the pooled connection is now dead
	}
	if got, dups := keys.counts(); got != n || dups != 0 {
		t.Errorf("server processed %d keys with %d duplicates; want %d, 0", got, dups, n)
	}
	// Requests 2..n each found the previous request's connection dead and
	// were resent on a new one: one connection per request.
	if a := accepted.Load(); a != n {
		t.Errorf("%d connections accepted, want %d", a, n)
	}
}

// TestUnanswered: the errors resendIf resends on, and those it never
// does (a timeout, an answer broken off midway).
func TestUnanswered(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"closed before any byte", io.EOF, true},
		{"write on a closed connection", &net.OpError{Op: "write", Err: errors.New("broken pipe")}, true},
		{"timeout", fasthttp.ErrTimeout, false},
		{"answer broken off", fmt.Errorf("error when reading response headers: %w", io.EOF), false},
		{"read reset midway", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, false},
		{"body too large", fasthttp.ErrBodyTooLarge, false},
	} {
		if got := unanswered(tc.err); got != tc.want {
			t.Errorf("unanswered(%s: %v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// TestNoSpuriousTimeoutsAtCap (finding 4): three callers share one
// connection (MaxConnsPerHost 1). Each request waits its turn for the
// connection and none times out: with 2 s allowed and answers taking
// microseconds, a timeout can only be a lost wake-up. The hand-written
// pool's no-pipelining mode lost some: 5 spurious timeouts in 60,000
// requests.
func TestNoSpuriousTimeoutsAtCap(t *testing.T) {
	var keys keyCounter
	addr := serve(t, &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		keys.add(string(c.Request.Header.Peek("Idempotency-Key")))
	}})
	d, err := New(Config{MaxConnsPerHost: 1, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const callers, each = 3, 10000
	var failed atomic.Int64
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := range each {
				if res, err := d.Do(req(addr, fmt.Sprintf("%d-%d", c, i), false)); err != nil || res.Status != 200 {
					if failed.Add(1) <= 3 {
						t.Errorf("Do = %+v, %v", res, err)
					}
				}
			}
		})
	}
	wg.Wait()
	if got, dups := keys.counts(); failed.Load() != 0 || got != callers*each || dups != 0 {
		t.Errorf("%d failed, %d keys (want %d), %d duplicates", failed.Load(), got, callers*each, dups)
	}
}
