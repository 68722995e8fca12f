package main

import (
	"os"
	"testing"
	"time"
)

func TestReadProcStatSelf(t *testing.T) {
	// Burn a little CPU so utime is measurable at 10 ms resolution.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	s, err := readProcStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.HWM < s.RSS || s.CPU <= 0 || !s.Live {
		t.Errorf("readProcStat(self) = %+v, want RSS > 0, HWM >= RSS, CPU > 0", s)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 4}
	b.Write([]byte("ab"))
	b.Write([]byte("cdef"))
	if got := b.String(); got != "cdef" {
		t.Errorf("tail = %q, want %q", got, "cdef")
	}
}

func TestCPUIdle(t *testing.T) {
	idle, err := cpuIdle(t.Context(), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if idle < 0 || idle > 1 {
		t.Errorf("cpuIdle = %v, want within [0,1]", idle)
	}
}
