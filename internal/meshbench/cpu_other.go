//go:build !unix

package meshbench

import "time"

// cpuTime is not measured here: CPU per MiB shows as 0.
func cpuTime() time.Duration { return 0 }

func cpuTimeWithChildren() time.Duration { return 0 }
