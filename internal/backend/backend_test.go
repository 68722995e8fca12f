package backend

import (
	"context"
	"encoding/json"
	"net"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// serve runs b on an in-memory listener and returns a client for it.
func serve(t *testing.T, b *Backend) *fasthttp.Client {
	t.Helper()
	ln := fasthttputil.NewInmemoryListener()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &fasthttp.Client{Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

func post(t *testing.T, c *fasthttp.Client, path, body string, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://backend" + path)
	req.Header.SetMethod(fasthttp.MethodPost)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	req.SetBodyString(body)
	if err := c.Do(req, resp); err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp.StatusCode(), append([]byte(nil), resp.Body()...)
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "no name", cfg: Config{}},
		{name: "negative error rate", cfg: Config{Name: "a", ErrorRate: -0.1}},
		{name: "error rate above 1", cfg: Config{Name: "a", ErrorRate: 1.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil {
				t.Errorf("New(%+v) = nil error, want error", tt.cfg)
			}
		})
	}
}

func TestAckAndCounters(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	b, err := New(Config{Name: "orders", ID: "orders-1", OnMessage: func(m *Message) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, string(m.Route)+"|"+string(m.MessageID)+"|"+string(m.Header("X-Msg-Type"))+"|"+string(m.Body))
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, b)

	status, body := post(t, c, "/orders", `{"a":1}`, map[string]string{
		"X-Route": "r1", "X-Message-Id": "1-0", "X-Msg-Type": "order.created",
	})
	if status != 200 {
		t.Fatalf("status = %d, want 200", status)
	}
	var ack struct {
		OK      bool   `json:"ok"`
		Service string `json:"service"`
		ID      string `json:"id"`
	}
	if err := json.Unmarshal(body, &ack); err != nil {
		t.Fatalf("ack %q: %v", body, err)
	}
	if !ack.OK || ack.Service != "orders" || ack.ID != "orders-1" {
		t.Errorf("ack = %+v, want ok orders orders-1", ack)
	}
	post(t, c, "/x", "", nil)

	// Health checks are not messages.
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://backend/health")
	if err := c.Do(req, resp); err != nil || resp.StatusCode() != 200 {
		t.Fatalf("GET /health = %d, %v; want 200", resp.StatusCode(), err)
	}
	b.SetHealthy(false)
	if err := c.Do(req, resp); err != nil || resp.StatusCode() != 503 {
		t.Fatalf("GET /health unhealthy = %d, %v; want 503", resp.StatusCode(), err)
	}

	if got := b.Stats(); got.Received != 2 || got.Errors != 0 || got.InFlight != 0 {
		t.Errorf("Stats() = %+v, want Received 2, Errors 0, InFlight 0", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != `r1|1-0|order.created|{"a":1}` {
		t.Errorf("OnMessage saw %q", seen)
	}
}

func TestErrorRate(t *testing.T) {
	b, err := New(Config{Name: "a", ErrorRate: 1})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, b)
	for range 5 {
		if status, _ := post(t, c, "/", "x", nil); status != 503 {
			t.Fatalf("status = %d, want 503 with error rate 1", status)
		}
	}
	if got := b.Stats(); got.Received != 5 || got.Errors != 5 {
		t.Errorf("Stats() = %+v, want Received 5, Errors 5", got)
	}
}

// TestMaxInFlight holds every request inside OnMessage until all have
// arrived, so exactly n are in flight at once.
func TestMaxInFlight(t *testing.T) {
	const n = 8
	var arrived sync.WaitGroup
	arrived.Add(n)
	release := make(chan struct{})
	b, err := New(Config{Name: "a", OnMessage: func(*Message) {
		arrived.Done()
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, b)
	var done sync.WaitGroup
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			post(t, c, "/", "x", nil)
		}()
	}
	arrived.Wait()
	if got := b.Stats().InFlight; got != n {
		t.Errorf("InFlight while held = %d, want %d", got, n)
	}
	close(release)
	done.Wait()
	if got := b.Stats(); got.MaxInFlight != n || got.InFlight != 0 || got.Received != n {
		t.Errorf("Stats() = %+v, want MaxInFlight %d, InFlight 0, Received %d", got, n, n)
	}
}
