//go:build unix

package cputime

import (
	"testing"
	"time"
)

func TestProcessGrowsWithWork(t *testing.T) {
	before := Process()
	if before <= 0 {
		t.Fatalf("Process() = %v before any work, want > 0 (the test binary has run)", before)
	}
	x := 0
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
		for i := range 10000 {
			x += i
		}
	}
	if after := Process(); after-before < 20*time.Millisecond {
		t.Errorf("50 ms of busy loop (%d) added %v of CPU time, want at least 20ms", x, after-before)
	}
}
