package meshbench

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestTreeCPUReadsProc burns CPU and requires /proc's figure for this
// process to agree with getrusage's to within a few clock ticks.
func TestTreeCPUReadsProc(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	start := cpuTime()
	for x := 0; cpuTime()-start < 100*time.Millisecond; x++ {
		_ = x * x
	}
	got, want := treeCPU(os.Getpid()), cpuTime()
	if got <= 0 || got > want+5*clockTick || got < want-5*clockTick {
		t.Fatalf("/proc says %v of CPU, getrusage %v", got, want)
	}
	if treeCPU(-1) != 0 {
		t.Fatal("a process that does not exist has CPU")
	}
}
