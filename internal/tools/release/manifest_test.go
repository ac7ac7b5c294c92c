package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallScriptChecksManifest runs deploy/install.sh's own checks
// (its functions, without main) on SHA256SUMS signed by the release
// tool: the manifest's signature, expiry and version against the
// installed moat-node, as a re-run (the upgrade path) meets them.
func TestInstallScriptChecksManifest(t *testing.T) {
	for _, c := range []string{"openssl", "sh"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s", c)
		}
	}
	dir := t.TempDir()
	must(t, run([]string{"keygen", filepath.Join(dir, "release")}))
	pub := pubLine(t, filepath.Join(dir, "release.pub"))
	sums := filepath.Join(dir, "SHA256SUMS")
	must(t, os.WriteFile(sums, []byte("0000  moat-node-linux-amd64\n"), 0o644))
	sign := func(args ...string) {
		t.Helper()
		must(t, run(append(append([]string{"sign", "-key", filepath.Join(dir, "release.key")}, args...), sums)))
	}

	sign("-version", "v1.2.3")
	cases := []struct {
		installed, allow string
		want             []string // in the output; "refusing" means refused
	}{
		{"", "", []string{"release manifest ok: v1.2.3", "valid until"}},
		{"v1.2.3", "", []string{"release manifest ok"}},
		{"v1.2.3-rc.1", "", []string{"release manifest ok"}},
		{"v1.2.2-7-gabcdef", "", []string{"release manifest ok"}},
		{"dev-b7c15b1", "", []string{"is not a release version; not compared"}},
		{"v1.2.4", "", []string{"older than the installed moat-node (v1.2.4)", "refusing to downgrade"}},
		{"v1.2.3-1-gabcdef", "", []string{"refusing to downgrade"}},
		{"v1.10.0", "", []string{"refusing to downgrade"}},
		{"v1.2.4", "1", []string{"WARNING: downgrading moat-node from v1.2.4 to v1.2.3"}},
	}
	t.Run("versions", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.installed+c.allow, func(t *testing.T) {
				t.Parallel()
				out, err := checkManifest(t, dir, pub, c.installed, c.allow)
				refused := strings.Contains(strings.Join(c.want, " "), "refusing")
				if (err != nil) != refused {
					t.Errorf("installed %q allow %q: err %v, want refused=%v\n%s", c.installed, c.allow, err, refused, out)
				}
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("installed %q allow %q: output lacks %q:\n%s", c.installed, c.allow, w, out)
					}
				}
			})
		}
	})

	sign("-version", "v1.2.3", "-date", "2020-01-01T00:00:00Z", "-valid", "30d")
	if out, err := checkManifest(t, dir, pub, "", ""); err == nil || !strings.Contains(out, "expired at 2020-01-31T00:00:00Z") {
		t.Errorf("an expired manifest was not refused (err %v):\n%s", err, out)
	}

	sign("-version", "v1.2.3")
	sig, err := os.ReadFile(sums + ".minisig")
	must(t, err)
	must(t, os.WriteFile(sums+".minisig", bytes.Replace(sig, []byte("version:v1.2.3"), []byte("version:v9.9.9"), 1), 0o644))
	if out, err := checkManifest(t, dir, pub, "v1.2.4", ""); err == nil || !strings.Contains(out, "BAD SIGNATURE") {
		t.Errorf("a manifest changed after signing was not refused (err %v):\n%s", err, out)
	}
}

// checkManifest runs install.sh's release_pem, verify_sig and
// check_manifest on dir/SHA256SUMS, with an installed moat-node that
// reports version installed ("" = none installed).
func checkManifest(t *testing.T, dir, pub, installed, allow string) (string, error) {
	t.Helper()
	script, err := os.ReadFile("../../../deploy/install.sh")
	must(t, err)
	lib := strings.TrimSuffix(strings.TrimRight(string(script), "\n"), `main "$@"`)
	if len(lib) == len(script) {
		t.Fatal("install.sh no longer ends with main \"$@\"")
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "moat-node")
	if installed != "" {
		must(t, os.WriteFile(bin, []byte("#!/bin/sh\necho moat-node "+installed+"\n"), 0o755))
	}
	harness := lib + `
TMP=$1 RELEASE_KEY=$2 BIN=$3 ALLOW_DOWNGRADE=$4
cp "$5/SHA256SUMS" "$5/SHA256SUMS.minisig" "$TMP/"
release_pem
verify_sig "$TMP/SHA256SUMS"
check_manifest "$TMP/SHA256SUMS"
`
	out, err := exec.Command("sh", "-c", harness, "install.sh", tmp, pub, bin, allow, dir).CombinedOutput()
	return string(out), err
}

// pubLine returns the RW… line of a minisign public key file.
func pubLine(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
