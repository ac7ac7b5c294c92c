//go:build unix

package meshbench

import (
	"syscall"
	"time"
)

// cpuTime is the CPU this process used so far (user and system).
func cpuTime() time.Duration { return rusageCPU(syscall.RUSAGE_SELF) }

// cpuTimeWithChildren is cpuTime plus the CPU of the children it waited
// for (an iperf3 client).
func cpuTimeWithChildren() time.Duration {
	return cpuTime() + rusageCPU(syscall.RUSAGE_CHILDREN)
}

func rusageCPU(who int) time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
