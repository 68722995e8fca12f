package partition

import (
	"strconv"
	"testing"
)

// Known FNV-1a 32 values, so other languages can check their port.
func TestIndex(t *testing.T) {
	tests := []struct {
		key  string
		n    int
		want int
	}{
		{"", 16, int(2166136261 % 16)},  // offset basis
		{"a", 16, int(0xe40c292c % 16)}, // FNV-1a("a")
		{"foobar", 1000, int(0xbf9cf968 % 1000)},
		{"order-42", 1, 0},
	}
	for _, tt := range tests {
		if got := Index(tt.key, tt.n); got != tt.want {
			t.Errorf("Index(%q, %d) = %d, want %d", tt.key, tt.n, got, tt.want)
		}
	}
	if got := Stream("orders", "a", 16); got != "orders.12" {
		t.Errorf(`Stream("orders", "a", 16) = %q, want orders.12`, got)
	}
}

func TestSpread(t *testing.T) {
	counts := make([]int, 4)
	for i := 0; i < 4000; i++ {
		counts[Index("key-"+strconv.Itoa(i), 4)]++
	}
	for i, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("partition %d got %d of 4000 keys, want about 1000", i, c)
		}
	}
}
