package backend

import (
	"slices"
	"testing"
	"time"
)

func TestParseLatency(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{name: "empty", in: "", want: "0s"},
		{name: "zero", in: "0", want: "0s"},
		{name: "fixed", in: "2ms", want: "2ms"},
		{name: "lognormal", in: "lognormal:2ms:8ms", want: "lognormal:2ms:8ms"},
		{name: "lognormal missing p99", in: "lognormal:2ms", wantErr: true},
		{name: "lognormal p99 below median", in: "lognormal:8ms:2ms", wantErr: true},
		{name: "negative", in: "-1ms", wantErr: true},
		{name: "garbage", in: "fast", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLatency(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseLatency(%q) error = %v, wantErr %v", tt.in, err, tt.wantErr)
			}
			if err == nil && l.String() != tt.want {
				t.Errorf("ParseLatency(%q) = %q, want %q", tt.in, l.String(), tt.want)
			}
		})
	}
}

func TestFixedSampleIsConstant(t *testing.T) {
	l := Fixed(3 * time.Millisecond)
	for range 100 {
		if got := l.Sample(); got != 3*time.Millisecond {
			t.Fatalf("Fixed(3ms).Sample() = %v, want 3ms", got)
		}
	}
	if got := l.Scale(10).Sample(); got != 30*time.Millisecond {
		t.Errorf("Fixed(3ms).Scale(10).Sample() = %v, want 30ms", got)
	}
}

// TestLogNormalQuantiles checks the empirical median and p99 of many
// samples against the model's parameters, within sampling tolerance.
func TestLogNormalQuantiles(t *testing.T) {
	tests := []struct {
		name        string
		median, p99 time.Duration
		scale       float64
	}{
		{name: "2ms/8ms", median: 2 * time.Millisecond, p99: 8 * time.Millisecond, scale: 1},
		{name: "1ms/20ms", median: time.Millisecond, p99: 20 * time.Millisecond, scale: 1},
		{name: "2ms/8ms x10", median: 2 * time.Millisecond, p99: 8 * time.Millisecond, scale: 10},
	}
	const n = 200_000
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := LogNormal(tt.median, tt.p99)
			if err != nil {
				t.Fatal(err)
			}
			l = l.Scale(tt.scale)
			s := make([]time.Duration, n)
			for i := range s {
				s[i] = l.Sample()
			}
			slices.Sort(s)
			check := func(what string, got, want time.Duration) {
				t.Helper()
				if r := float64(got) / float64(want); r < 0.95 || r > 1.05 {
					t.Errorf("%s = %v, want %v ±5%%", what, got, want)
				}
			}
			check("median", s[n/2], time.Duration(float64(tt.median)*tt.scale))
			check("p99", s[n*99/100], time.Duration(float64(tt.p99)*tt.scale))
			check("Quantile(0.99)", l.Quantile(0.99), time.Duration(float64(tt.p99)*tt.scale))
		})
	}
}
