package dispatch

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// echoID answers every request with its X-Message-Id as the body.
func echoServers(t *testing.T) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		}
		c.SetBody(c.Request.Header.Peek("X-Message-Id"))
	}}
	go fs.Serve(ln)
	t.Cleanup(func() { _ = fs.Shutdown() })
	addrs["fasthttp"] = ln.Addr().String()

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if rand.IntN(4) == 0 {
			time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
		}
		_, _ = w.Write([]byte(r.Header.Get("X-Message-Id")))
	})}
	go hs.Serve(ln2)
	t.Cleanup(func() { _ = hs.Close() })
	addrs["net/http"] = ln2.Addr().String()
	return addrs
}

// TestPipelinedAnswersReachTheirRequests: with more concurrent requests
// than connections, requests are pipelined, and each caller gets the
// answer to its own request, against the two common Go servers.
func TestPipelinedAnswersReachTheirRequests(t *testing.T) {
	for name, addr := range echoServers(t) {
		t.Run(name, func(t *testing.T) {
			d, err := New(Config{MaxConnsPerHost: 2, Timeout: 5 * time.Second, MaxResponseBytes: 1 << 10})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			var bad atomic.Int64
			for g := range 32 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 50 {
						id := fmt.Sprintf("%d-%d", g, i)
						m := msg(map[string]string{"payload": strings.Repeat("x", rand.IntN(3000))})
						m.ID = id
						res, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: m, Attempt: 1, KeepBody: true})
						if err != nil || res.Status != 200 || string(res.Body) != id {
							if bad.Add(1) < 5 {
								t.Errorf("request %s: status %d body %q err %v", id, res.Status, res.Body, err)
							}
						}
					}
				}()
			}
			wg.Wait()
			if n := d.host(addr).connCount(); n > 2 {
				t.Errorf("%d connections, want at most 2", n)
			}
		})
	}
}

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// readRequests reads pipelined requests from c and calls answer for each,
// until answer returns false or the connection ends.
func readRequests(c net.Conn, answer func(n int, req *fasthttp.Request) bool) {
	br := bufio.NewReader(c)
	for n := 0; ; n++ {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			return
		}
		if !answer(n, &req) {
			return
		}
	}
}

// readQueued reads up to n requests from c, waiting at most a second.
func readQueued(c net.Conn, n int) {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	br := bufio.NewReader(c)
	for range n {
		var req fasthttp.Request
		if err := req.Read(br); err != nil {
			break
		}
	}
	_ = c.SetReadDeadline(time.Time{})
}

// TestPipelineFailuresAreReportedNotHung: a connection that breaks with
// requests queued on it fails each of them promptly (a transport error the
// router retries), and the next requests work on a new connection.
func TestPipelineFailuresAreReportedNotHung(t *testing.T) {
	// Each server first reads the requests pipelined on the connection
	// (all 8, or what came within a second), then breaks it.
	cases := map[string]func(c net.Conn){
		// Answers the first request with Connection: close, then closes.
		"connection close": func(c net.Conn) {
			readQueued(c, 8)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		},
		// Closes the connection without answering.
		"reset": func(c net.Conn) { readQueued(c, 8) },
		// Never answers: the head times out.
		"hang": func(c net.Conn) {
			readRequests(c, func(n int, req *fasthttp.Request) bool { return true })
		},
		// Answers garbage.
		"garbage": func(c net.Conn) {
			readQueued(c, 8)
			_, _ = io.WriteString(c, "SMTP ready\r\n\r\n")
			readRequests(c, func(n int, req *fasthttp.Request) bool { return true })
		},
	}
	for name, serve := range cases {
		t.Run(name, func(t *testing.T) {
			addr := rawServer(t, serve)
			d, _ := New(Config{MaxConnsPerHost: 1, Timeout: 300 * time.Millisecond})
			start := time.Now()
			var wg sync.WaitGroup
			var ok, failed atomic.Int64
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
					switch {
					case err != nil:
						failed.Add(1)
					case res.Status == 200:
						ok.Add(1)
					default:
						t.Errorf("status %d without error", res.Status)
					}
				}()
			}
			wg.Wait()
			if e := time.Since(start); e > 2*time.Second {
				t.Errorf("8 requests took %s on a broken connection, want about one timeout", e)
			}
			if failed.Load() == 0 {
				t.Errorf("%d ok, no failure on a broken connection", ok.Load())
			}
			if name == "connection close" && ok.Load() == 0 {
				t.Error("the answered request failed too")
			}
			if n := d.host(addr).connCount(); n > 1 {
				t.Errorf("%d connections kept, want at most 1", n)
			}
		})
	}
}

