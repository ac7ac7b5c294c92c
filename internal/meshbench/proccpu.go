package meshbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc's CPU times.
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU (user and system, and that of its waited-for
// children) process pid and its live descendants have used so far, read
// from /proc; 0 where there is none.
func treeCPU(pid int) time.Duration {
	t := procCPU(pid)
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			if kid, err := strconv.Atoi(c); err == nil {
				t += treeCPU(kid)
			}
		}
	}
	return t
}

// procCPU reads utime, stime, cutime and cstime from /proc/PID/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name in parentheses may hold spaces: fields count
	// from the last ')'. utime is field 14 of the line, the 12th after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:15] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * clockTick
}
