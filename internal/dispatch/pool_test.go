package dispatch

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestDialFailureFailsEveryQueuedCaller: requests that queued on a
// connection being dialed fail with the dial's error, at once.
func TestDialFailureFailsEveryQueuedCaller(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	d, _ := New(Config{MaxConnsPerHost: 1, Timeout: 5 * time.Second})
	start := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
			var oe *net.OpError
			if !errors.As(err, &oe) {
				t.Errorf("error %v, want the dial's", err)
			}
		}()
	}
	wg.Wait()
	if e := time.Since(start); e > time.Second {
		t.Errorf("refused dials took %s", e)
	}
}

// TestIdleConnectionsAreClosed: a connection unused for maxIdle is closed
// by the sweep, and the pool of an instance without connections is
// forgotten.
func TestIdleConnectionsAreClosed(t *testing.T) {
	var closed atomic.Int64
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(n int, req *fasthttp.Request) bool {
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return true
		})
		closed.Add(1)
	})
	d, _ := New(Config{})
	if _, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1}); err != nil {
		t.Fatal(err)
	}
	d.sweep(time.Now().Add(sweepEvery / 2))
	if n := d.host(addr).connCount(); n != 1 {
		t.Fatalf("%d connections before maxIdle, want 1", n)
	}
	d.sweep(time.Now().Add(sweepEvery + maxIdle))
	if _, ok := d.hosts.Load(addr); ok {
		t.Error("pool without connections still kept")
	}
	deadline := time.Now().Add(2 * time.Second)
	for closed.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if closed.Load() != 1 {
		t.Error("idle connection not closed")
	}
}

// TestBurstOnSlowInstanceSpreadsOverConnections: a burst to an idle, slow
// instance opens connections up to the cap rather than pipelining on the
// first one (an instance serves one connection's requests in turn: 50
// requests of 200 ms queued on one connection take 10 s).
func TestBurstOnSlowInstanceSpreadsOverConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var inflight, peak atomic.Int64
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(200 * time.Millisecond)
	})}
	go hs.Serve(ln)
	t.Cleanup(func() { _ = hs.Close() })
	d, _ := New(Config{Timeout: time.Second}) // default cap: 32 connections
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.Do(&Request{Addr: ln.Addr().String(), Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
			if err != nil || res.Status != 200 {
				t.Errorf("status %d, err %v", res.Status, err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p < 16 || p > 32 {
		t.Errorf("instance served at most %d requests at once, want up to the cap of 32", p)
	}
}

// TestWithoutPipeliningRequestsWaitForAFreeConnection: with NoPipelining
// a request beyond the cap waits for a connection to free up; none is
// ever written on a connection with an unanswered request. With
// pipelining the same load is pipelined (the check's own control).
func TestWithoutPipeliningRequestsWaitForAFreeConnection(t *testing.T) {
	for _, noPipe := range []bool{true, false} {
		t.Run(fmt.Sprintf("NoPipelining=%v", noPipe), func(t *testing.T) {
			var pipelined, conns atomic.Int64
			addr := rawServer(t, func(c net.Conn) {
				conns.Add(1)
				br := bufio.NewReader(c)
				for {
					var req fasthttp.Request
					if err := req.Read(br); err != nil {
						return
					}
					time.Sleep(2 * time.Millisecond)
					if br.Buffered() > 0 { // the next request came before this answer
						pipelined.Add(1)
					}
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"); err != nil {
						return
					}
				}
			})
			d, _ := New(Config{MaxConnsPerHost: 2, Timeout: 5 * time.Second, NoPipelining: noPipe})
			var wg sync.WaitGroup
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 5 {
						res, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
						if err != nil || res.Status != 200 {
							t.Errorf("status %d err %v", res.Status, err)
						}
					}
				}()
			}
			wg.Wait()
			if c := conns.Load(); c > 2 {
				t.Errorf("%d connections, want at most 2", c)
			}
			if p := pipelined.Load(); noPipe && p != 0 {
				t.Errorf("%d requests pipelined with NoPipelining", p)
			} else if !noPipe && p == 0 {
				t.Error("nothing pipelined at 8 callers per connection: the check proves nothing")
			}
		})
	}
}

// TestWithoutPipeliningAWaitTimesOut: a request that finds no free
// connection before its deadline fails as a timeout.
func TestWithoutPipeliningAWaitTimesOut(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(n int, req *fasthttp.Request) bool { return true }) // never answers
	})
	d, _ := New(Config{MaxConnsPerHost: 1, Timeout: 200 * time.Millisecond, NoPipelining: true})
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, fasthttp.ErrTimeout) {
			t.Errorf("error %v, want a timeout", err)
		}
	}
}

// TestDialsAreBoundedAndWaitersServed: a burst to an idle instance dials
// at most maxDials connections at a time; the requests waiting meanwhile
// all get a connection (a new one or one freed up) and succeed.
func TestDialsAreBoundedAndWaitersServed(t *testing.T) {
	addr := rawServer(t, func(c net.Conn) {
		readRequests(c, func(n int, req *fasthttp.Request) bool {
			time.Sleep(5 * time.Millisecond)
			_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			return err == nil
		})
	})
	d, _ := New(Config{MaxConnsPerHost: 32, Timeout: 5 * time.Second})
	var dialing, peak, dials atomic.Int64
	d.host(addr).dialer = func(addr string, deadline time.Time) (net.Conn, error) {
		n := dialing.Add(1)
		defer dialing.Add(-1)
		dials.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond) // a slow network
		return dialTCP(addr, deadline)
	}
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
			if err != nil || res.Status != 200 {
				t.Errorf("status %d err %v", res.Status, err)
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > maxDials {
		t.Errorf("%d dials at once, want at most %d", p, maxDials)
	}
	if n := dials.Load(); n < maxDials || n > 32 {
		t.Errorf("%d connections dialed, want between %d and the cap", n, maxDials)
	}
}

// TestWaitForADialTimesOut: a request waiting for a dial slot gives up at
// its deadline with a timeout.
func TestWaitForADialTimesOut(t *testing.T) {
	d, _ := New(Config{MaxConnsPerHost: 32, Timeout: 100 * time.Millisecond})
	release := make(chan struct{})
	defer close(release)
	const addr = "127.0.0.1:1"
	d.host(addr).dialer = func(addr string, deadline time.Time) (net.Conn, error) {
		<-release // dials that never finish in time
		return nil, errors.New("gave up")
	}
	errs := make(chan error, maxDials+2)
	for range maxDials + 2 {
		go func() {
			_, err := d.Do(&Request{Addr: addr, Method: "POST", Path: "/", Route: "r", Msg: msg(nil), Attempt: 1})
			errs <- err
		}()
	}
	timeouts := 0
	for range 2 {
		if err := <-errs; errors.Is(err, fasthttp.ErrTimeout) {
			timeouts++
		}
	}
	if timeouts != 2 {
		t.Errorf("%d of the first 2 failures are timeouts, want the 2 waiting requests", timeouts)
	}
}
