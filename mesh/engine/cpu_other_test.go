//go:build !unix

package engine

import "time"

// cpuTime is not measured here: BenchmarkPath reports 0 CPU.
func cpuTime() time.Duration { return 0 }
