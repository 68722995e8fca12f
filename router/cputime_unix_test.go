//go:build unix

package router

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used so far (user and
// system), for benchmarks that report CPU per message: on a shared
// machine, wall time per op also counts the waits for other processes.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
