package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msgroute/gateway/internal/backend"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		seq, ts int64
	}{
		{name: "zero", seq: 0, ts: 0},
		{name: "typical", seq: 123456, ts: 1_770_000_000_123_456_789},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := payload(nil, tt.seq, tt.ts, 7)
			seq, ts, ok := parseStamp(b)
			if !ok || seq != tt.seq || ts != tt.ts {
				t.Errorf("parseStamp(%q) = %d, %d, %v; want %d, %d, true", b, seq, ts, ok, tt.seq, tt.ts)
			}
		})
	}
	if _, _, ok := parseStamp([]byte(`{"x":1}`)); ok {
		t.Errorf("parseStamp(foreign) ok = true, want false")
	}
}

func TestRecorderCountsLostAndDuplicates(t *testing.T) {
	r := newRecorder(4, 2)
	base := time.Unix(100, 0)
	send := func(inst int, seq int64, after time.Duration) {
		r.observe(inst, &backend.Message{Received: base.Add(after), ServiceTime: 10 * time.Millisecond, Body: payload(nil, seq, base.UnixNano(), 0)})
	}
	send(0, 0, 1*time.Millisecond)
	send(1, 1, 3*time.Millisecond)
	send(1, 1, 9*time.Millisecond) // duplicate: counted, latency not replaced
	send(0, 2, 2*time.Millisecond)
	r.observe(0, &backend.Message{Received: base, Body: []byte("not ours")})

	if got := r.Distinct(); got != 3 {
		t.Errorf("Distinct() = %d, want 3", got)
	}
	if got := r.dups.Load(); got != 1 {
		t.Errorf("dups = %d, want 1", got)
	}
	if got := r.foreign.Load(); got != 1 {
		t.Errorf("foreign = %d, want 1", got)
	}
	if got := r.lost(); got != 1 {
		t.Errorf("lost() = %d, want 1", got)
	}
	if a, b := r.instances[0].Load(), r.instances[1].Load(); a != 3 || b != 2 {
		t.Errorf("per instance = %d, %d; want 3, 2", a, b)
	}
	path := filepath.Join(t.TempDir(), "run.lat")
	if err := r.dump(path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || len(strings.Split(strings.TrimSpace(string(b)), "\n")) != r.total {
		t.Errorf("dump wrote %q (err %v), want %d lines, one per seq", b, err, r.total)
	}
	got, done := r.latencies()
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}
	if len(got) != len(want) || len(done) != len(want) {
		t.Fatalf("latencies() = %v, %v; want %v", got, done, want)
	}
	for i := range want {
		if got[i] != want[i] || done[i] != want[i]+10*time.Millisecond {
			t.Errorf("latencies()[%d] = %v, %v; want %v, %v", i, got[i], done[i], want[i], want[i]+10*time.Millisecond)
		}
	}
}

func TestSummarize(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 1000; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	got := summarize(s)
	if got.P50 != 500 || got.P90 != 900 || got.P99 != 990 || got.P999 != 999 || got.Max != 1000 {
		t.Errorf("summarize(1..1000ms) = p50 %v p90 %v p99 %v p999 %v max %v; want 500 900 990 999 1000",
			got.P50, got.P90, got.P99, got.P999, got.Max)
	}
	if last := got.Curve[len(got.Curve)-1]; last.Ms != 999 {
		t.Errorf("last curve point = %+v, want 999 ms at 99.9%%", last)
	}
	if e := summarize(nil); e.Count != 0 || e.Curve != nil {
		t.Errorf("summarize(nil) = %+v, want zero", e)
	}
}
