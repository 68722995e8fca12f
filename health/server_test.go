package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startServer runs a Server on a free loopback port until the test ends.
func startServer(t *testing.T, token string, ready bool) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "t"}))
	check := func(context.Context) error {
		if !ready {
			return errors.New("not yet")
		}
		return nil
	}
	s, err := New(Config{Listen: "127.0.0.1:0", Token: token, Logger: slog.New(slog.DiscardHandler)}, Sources{
		Gatherer:  reg,
		Checks:    []Check{{Name: "x", Fn: check}},
		Rules:     func() any { return map[string]string{"version": "v"} },
		Instances: func() any { return []string{} },
		Streams:   func() any { return []map[string]any{{"stream": "orders", "length": 3}} },
		Explain: func(string, map[string]string) (any, error) {
			return []string{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return s.Addr()
}

func TestAdminTokenGuardsEveryEndpointButProbes(t *testing.T) {
	const token = "adm-Token-7f3e"
	addr := startServer(t, token, true)
	type endpoint struct{ method, path, body string }
	guarded := []endpoint{
		{"GET", "/metrics", ""}, {"GET", "/rules", ""}, {"GET", "/instances", ""}, {"GET", "/streams", ""},
		{"POST", "/explain", `{"stream":"s","fields":{}}`},
		{"GET", "/nonexistent", ""}, // unknown paths do not reveal themselves either
	}
	probes := []endpoint{{"GET", "/healthz", ""}, {"GET", "/readyz", ""}}
	auths := []struct {
		name   string
		header string // "" = no Authorization header
		ok     bool
	}{
		{"no header", "", false},
		{"wrong token", "Bearer wrong", false},
		{"token prefix", "Bearer " + token[:len(token)-1], false},
		{"token plus suffix", "Bearer " + token + "x", false},
		{"token without Bearer", token, false},
		{"basic scheme", "Basic " + token, false},
		{"empty bearer", "Bearer ", false},
		{"right token", "Bearer " + token, true},
	}
	for _, a := range auths {
		for _, e := range guarded {
			t.Run(a.name+" "+e.path, func(t *testing.T) {
				status := do(t, addr, e.method, e.path, e.body, a.header)
				want := http.StatusUnauthorized
				if a.ok {
					want = http.StatusOK
					if e.path == "/nonexistent" {
						want = http.StatusNotFound
					}
				}
				if status != want {
					t.Errorf("%s %s with %q = %d, want %d", e.method, e.path, a.header, status, want)
				}
			})
		}
		for _, e := range probes {
			t.Run(a.name+" "+e.path, func(t *testing.T) {
				if status := do(t, addr, e.method, e.path, e.body, a.header); status != http.StatusOK {
					t.Errorf("%s %s with %q = %d, want 200 (probes need no token)", e.method, e.path, a.header, status)
				}
			})
		}
	}
}

func TestAdminWithoutTokenIsOpen(t *testing.T) {
	addr := startServer(t, "", false)
	for _, tc := range []struct {
		path string
		want int
	}{{"/healthz", 200}, {"/readyz", 503}, {"/metrics", 200}, {"/rules", 200}, {"/instances", 200}} {
		if got := do(t, addr, "GET", tc.path, "", ""); got != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, got, tc.want)
		}
	}
}

func TestStreamsEndpointWrapsTheList(t *testing.T) {
	addr := startServer(t, "", true)
	resp, err := http.Get("http://" + addr + "/streams")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got struct {
		Streams []struct {
			Stream string `json:"stream"`
			Length int    `json:"length"`
		} `json:"streams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || len(got.Streams) != 1 || got.Streams[0].Stream != "orders" || got.Streams[0].Length != 3 {
		t.Errorf("GET /streams = %d %+v, want 200 {\"streams\":[{\"stream\":\"orders\",\"length\":3}]}", resp.StatusCode, got)
	}
}

func TestAdminListensOnLoopbackByDefault(t *testing.T) {
	s, err := New(Config{}, Sources{})
	if err != nil {
		// 9595 may be taken on a developer machine; the default is what matters.
		if !strings.Contains(err.Error(), "127.0.0.1:9595") {
			t.Fatalf("New(default) error %v does not name 127.0.0.1:9595", err)
		}
		return
	}
	defer s.ln.Close()
	if got := s.Addr(); got != "127.0.0.1:9595" {
		t.Errorf("default Addr() = %s, want 127.0.0.1:9595", got)
	}
}

func do(t *testing.T, addr, method, path, body, auth string) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
