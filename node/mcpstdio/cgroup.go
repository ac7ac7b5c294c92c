package mcpstdio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moatmesh/moat/internal/cgroupfs"
	"golang.org/x/sys/unix"
)

// MakeCgroup creates the cgroup v2 a stdio server's processes start in:
// mcp-NAME below the node's own cgroup, which the node must be allowed to
// write (the shipped unit delegates it: Delegate=yes). It returns the
// directory and the path relative to the cgroup2 mount, which the
// lockdown matches (socket cgroupv2).
func MakeCgroup(name string) (dir, rel string, err error) {
	mount, err := cgroup2Mount()
	if err != nil {
		return "", "", err
	}
	own, err := ownCgroup()
	if err != nil {
		return "", "", err
	}
	rel = filepath.Join(own, "mcp-"+name)
	dir = filepath.Join(mount, rel)
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", "", fmt.Errorf("MCP server %s: create its cgroup %s: %w (the node's cgroup must be delegated to it: Delegate=yes in its unit)", name, dir, err)
	}
	return dir, rel, nil
}

// ownCgroup is this process's cgroup v2 path ("0::/path" in
// /proc/self/cgroup).
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p, nil
		}
	}
	return "", errors.New("this process is in no cgroup v2")
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	m, err := cgroupfs.Mount()
	if errors.Is(err, cgroupfs.ErrNotMounted) {
		return "", fmt.Errorf("%w: a stdio MCP server needs one for its own cgroup", err)
	}
	return m, err
}

func openCgroup(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	return fd, nil
}

func closeFD(fd int) { unix.Close(fd) }

// killCgroup kills whatever is left in dir (processes that left their
// process group) and removes it.
func killCgroup(dir string) {
	os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0)
	for range 50 {
		if err := unix.Rmdir(dir); err == nil || !errors.Is(err, unix.EBUSY) {
			return
		}
		waitPopulated(dir)
	}
}

// waitPopulated waits (briefly) for dir's cgroup.events to change.
func waitPopulated(dir string) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.InotifyAddWatch(fd, filepath.Join(dir, "cgroup.events"), unix.IN_MODIFY)
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	unix.Poll(pfd, 100)
}

// makeHome creates the server's HOME, owned by its user.
func makeHome(dir string, c Command) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("MCP server %s: HOME %s: %w", c.Name, dir, err)
	}
	if c.UID != nil {
		if err := os.Chown(dir, int(*c.UID), int(c.GID)); err != nil {
			return fmt.Errorf("MCP server %s: HOME %s: %w", c.Name, dir, err)
		}
	}
	return nil
}
