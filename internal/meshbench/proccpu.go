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

// cpuSplit is CPU time in user and system (kernel) mode.
type cpuSplit struct{ User, Sys time.Duration }

func (c cpuSplit) total() time.Duration { return c.User + c.Sys }

func (c cpuSplit) minus(d cpuSplit) cpuSplit { return cpuSplit{c.User - d.User, c.Sys - d.Sys} }

// treeCPU is the CPU (user and system, and that of its waited-for
// children) process pid and its live descendants have used so far, read
// from /proc; 0 where there is none.
func treeCPU(pid int) time.Duration { return treeSplit(pid).total() }

// treeSplit is treeCPU in user and system time.
func treeSplit(pid int) cpuSplit {
	t := procSplit(pid)
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, f := range tasks {
		b, _ := os.ReadFile(f)
		for _, c := range strings.Fields(string(b)) {
			if kid, err := strconv.Atoi(c); err == nil {
				k := treeSplit(kid)
				t.User += k.User
				t.Sys += k.Sys
			}
		}
	}
	return t
}

// procSplit reads utime and cutime (user), stime and cstime (system)
// from /proc/PID/stat.
func procSplit(pid int) cpuSplit {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return cpuSplit{}
	}
	// The command name in parentheses may hold spaces: fields count
	// from the last ')'. utime is field 14 of the line, the 12th after it.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return cpuSplit{}
	}
	var ticks [4]int64 // utime, stime, cutime, cstime
	for i, v := range f[11:15] {
		ticks[i], _ = strconv.ParseInt(v, 10, 64)
	}
	return cpuSplit{
		User: time.Duration(ticks[0]+ticks[2]) * clockTick,
		Sys:  time.Duration(ticks[1]+ticks[3]) * clockTick,
	}
}
