// Package cputime reads the CPU time this process has used, for benchmarks
// that report CPU per operation: on a machine shared with other processes,
// wall time per op also counts their turns on the cores, while the
// process's own user and system time (including its GC) does not.
package cputime

import "time"

// Process is the user plus system CPU time this process has used so far,
// or 0 where the platform does not report it (see the unix file).
func Process() time.Duration { return process() }
