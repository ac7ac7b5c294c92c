// Package cgroupfs finds the cgroup v2 hierarchy, which the node's
// lockdown (cgroup-scoped rules) and its stdio MCP sandbox (a cgroup per
// server) both use.
package cgroupfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrNotMounted is Mount's error when no cgroup v2 hierarchy is mounted.
var ErrNotMounted = errors.New("no cgroup2 hierarchy is mounted")

// Mount finds where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup
// on unified systems, /sys/fs/cgroup/unified on hybrid ones).
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	defer f.Close()
	return mountIn(f)
}

// mountIn reads a mountinfo table.
func mountIn(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	return "", ErrNotMounted
}
