package dispatch

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/msgroute/gateway/router"
)

// batchServer is a real net/http server (not fasthttp, so the client is
// tested against another implementation) answering every request with
// status and answer after delay, and recording the request.
func batchServer(t *testing.T, status int, answer string, delay time.Duration) (string, chan *http.Request, chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqs, bodies := make(chan *http.Request, 16), make(chan []byte, 16)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("read body: %v", err)
		}
		reqs <- r
		bodies <- b
		time.Sleep(delay)
		w.WriteHeader(status)
		w.Write([]byte(answer))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), reqs, bodies
}

func TestDoBatchSendsDocument(t *testing.T) {
	addr, reqs, bodies := batchServer(t, 200, `{"statuses":[]}`, 0)
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"entries":[{"entryId":"1-0"}]}`)
	status, answer, err := c.DoBatch(addr, "PUT", "/bulk?x=1", 0, body)
	if err != nil || status != 200 || string(answer) != `{"statuses":[]}` {
		t.Fatalf("DoBatch = %d %q %v, want 200 and the answer", status, answer, err)
	}
	r := <-reqs
	if r.Method != "PUT" || r.URL.RequestURI() != "/bulk?x=1" || r.Header.Get("Content-Type") != "application/json" || r.Host != addr {
		t.Errorf("request %s %s Content-Type %q Host %q, want PUT /bulk?x=1 application/json %s", r.Method, r.URL.RequestURI(), r.Header.Get("Content-Type"), r.Host, addr)
	}
	if got := <-bodies; string(got) != string(body) {
		t.Errorf("body %s, want %s", got, body)
	}
}

func TestDoBatchStatusAndErrors(t *testing.T) {
	c, err := New(Config{Timeout: 200 * time.Millisecond, MaxResponseBytes: 100})
	if err != nil {
		t.Fatal(err)
	}
	addr, _, _ := batchServer(t, 503, "busy", 0)
	if status, answer, err := c.DoBatch(addr, "POST", "/", 0, []byte(`{}`)); err != nil || status != 503 || string(answer) != "busy" {
		t.Errorf("503 server: DoBatch = %d %q %v, want 503 busy", status, answer, err)
	}
	slow, _, _ := batchServer(t, 200, "late", time.Second)
	start := time.Now()
	if _, _, err := c.DoBatch(slow, "POST", "/", 0, []byte(`{}`)); err == nil || time.Since(start) > 950*time.Millisecond {
		t.Errorf("slow server: DoBatch err %v after %v, want a timeout after ~200ms (the default)", err, time.Since(start))
	}
	start = time.Now()
	if _, _, err := c.DoBatch(slow, "POST", "/", 50*time.Millisecond, []byte(`{}`)); err == nil || time.Since(start) > 600*time.Millisecond {
		t.Errorf("slow server, 50ms timeout: DoBatch err %v after %v, want a timeout", err, time.Since(start))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	if _, _, err := c.DoBatch(closed, "POST", "/", 0, []byte(`{}`)); err == nil {
		t.Error("closed port: DoBatch succeeded, want a transport error")
	}
	big, _, _ := batchServer(t, 200, strings.Repeat("x", 101), 0)
	if _, _, err := c.DoBatch(big, "POST", "/", 0, []byte(`{}`)); !errors.Is(err, errAnswerTooLarge) {
		t.Errorf("answer over MaxResponseBytes: err %v, want errAnswerTooLarge", err)
	}
	if _, _, err := c.DoBatch(addr, "POST", "//evil.example/x", 0, nil); !errors.Is(err, router.ErrBadPath) {
		t.Errorf("authority-form path: err %v, want ErrBadPath", err)
	}
}
