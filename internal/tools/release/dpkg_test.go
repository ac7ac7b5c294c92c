package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestDpkgInstallIntoRoot installs, upgrades, removes and purges
// moat-coordinator with the real dpkg into a throwaway root (dpkg --root
// with --force-script-chrootless: the maintainer scripts run with
// DPKG_ROOT and the real systemd-sysusers and systemd-tmpfiles work on
// that root only), and checks the user, the directories, the modes and
// owners on disk, that an upgrade keeps an edited conffile, and that the
// host's users and files are untouched.
func TestDpkgInstallIntoRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("dpkg --root sets owners: run as root (make test does)")
	}
	for _, c := range []string{"dpkg", "systemd-sysusers", "systemd-tmpfiles"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s", c)
		}
	}
	hostUsers := hostMoatUsers(t)
	_, hostState := os.Stat("/var/lib/moat-coordinator")

	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), nil, 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "etc/group"), []byte("root:x:0:\n"), 0o644))
	dpkg := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless", "--force-depends",
			"--force-confold", "--log=/dev/null"}, args...)...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	debs := filepath.Join(dir, "debs-v1.2.3")
	testDebs(t, dir, "v1.2.3")
	out := dpkg("-i", filepath.Join(debs, "moat-coordinator_1.2.3_amd64.deb"))
	if !strings.Contains(out, "installed, not started") {
		t.Errorf("postinst did not say the service waits for its settings:\n%s", out)
	}
	uid, gid := passwdIDs(t, root, "moat")
	wantFile(t, filepath.Join(root, "usr/bin/moat-coordinator"), 0o755, 0, 0)
	wantFile(t, filepath.Join(root, "var/lib/moat-coordinator"), os.ModeDir|0o700, uid, gid)
	env := filepath.Join(root, "etc/moat/coordinator.env")
	wantFile(t, env, 0o640, 0, gid)
	dpkg("-i", filepath.Join(debs, "moat-node_1.2.3_amd64.deb")) // shares /etc/moat
	nuid, ngid := passwdIDs(t, root, "moat-node")
	wantFile(t, filepath.Join(root, "var/lib/moat-node"), os.ModeDir|0o700, nuid, ngid)
	wantFile(t, filepath.Join(root, "etc/moat/node.env"), 0o600, 0, 0)
	wantFile(t, filepath.Join(root, "usr/lib/systemd/system/moat-node.service"), 0o644, 0, 0)
	if status := dpkg("-s", "moat-coordinator"); !strings.Contains(status, "Status: install ok installed") ||
		!strings.Contains(status, "/etc/moat/coordinator.env") {
		t.Errorf("dpkg status:\n%s", status)
	}

	// An upgrade keeps the admin's settings (a conffile), and the user.
	must(t, os.WriteFile(env, []byte("MOAT_PUBLIC_URL=https://moat.example.com\n"), 0o640))
	testDebs(t, dir, "v1.2.4")
	dpkg("-i", filepath.Join(dir, "debs-v1.2.4", "moat-coordinator_1.2.4_amd64.deb"))
	if b, _ := os.ReadFile(env); string(b) != "MOAT_PUBLIC_URL=https://moat.example.com\n" {
		t.Errorf("the upgrade replaced the edited settings: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "usr/bin/moat-coordinator")); !bytes.Contains(b, []byte("v1.2.4")) {
		t.Error("the upgrade did not replace the binary")
	}
	if u, g := passwdIDs(t, root, "moat"); u != uid || g != gid {
		t.Errorf("the upgrade changed the user: %d:%d → %d:%d", uid, gid, u, g)
	}

	dpkg("-r", "moat-coordinator")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/moat-coordinator")); err == nil {
		t.Error("remove left the binary")
	}
	if _, err := os.Stat(env); err != nil {
		t.Error("remove took the settings (only purge may)")
	}
	out = dpkg("-P", "moat-coordinator")
	if _, err := os.Stat(env); err == nil {
		t.Error("purge left the settings")
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/moat-coordinator")); err != nil || !strings.Contains(out, "kept /var/lib/moat-coordinator") {
		t.Errorf("purge must keep the state and say so (stat %v):\n%s", err, out)
	}

	if after := hostMoatUsers(t); after != hostUsers {
		t.Errorf("the host's moat users and groups changed: %q → %q", hostUsers, after)
	}
	if _, err := os.Stat("/var/lib/moat-coordinator"); (err == nil) != (hostState == nil) {
		t.Error("the host's /var/lib/moat-coordinator appeared or went")
	}
}

// hostMoatUsers returns the host's passwd and group lines of moat and
// moat-node (other tests may add other users meanwhile).
func hostMoatUsers(t *testing.T) string {
	t.Helper()
	var lines []string
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, err := os.ReadFile(f)
		must(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "moat:") || strings.HasPrefix(line, "moat-node:") {
				lines = append(lines, line)
			}
		}
	}
	return strings.Join(lines, "\n")
}

// passwdIDs returns name's uid and gid in root's /etc/passwd.
func passwdIDs(t *testing.T, root, name string) (int, int) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	must(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == name {
			uid, err1 := strconv.Atoi(f[2])
			gid, err2 := strconv.Atoi(f[3])
			if err1 != nil || err2 != nil || uid == 0 || f[6] == "/bin/sh" || f[6] == "/bin/bash" {
				t.Fatalf("user %s: %q: want a system user without a login shell", name, line)
			}
			return uid, gid
		}
	}
	t.Fatalf("no user %s in %s/etc/passwd:\n%s", name, root, b)
	return 0, 0
}

func wantFile(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != mode || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: %v %d:%d, want %v %d:%d", path, fi.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
}
