//go:build !unix

package streams

import "time"

// processCPU is not measured here: benchmarks report 0 CPU per op.
func processCPU() time.Duration { return 0 }
