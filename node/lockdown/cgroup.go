package lockdown

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moatmesh/moat/internal/cgroupfs"
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

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	m, err := cgroupfs.Mount()
	if errors.Is(err, cgroupfs.ErrNotMounted) {
		return "", fmt.Errorf("%w: use ServiceUID instead of ServiceCgroup", err)
	}
	return m, err
}
