package retention

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// syncBuffer is a log sink safe for the trimmer's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDLQMaxLen: the oldest dead letters beyond the bound are trimmed,
// counted, and every dropped ID is logged; the newest stay.
func TestDLQMaxLen(t *testing.T) {
	rdb := newRedis(t)
	ctx := context.Background()
	ids := add(t, rdb, "gateway:dlq", 250)
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	tr, m := newTrimmer(t, rdb, Config{Streams: []string{"orders"}, DLQMaxLen: 100, Mode: Off, Logger: log})
	if got := testutil.ToFloat64(m.StreamTrimmed.WithLabelValues("gateway:dlq")); got != 0 {
		t.Fatalf("trimmed_total{gateway:dlq} before = %v", got)
	}
	tr.pass(ctx)
	left, err := rdb.XRange(ctx, "gateway:dlq", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 100 || left[0].ID != ids[150] {
		t.Fatalf("DLQ after trim: %d entries, want the newest 100 (from %s)", len(left), ids[150])
	}
	if got := testutil.ToFloat64(m.StreamTrimmed.WithLabelValues("gateway:dlq")); got != 150 {
		t.Errorf("gateway_stream_trimmed_total{stream=gateway:dlq} = %v, want 150", got)
	}
	logged := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Msg   string   `json:"msg"`
			Level string   `json:"level"`
			IDs   []string `json:"ids"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Msg == "dead letters trimmed (dlq_maxlen)" && rec.Level == "WARN" {
			for _, id := range rec.IDs {
				logged[id] = true
			}
		}
	}
	for _, id := range ids[:150] {
		if !logged[id] {
			t.Errorf("trimmed dead letter %s was not logged", id)
		}
	}
	if len(logged) != 150 {
		t.Errorf("logged %d IDs, want 150", len(logged))
	}
	tr.pass(ctx)
	if n := xlen(t, rdb, "gateway:dlq"); n != 100 {
		t.Errorf("second pass: XLEN = %d, want 100", n)
	}
}
