package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayBoundsAndGrowth(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	tests := []struct {
		n           int
		wantNominal time.Duration
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, 1600 * time.Millisecond},
		{6, 2 * time.Second},
		{60, 2 * time.Second},
	}
	for _, tt := range tests {
		seen := map[time.Duration]bool{}
		for range 200 {
			d := Delay(tt.n, lo, hi)
			if d < tt.wantNominal/2 || d > tt.wantNominal {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.n, d, tt.wantNominal/2, tt.wantNominal)
			}
			seen[d] = true
		}
		if len(seen) < 10 {
			t.Errorf("Delay(%d) took only %d distinct values in 200 draws: not jittered", tt.n, len(seen))
		}
	}
}

// TestBackoffGrowsResetsAndStops: Wait grows with failures, Reset starts
// over, and a done context ends the wait at once.
func TestBackoffGrowsResetsAndStops(t *testing.T) {
	b := &Backoff{Min: time.Millisecond, Max: time.Hour}
	for range 3 {
		if !b.Wait(context.Background()) {
			t.Fatal("Wait = false with a live context")
		}
	}
	if b.n != 3 {
		t.Errorf("after 3 waits n = %d", b.n)
	}
	b.Reset()
	if b.n != 0 {
		t.Errorf("after Reset n = %d", b.n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b.n = 40 // an hour's wait
	start := time.Now()
	if b.Wait(ctx) || time.Since(start) > time.Second {
		t.Errorf("Wait on a done context = true or took %s", time.Since(start))
	}
}