// TestPipelineRecoversAfterABrokenConnection: after a connection breaks,
// new requests get a new one.
func TestPipelineRecoversAfterABrokenConnection(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn) {
		first := conns.Add(1) == 1
		readRequests(c, func(n int, req *fasthttp.Request) bool {
			if first {
				return false // the first connection dies unanswered
			}
			_, _ = io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n")
			return true
		})
	})
	d, _ := New(Config{MaxConnsPerHost: 1, Timeout: time.Second})
	r := &Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1}
	if _, err := d.Do(r); err == nil {
		t.Fatal("unanswered request gave no error")
	}
	for i := range 3 {
		if res, err := d.Do(r); err != nil || res.Status != 204 {
			t.Fatalf("request %d after the break: status %d err %v", i, res.Status, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections dialed, want 2", n)
	}
}

// TestHeadAnswersKeepThePipelineInStep: the answer to HEAD announces a
// body it does not carry; reading it as bodiless keeps the answers that
// follow on the connection matched to their requests.
func TestHeadAnswersKeepThePipelineInStep(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "5")
		_, _ = w.Write([]byte(r.Header.Get("X-Message-Id")[:5]))
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { _ = hs.Close() })
	d, _ := New(Config{MaxConnsPerHost: 1, Timeout: 2 * time.Second})
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method := "POST"
			if i%2 == 0 {
				method = "HEAD"
			}
			m := msg(nil)
			m.ID = fmt.Sprintf("%05d-0", i)
			res, err := d.Do(&Request{Addr: ln.Addr().String(), Method: method, Path: "/", Route: "r", Msg: m, Attempt: 1, KeepBody: true})
			want := m.ID[:5]
			if method == "HEAD" {
				want = ""
			}
			if err != nil || res.Status != 200 || string(res.Body) != want {
				t.Errorf("%s %s: status %d body %q err %v, want body %q", method, m.ID, res.Status, res.Body, err, want)
			}
		}()
	}
	wg.Wait()
}

// TestIdleConnectionClosedByTheInstanceIsRetried: an instance that closes
// idle keep-alive connections (Node's default is after 5 s) makes the
// next request on one fail before any answer; it is sent once more on a
// new connection instead of failing the attempt. A request that fails on
// a fresh connection is not sent twice.
func TestIdleConnectionClosedByTheInstanceIsRetried(t *testing.T) {
	var requests atomic.Int64
	closed := make(chan struct{}, 8)
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(n int, req *fasthttp.Request) bool {
			requests.Add(1)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return false // close right after the answer, as an idle timeout would
		})
		_ = c.Close()
		closed <- struct{}{}
	})
	d, _ := New(Config{MaxConnsPerHost: 1, Timeout: time.Second})
	r := &Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1}
	for i := range 3 {
		if res, err := d.Do(r); err != nil || res.Status != 200 {
			t.Fatalf("request %d: status %d err %v", i, res.Status, err)
		}
		select {
		case <-closed: // the next request goes on a connection already closed
		case <-time.After(2 * time.Second):
			t.Fatal("instance did not close the connection")
		}
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("instance saw %d requests, want 3", n)
	}

	var seen atomic.Int64
	dead := rawServer(t, func(c net.Conn) {
		readRequests(c, func(n int, req *fasthttp.Request) bool {
			seen.Add(1)
			return false // never answers
		})
	})
	if _, err := d.Do(&Request{Addr: dead, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1}); err == nil {
		t.Fatal("unanswered request gave no error")
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("request on a fresh connection sent %d times, want once", n)
	}
}
