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
)

// startDLQServer runs a Server whose DeadLetters source records the limit
// it was asked for and fails when fail is set.
func startDLQServer(t *testing.T, token string, fail bool, gotLimit *int) string {
	t.Helper()
	s, err := New(Config{Listen: "127.0.0.1:0", Token: token, Logger: slog.New(slog.DiscardHandler)}, Sources{
		DeadLetters: func(_ context.Context, limit int) (any, error) {
			*gotLimit = limit
			if fail {
				return nil, errors.New("redis down")
			}
			return []map[string]string{{"id": "1-0", "dlq_reason": "schema"}}, nil
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

func get(t *testing.T, url, auth string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestDeadLettersLimit(t *testing.T) {
	var limit int
	addr := startDLQServer(t, "", false, &limit)
	for _, tc := range []struct {
		name, query string
		status      int
		limit       int
	}{
		{"default", "", 200, 20},
		{"given", "?limit=5", 200, 5},
		{"max", "?limit=1000", 200, 1000},
		{"zero", "?limit=0", 400, -1},
		{"too many", "?limit=1001", 400, -1},
		{"not a number", "?limit=abc", 400, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			limit = -1
			status, _, body := get(t, "http://"+addr+"/deadletters"+tc.query, "")
			if status != tc.status || limit != tc.limit {
				t.Fatalf("GET /deadletters%s = %d (source limit %d), want %d (limit %d); body %s", tc.query, status, limit, tc.status, tc.limit, body)
			}
			if status == 400 && !strings.Contains(body, "limit") {
				t.Errorf("400 body %s does not name the limit parameter", body)
			}
			if status == 200 {
				var out struct {
					Entries []map[string]string `json:"entries"`
				}
				if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Entries) != 1 || out.Entries[0]["dlq_reason"] != "schema" {
					t.Errorf("body %s: want {\"entries\":[...]} (err %v)", body, err)
				}
			}
		})
	}
}

func TestDeadLettersSourceFailureIs503(t *testing.T) {
	var limit int
	addr := startDLQServer(t, "", true, &limit)
	if status, _, body := get(t, "http://"+addr+"/deadletters", ""); status != 503 || !strings.Contains(body, "redis down") {
		t.Errorf("GET /deadletters with a failing source = %d %s, want 503 naming the error", status, body)
	}
}

func TestStatusPageShellNeedsNoTokenButDataDoes(t *testing.T) {
	var limit int
	const token = "page-token"
	addr := startDLQServer(t, token, false, &limit)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", `src="assets/status.js"`},
		{"/assets/status.js", "text/javascript", "sessionStorage"},
		{"/assets/status.css", "text/css", "@media"},
	} {
		status, h, body := get(t, "http://"+addr+tc.path, "")
		if status != 200 || !strings.HasPrefix(h.Get("Content-Type"), tc.ctype) || !strings.Contains(body, tc.contains) {
			t.Errorf("GET %s without token = %d %q, want 200 %s containing %q", tc.path, status, h.Get("Content-Type"), tc.ctype, tc.contains)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q does not forbid other origins", tc.path, csp)
		}
	}
	for _, p := range []string{"/assets/missing.js", "/assets/../status.go", "/assets/x/status.js", "/deadletters"} {
		if status, _, _ := get(t, "http://"+addr+p, ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s without token = %d, want 401", p, status)
		}
	}
	if status, _, _ := get(t, "http://"+addr+"/deadletters", "Bearer "+token); status != 200 {
		t.Errorf("GET /deadletters with token = %d, want 200", status)
	}
	if n := AssetBytes(); n < 1000 || n > 64<<10 {
		t.Errorf("AssetBytes() = %d, want a small page (1 KB .. 64 KB)", n)
	}
}
