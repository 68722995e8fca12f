//go:build unix

package streams

import (
	"syscall"
	"time"
)

// processCPU is the CPU time this process has used so far (user and
// system): a benchmark talking to redis-server reports its own CPU per
// entry, not the server's.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
