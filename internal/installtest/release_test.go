package installtest

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// tamperedReleaseIsRefused serves two releases a compromised coordinator
// could serve, and sees each refused before anything is installed:
//   - install.sh changed after it was signed, and a changed moat-node
//     with a SHA256SUMS that lists it under the genuine signature: the
//     install command refuses to run the script, and the genuine script
//     refuses the sums;
//   - SHA256SUMS signed by another key: the genuine script refuses it.
//
// Then the coordinator serves the genuine release again.
func (w *world) tamperedReleaseIsRefused(before map[string]fs.FileMode) {
	w.t.Helper()
	node := "moat-node-linux-" + runtime.GOARCH
	bad := w.copyRelease("tampered")
	appendTo(w.t, filepath.Join(bad, "install.sh"), "echo TAMPERED-SCRIPT-RAN\n")
	appendTo(w.t, filepath.Join(bad, node), "tampered")
	b, err := os.ReadFile(filepath.Join(bad, node))
	must(w.t, err)
	sums, err := os.ReadFile(filepath.Join(bad, "SHA256SUMS"))
	must(w.t, err)
	sums = []byte(replaceSum(w, string(sums), node, fmt.Sprintf("%x", sha256.Sum256(b))))
	must(w.t, os.WriteFile(filepath.Join(bad, "SHA256SUMS"), sums, 0o644))
	w.restartCoordinator(bad)

	out, err := w.script(w.install + " --key-file " + w.fakeKey() + " --model " + model + " --no-systemd")
	if err == nil || !strings.Contains(out, "Signature Verification Failure") || strings.Contains(out, "TAMPERED-SCRIPT-RAN") || strings.Contains(out, "moat-install:") {
		w.t.Fatalf("a tampered install.sh was not refused before it ran (err %v)", err)
	}
	out, err = w.script(w.genuineScript())
	if err == nil || !strings.Contains(out, "SHA256SUMS: BAD SIGNATURE") || !strings.Contains(out, "refusing to install") {
		w.t.Fatalf("a SHA256SUMS changed after signing was not refused (err %v)", err)
	}

	other := w.copyRelease("other-key")
	w.releaseTool("keygen", filepath.Join(w.bins, "other"))
	w.releaseTool("sign", "-key", filepath.Join(w.bins, "other.key"), filepath.Join(other, "SHA256SUMS"))
	w.restartCoordinator(other)
	out, err = w.script(w.install + " --key-file " + w.fakeKey() + " --model " + model + " --no-systemd")
	if err == nil || !strings.Contains(out, "Signature Verified Successfully") ||
		!strings.Contains(out, "SHA256SUMS is signed by key id") || !strings.Contains(out, "not by the release key") {
		w.t.Fatalf("a SHA256SUMS signed by another key was not refused (err %v)", err)
	}

	if after := snapshot(w.t, w.root); !maps.Equal(before, after) {
		w.t.Fatalf("a refused install changed the host:\nbefore %v\nafter  %v", before, after)
	}
	w.restartCoordinator(w.rel)
}

// copyRelease copies the genuine release into a new directory.
func (w *world) copyRelease(name string) string {
	w.t.Helper()
	dir := filepath.Join(w.t.TempDir(), name)
	entries, err := os.ReadDir(w.rel)
	must(w.t, err)
	for _, e := range entries {
		copyFile(w.t, filepath.Join(w.rel, e.Name()), filepath.Join(dir, e.Name()))
	}
	return dir
}

func (w *world) restartCoordinator(rel string) {
	w.t.Helper()
	w.stopCoordinator()
	w.startCoordinator(rel)
}

// genuineScript runs the release's own install.sh, as the install command
// would after checking it, against the coordinator.
func (w *world) genuineScript() string {
	return fmt.Sprintf("sh %s --coordinator %s --pin %s --release-key %s --key-file %s --model %s --no-systemd",
		filepath.Join(w.rel, "install.sh"), w.url, w.pin, w.releaseKey, w.fakeKey(), model)
}

// fakeKey is a file with an enrollment key no install gets far enough to use.
func (w *world) fakeKey() string {
	path := filepath.Join(w.t.TempDir(), "fake.key")
	must(w.t, os.WriteFile(path, []byte("moat_ek_never_used\n"), 0o600))
	return path
}

func replaceSum(w *world, sums, name, sum string) string {
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(sums, "\n"), "\n") {
		if strings.HasSuffix(line, "  "+name) {
			line = sum + "  " + name
		}
		out = append(out, line)
	}
	if strings.Join(out, "\n")+"\n" == sums {
		w.t.Fatalf("SHA256SUMS has no line for %s", name)
	}
	return strings.Join(out, "\n") + "\n"
}

func appendTo(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
