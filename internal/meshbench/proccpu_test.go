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
	// Work with no system calls is user time.
	before := treeSplit(os.Getpid())
	sum := 0
	for i := range 400_000_000 {
		sum += i ^ sum>>3
	}
	spent := treeSplit(os.Getpid()).minus(before)
	if spent.User < 5*clockTick || spent.Sys > spent.User {
		t.Fatalf("/proc's split of a user-mode loop (%d): %+v, want mostly user time", sum, spent)
	}
	if treeCPU(-1) != 0 {
		t.Fatal("a process that does not exist has CPU")
	}
}
