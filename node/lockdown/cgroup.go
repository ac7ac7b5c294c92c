package lockdown

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// cgroupLevel is the depth of a cgroup v2 path below the root, as
// `socket cgroupv2 level N` wants it.
func cgroupLevel(path string) uint32 {
	path = strings.Trim(path, "/")
	if path == "" {
		return 0
	}
	return uint32(strings.Count(path, "/") + 1)
}

// cgroupID returns the id of the cgroup v2 at path (relative to the
// cgroup2 mount): the inode number of its directory.
func cgroupID(path string) (uint64, error) {
	root, err := cgroup2Mount()
	if err != nil {
		return 0, err
	}
	dir := filepath.Join(root, filepath.Clean("/"+path))
	fi, err := os.Stat(dir)
	if err != nil {
		return 0, fmt.Errorf("service cgroup %q: %w (start the inference server first, or use ServiceUID)", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.IsDir() {
		return 0, fmt.Errorf("service cgroup %q: %s is not a cgroup directory", path, dir)
	}
	return st.Ino, nil
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted
// (/sys/fs/cgroup on unified systems, /sys/fs/cgroup/unified on hybrid).
func cgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source super
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	return "", errors.New("no cgroup2 hierarchy is mounted: use ServiceUID instead of ServiceCgroup")
}
