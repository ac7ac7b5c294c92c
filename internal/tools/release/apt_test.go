package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// TestAPTRepository serves the signed repository to the real apt-get
// over file:// with a keyring given by signed-by, in an APT of its own
// (its own configuration, lists, cache and dpkg status; nothing of the
// host's APT is read or changed), and sees it accepted when genuine and
// refused when a Packages file or a package was changed, when another
// key signed it, when it expired, and when an older release is served
// to a host that has a newer one.
func TestAPTRepository(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("apt-get runs its download methods as root here (APT::Sandbox::User); run as root (make test does)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not installed")
	}
	dir := t.TempDir()
	key, other := filepath.Join(dir, "release"), filepath.Join(dir, "other")
	must(t, run([]string{"keygen", key}))
	must(t, run([]string{"keygen", other}))
	debs := testDebs(t, dir, "v1.2.3")
	e := testEntity(t, key+".key")
	now := time.Now().UTC()
	good := filepath.Join(dir, "good")
	must(t, writeRepo(good, debs, e, now, now.Add(24*time.Hour)))
	keyring := filepath.Join(good, aptKeyring+".gpg")

	t.Run("genuine", func(t *testing.T) {
		a := newAPT(t, good, keyring, "")
		a.ok("update")
		a.ok("install", "-y", "--download-only", "--no-install-recommends", "moat")
		out := a.ok("download", "moat-node", "moat-coordinator")
		for _, f := range []string{"moat-node_1.2.3_amd64.deb", "moat-coordinator_1.2.3_amd64.deb"} {
			if _, err := os.Stat(filepath.Join(a.dir, f)); err != nil {
				t.Errorf("apt-get download did not fetch %s:\n%s", f, out)
			}
		}
		a.ok("update") // the armored key works as signed-by too
		b := newAPT(t, good, filepath.Join(good, aptKeyring+".asc"), "")
		b.ok("update")
	})
	t.Run("tampered Packages", func(t *testing.T) {
		repo := copyTree(t, good, filepath.Join(dir, "packages"))
		idx := filepath.Join(repo, "dists/stable/main/binary-amd64/Packages")
		b, err := os.ReadFile(idx)
		must(t, err)
		b = bytes.Replace(b, []byte("Depends: nftables, "), []byte("Depends: "), 1) // a node without its lockdown tool
		must(t, os.WriteFile(idx, b, 0o644))
		gz, err := gzipBytes(b)
		must(t, err)
		must(t, os.WriteFile(idx+".gz", gz, 0o644))
		newAPT(t, repo, keyring, "").fails("update", "Hash Sum mismatch|unexpected size")
	})
	t.Run("tampered package", func(t *testing.T) {
		repo := copyTree(t, good, filepath.Join(dir, "deb"))
		pool := filepath.Join(repo, "pool/main/m/moat-node/moat-node_1.2.3_amd64.deb")
		b, err := os.ReadFile(pool)
		must(t, err)
		b[len(b)-10] ^= 0xff // same size, other content
		must(t, os.WriteFile(pool, b, 0o644))
		a := newAPT(t, repo, keyring, "")
		a.ok("update")
		a.fails("download moat-node", "Hash Sum mismatch")
		if _, err := os.Stat(filepath.Join(a.dir, "moat-node_1.2.3_amd64.deb")); err == nil {
			t.Error("the tampered package was kept")
		}
	})
	t.Run("another key", func(t *testing.T) {
		repo := filepath.Join(dir, "other-key")
		must(t, writeRepo(repo, debs, testEntity(t, other+".key"), now, now.Add(24*time.Hour)))
		newAPT(t, repo, keyring, "").fails("update", "NO_PUBKEY|not signed")
	})
	t.Run("expired", func(t *testing.T) {
		repo := filepath.Join(dir, "expired")
		must(t, writeRepo(repo, debs, e, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))
		newAPT(t, repo, keyring, "").fails("update", "is expired")
	})
	t.Run("older release", func(t *testing.T) {
		repo := filepath.Join(dir, "old")
		must(t, writeRepo(repo, testDebs(t, dir, "v1.2.2"), e, now, now.Add(24*time.Hour)))
		a := newAPT(t, repo, keyring, installed("moat-node", "1.2.3"))
		a.ok("update")
		if out := a.ok("install", "-y", "--download-only", "moat-node"); !strings.Contains(out, "moat-node is already the newest version (1.2.3)") {
			t.Errorf("an older release was offered over the installed one:\n%s", out)
		}
		a.fails("install -y --download-only moat-node=1.2.2", "downgraded and -y was used without --allow-downgrades")
	})
}

