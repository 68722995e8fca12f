package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuIdle measures the fraction of the machine's CPU time that was idle
// over window (from /proc/stat): a direct view of whether anything else
// is running, unlike the slowly decaying load average.
func cpuIdle(ctx context.Context, window time.Duration) (float64, error) {
	idle0, total0, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	t := time.NewTimer(window)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	idle1, total1, err := readCPUTimes()
	if err != nil {
		return 0, err
	}
	if total1 == total0 {
		return 0, fmt.Errorf("cpu idle: no ticks in %v", window)
	}
	return float64(idle1-idle0) / float64(total1-total0), nil
}

// readCPUTimes returns idle (idle + iowait) and total jiffies of all CPUs.
func readCPUTimes() (idle, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, fmt.Errorf("read /proc/stat: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("parse /proc/stat: %q", line)
	}
	for i, s := range f[1:] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc/stat field %d: %w", i+1, err)
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return idle, total, nil
}

// waitIdle waits, at most limit, until the machine is at least want idle
// over one second, and returns the last idle fraction measured. want <= 0
// measures once without waiting.
func waitIdle(ctx context.Context, want float64, limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	for {
		idle, err := cpuIdle(ctx, time.Second)
		if err != nil || idle >= want || time.Now().After(deadline) {
			return idle, err
		}
	}
}

// sideCPU is the CPU time used so far by the bench process itself
// (producer and backends) and by redis-server (when started here): the
// other tenants of the machine's cores.
func (h *harness) sideCPU() [2]time.Duration {
	var out [2]time.Duration
	if s, err := readProcStat(os.Getpid()); err == nil {
		out[0] = s.CPU
	}
	if h.env.redisPid != 0 {
		if s, err := readProcStat(h.env.redisPid); err == nil {
			out[1] = s.CPU
		}
	}
	return out
}

// loadAvg is /proc/loadavg's 1-minute figure: how busy the machine was
// with everything, including work that is not this benchmark.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscanf(string(b), "%f", &v)
	return v
}
