package mcpstdio

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// launchEnv carries a Command to the node's executable re-run as the
// launcher (LaunchMain).
const launchEnv = "MOAT_MCP_LAUNCH"

// launch is what the launcher gets: the server and its environment.
type launch struct {
	Command
	Env []string `json:"env"`
}

// LaunchMain runs the launcher when this process was started as one, and
// returns otherwise. moat-node's main (and TestMain of tests that start
// stdio servers) calls it before anything else. The launcher drops every
// power the node holds and executes the server; it never returns.
func LaunchMain() {
	raw, ok := os.LookupEnv(launchEnv)
	if !ok {
		return
	}
	var l launch
	if err := json.Unmarshal([]byte(raw), &l); err != nil {
		fail("bad launch spec: %v", err)
	}
	runtime.LockOSThread() // capabilities and ids below are this thread's
	if err := sandbox(l.Command); err != nil {
		fail("MCP server %s not started: %v", l.Name, err)
	}
	err := unix.Exec(l.Path, append([]string{l.Path}, l.Args...), l.Env)
	fail("MCP server %s: exec %s: %v", l.Name, l.Path, err)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "moat-node: "+format+"\n", args...)
	os.Exit(126)
}

// sandbox empties the bounding, ambient and inheritable capability sets,
// switches user when c says so, and sets no_new_privs. Each step fails
// closed.
func sandbox(c Command) error {
	last, err := lastCap()
	if err != nil {
		return err
	}
	for cp := 0; cp <= last; cp++ {
		if in, _ := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(cp), 0, 0, 0); in != 1 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(cp), 0, 0, 0); err != nil {
			return fmt.Errorf("cannot empty the capability bounding set (%v): the node needs CAP_SETPCAP, which deploy/systemd/moat-node.service grants", err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear ambient capabilities: %w", err)
	}
	if c.UID != nil {
		if err := switchUser(*c.UID, c.GID); err != nil {
			return err
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var none [2]unix.CapUserData
	if err := unix.Capset(&hdr, &none[0]); err != nil {
		return fmt.Errorf("clear capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set no_new_privs: %w", err)
	}
	return nil
}

// switchUser sets this thread's groups, group and user ids: raw system
// calls, as only the thread that executes the server matters.
func switchUser(uid, gid uint32) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("setgroups: %w (running a server as its own user needs CAP_SETGID)", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
		return fmt.Errorf("setresgid %d: %w (needs CAP_SETGID)", gid, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
		return fmt.Errorf("setresuid %d: %w (needs CAP_SETUID)", uid, e)
	}
	return nil
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read cap_last_cap: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// command returns the launcher for c: the node's own executable, with
// stdin and stdout to be piped by the caller, in cgroupFD's cgroup (-1:
// the node's) and its own process group.
func command(c Command, env []string, cgroupFD int) (*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find moat-node's executable: %w", err)
	}
	spec, err := json.Marshal(launch{Command: c, Env: env})
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Args = []string{"moat-node-mcp-" + c.Name}
	cmd.Env = []string{launchEnv + "=" + string(spec)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cgroupFD >= 0 {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = cgroupFD
	}
	return cmd, nil
}

// ProtectSelf applies MemoryDenyWriteExecute to this process without
// passing it to the processes it starts (PR_MDWE_NO_INHERIT, Linux 6.6),
// so that stdio servers can run JITs (Node.js). It reports whether MDWE
// is in force for this process and whether children escape it; an error
// says why not.
func ProtectSelf() (inForce, inherited bool, err error) {
	const refuseExecGain, noInherit = 1, 2
	cur, err := unix.PrctlRetInt(unix.PR_GET_MDWE, 0, 0, 0, 0)
	if err != nil {
		return false, false, fmt.Errorf("this kernel has no PR_SET_MDWE (Linux 6.3+): %w", err)
	}
	if cur&refuseExecGain != 0 {
		return true, cur&noInherit == 0, nil
	}
	if err := unix.Prctl(unix.PR_SET_MDWE, refuseExecGain|noInherit, 0, 0, 0); err != nil {
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("this kernel has no PR_MDWE_NO_INHERIT (Linux 6.6+): %w", err)
		}
		return false, false, err
	}
	return true, false, nil
}