func testEntity(t *testing.T, keyFile string) *openpgp.Entity {
	t.Helper()
	priv, err := signingKey(keyFile, false)
	must(t, err)
	e, err := aptEntity(priv)
	must(t, err)
	return e
}

// apt is an APT of its own: configuration, sources, lists, cache and
// dpkg status in a temp dir.
type apt struct {
	t        *testing.T
	dir, cfg string
}

func newAPT(t *testing.T, repo, keyring, status string) *apt {
	t.Helper()
	a := &apt{t: t, dir: t.TempDir()}
	for _, d := range []string{"etc/apt.conf.d", "etc/preferences.d", "etc/sources.list.d", "etc/trusted.gpg.d", "lists/partial", "cache/archives/partial", "log"} {
		must(t, os.MkdirAll(filepath.Join(a.dir, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(a.dir, "status"), []byte(status), 0o644))
	must(t, os.WriteFile(filepath.Join(a.dir, "etc/sources.list"),
		fmt.Appendf(nil, "deb [signed-by=%s] file://%s stable main\n", keyring, repo), 0o644))
	a.cfg = filepath.Join(a.dir, "apt.conf")
	conf := fmt.Sprintf(`Dir "/";
Dir::Etc "%[1]s/etc";
Dir::Etc::main "%[1]s/etc/apt.conf";
Dir::Etc::parts "%[1]s/etc/apt.conf.d";
Dir::Etc::sourcelist "%[1]s/etc/sources.list";
Dir::Etc::sourceparts "%[1]s/etc/sources.list.d";
Dir::Etc::trusted "%[1]s/etc/trusted.gpg";
Dir::Etc::trustedparts "%[1]s/etc/trusted.gpg.d";
Dir::Etc::preferences "%[1]s/etc/preferences";
Dir::Etc::preferencesparts "%[1]s/etc/preferences.d";
Dir::State "%[1]s";
Dir::State::lists "%[1]s/lists";
Dir::State::status "%[1]s/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Architectures { "amd64"; };
APT::Sandbox::User "root";
Debug::NoLocking "true";
`, a.dir)
	must(t, os.WriteFile(a.cfg, []byte(conf), 0o644))
	return a
}

func (a *apt) run(args ...string) (string, error) {
	cmd := exec.Command("apt-get", args...)
	cmd.Dir = a.dir
	cmd.Env = append(os.Environ(), "APT_CONFIG="+a.cfg, "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (a *apt) ok(args ...string) string {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("apt-get %v: %v\n%s", args, err, out)
	}
	return out
}

// fails runs apt-get with the space-separated args and wants it to fail
// with one of the |-separated messages.
func (a *apt) fails(args, want string) {
	a.t.Helper()
	out, err := a.run(strings.Fields(args)...)
	if err == nil {
		a.t.Fatalf("apt-get %s succeeded, want it refused (%s):\n%s", args, want, out)
	}
	for _, w := range strings.Split(want, "|") {
		if strings.Contains(out, w) {
			a.t.Logf("apt-get %s refused: %s", args, matching(out, w))
			return
		}
	}
	a.t.Errorf("apt-get %s failed without %q:\n%s", args, want, out)
}

// installed is a dpkg status file in which name is installed at version,
// with what the packages depend on.
func installed(name, version string) string {
	stanza := func(p, v string) string {
		return fmt.Sprintf("Package: %s\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\nVersion: %s\nMaintainer: test\nDescription: test\n\n", p, v)
	}
	return stanza("nftables", "1.0.6-2") + stanza("adduser", "3.134") + strings.Replace(stanza(name, version),
		"Description:", "Depends: nftables, systemd-sysusers | adduser\nDescription:", 1)
}

func copyTree(t *testing.T, from, to string) string {
	t.Helper()
	must(t, os.CopyFS(to, os.DirFS(from)))
	return to
}

// matching returns the line of out that has s.
func matching(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return strings.TrimSpace(line)
		}
	}
	return ""
}
