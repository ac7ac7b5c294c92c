package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testDebs builds the packages of version with stand-in binaries (small
// scripts: the packaging, not the programs, is under test) into
// dir/debs-VERSION and returns their paths.
func testDebs(t *testing.T, dir, version string) []string {
	t.Helper()
	bin := filepath.Join(dir, "bin")
	for _, p := range packages {
		for _, arch := range []string{"amd64", "arm64"} {
			must(t, os.MkdirAll(bin, 0o755))
			must(t, os.WriteFile(filepath.Join(bin, p.Name+"-linux-"+arch), []byte("#!/bin/sh\necho "+p.Name+" "+version+"\n"), 0o755))
		}
	}
	out := filepath.Join(dir, "debs-"+version)
	must(t, debCmd([]string{"-root", "../../..", "-bin", bin, "-out", out, "-version", version}))
	debs, err := filepath.Glob(filepath.Join(out, "*.deb"))
	must(t, err)
	if len(debs) != 6 {
		t.Fatalf("%d packages, want 3 for each of 2 architectures: %v", len(debs), debs)
	}
	return debs
}

func TestDebVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.3": "1.2.3", "1.2.3": "1.2.3", "v1.2.3-rc.1": "1.2.3~rc.1", "v1.2.3-4-gabc123": "1.2.3+4.gabc123",
		"v1.2.3-rc.1-4-gabc123-dirty": "1.2.3~rc.1+4.gabc123+dirty", "v0.0.0-test": "0.0.0~test",
		"b7c15b1": "0.0.0~b7c15b1", "dev": "0.0.0~dev",
	} {
		if got := debVersion(in); got != want {
			t.Errorf("debVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPackages checks the packages with dpkg-deb as a reviewer would:
// fields, files, modes, conffiles, the packaged units, and the
// maintainer scripts run against stand-ins that record what they do.
func TestPackages(t *testing.T) {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("dpkg-deb not installed (apt-get install dpkg)")
	}
	dir := t.TempDir()
	testDebs(t, dir, "v1.2.3")
	deb := func(name string) string { return filepath.Join(dir, "debs-v1.2.3", name+"_1.2.3_amd64.deb") }

	info := dpkgDeb(t, "--info", deb("moat-node"))
	for _, want := range []string{"Package: moat-node", "Version: 1.2.3", "Architecture: amd64",
		"Depends: nftables, systemd-sysusers | adduser", "conffiles", "postinst", "prerm", "postrm"} {
		if !strings.Contains(info, want) {
			t.Errorf("moat-node --info lacks %q:\n%s", want, info)
		}
	}
	if info := dpkgDeb(t, "--info", deb("moat")); strings.Contains(info, "postinst") || strings.Contains(info, "Depends:") {
		t.Errorf("the client package needs no scripts or dependencies:\n%s", info)
	}
	wantFiles := map[string][]string{
		"moat-node": {"-rwxr-xr-x root/root .* ./usr/bin/moat-node", "-rw------- root/root .* ./etc/moat/node.env",
			"-rw-r--r-- root/root .* ./usr/lib/systemd/system/moat-node.service", "./usr/lib/sysusers.d/moat-node.conf",
			"./usr/lib/tmpfiles.d/moat-node.conf"},
		"moat-coordinator": {"-rwxr-xr-x root/root .* ./usr/bin/moat-coordinator", "-rw-r----- root/root .* ./etc/moat/coordinator.env",
			"./usr/lib/systemd/system/moat-coordinator.service", "./usr/lib/sysusers.d/moat-coordinator.conf"},
		"moat": {"-rwxr-xr-x root/root .* ./usr/bin/moat", "./usr/share/doc/moat/copyright"},
	}
	for name, want := range wantFiles {
		contents := dpkgDeb(t, "--contents", deb(name))
		for _, w := range want {
			if !matchLine(contents, w) {
				t.Errorf("%s --contents lacks %q:\n%s", name, w, contents)
			}
		}
	}

	root := filepath.Join(dir, "x")
	dpkgDeb(t, "-x", deb("moat-node"), root)
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/moat-node.service"))
	must(t, err)
	for _, want := range []string{"ExecStart=/usr/bin/moat-node ", "EnvironmentFile=/etc/moat/node.env", "User=moat-node"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("packaged unit lacks %q", want)
		}
	}
	if strings.Contains(string(unit), "/usr/local/bin") {
		t.Error("packaged unit still runs /usr/local/bin")
	}
	conf := filepath.Join(dir, "conffiles")
	dpkgDeb(t, "-e", deb("moat-node"), conf)
	if b, _ := os.ReadFile(filepath.Join(conf, "conffiles")); strings.TrimSpace(string(b)) != "/etc/moat/node.env" {
		t.Errorf("conffiles = %q, want /etc/moat/node.env", b)
	}
	maintainerScripts(t, dir, deb("moat-coordinator"), "moat", "moat-coordinator")
	maintainerScripts(t, dir, deb("moat-node"), "moat-node", "moat-node")
}

// maintainerScripts runs postinst configure (a first install, then an
// upgrade) and prerm remove with stand-ins for every system command, and
// checks what they did: the user made with systemd-sysusers or else
// adduser, the state directory, no start on a first install, a
// try-restart on an upgrade.
func maintainerScripts(t *testing.T, dir, deb, user, name string) {
	t.Helper()
	shell, err := exec.LookPath("sh")
	must(t, err)
	ctl := filepath.Join(dir, "ctl-"+name)
	dpkgDeb(t, "-e", deb, ctl)
	for _, sysusers := range []bool{true, false} {
		stubs := filepath.Join(dir, "stubs", name)
		os.RemoveAll(stubs)
		must(t, os.MkdirAll(stubs, 0o755))
		log := filepath.Join(stubs, "log")
		cmds := []string{"getent", "adduser", "install", "chgrp", "chmod", "systemctl", "deb-systemd-helper", "systemd-tmpfiles"}
		if sysusers {
			cmds = append(cmds, "systemd-sysusers")
		}
		for _, c := range cmds {
			stub := "#!/bin/sh\necho \"" + c + " $*\" >>" + log + "\n"
			if c == "getent" {
				stub += "exit 2\n" // no such user yet
			}
			if c == "systemd-tmpfiles" && !sysusers {
				continue
			}
			must(t, os.WriteFile(filepath.Join(stubs, c), []byte(stub), 0o755))
		}
		// PATH has the stubs only: the scripts need nothing else (echo,
		// [ and command are sh's own), and nothing real may create a
		// user or start a service.
		env := append(os.Environ(), "PATH="+stubs)
		script := func(args ...string) string {
			os.Remove(log)
			cmd := exec.Command(shell, args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%v: %v\n%s", args, err, out)
			}
			b, _ := os.ReadFile(log)
			return string(out) + string(b)
		}
		first := script(filepath.Join(ctl, "postinst"), "configure", "")
		var want []string
		if sysusers {
			want = []string{"systemd-sysusers " + name + ".conf", "systemd-tmpfiles --create " + name + ".conf"}
		} else {
			want = []string{"adduser --system --group --home /var/lib/" + name, "--shell /usr/sbin/nologin", user,
				"install -d -m 0700 -o " + user + " -g " + user + " /var/lib/" + name}
			if name == "moat-coordinator" {
				want = append(want, "chgrp moat /etc/moat/coordinator.env", "chmod 0640 /etc/moat/coordinator.env")
			}
		}
		want = append(want, "installed, not started")
		for _, w := range want {
			if !strings.Contains(first, w) {
				t.Errorf("postinst (sysusers %v) did not %q:\n%s", sysusers, w, first)
			}
		}
		if calls, _ := os.ReadFile(log); strings.Contains(string(calls), "start") || strings.Contains(string(calls), "enable") {
			t.Errorf("a first install started or enabled the service:\n%s", calls)
		}
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			if up := script(filepath.Join(ctl, "postinst"), "configure", "1.2.2"); !strings.Contains(up, "try-restart "+name+".service") {
				t.Errorf("an upgrade did not restart a running service:\n%s", up)
			}
		}
		if rm := script(filepath.Join(ctl, "prerm"), "remove"); !strings.Contains(rm, "deb-systemd-helper disable "+name+".service") {
			t.Errorf("prerm remove did not disable the service:\n%s", rm)
		}
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// matchLine reports whether a line of text matches the pattern, where
// " .* " stands for the size and date columns.
func matchLine(text, pattern string) bool {
	head, tail, split := strings.Cut(pattern, " .* ")
	for _, line := range strings.Split(text, "\n") {
		if !split && strings.HasSuffix(line, pattern) || split && strings.HasPrefix(line, head) && strings.HasSuffix(line, tail) {
			return true
		}
	}
	return false
}
