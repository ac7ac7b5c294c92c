package installtest

import (
	"path/filepath"
	"strings"
)

// olderReleaseIsRefused: with moat-node v0.0.0-test installed and
// running, the coordinator serves the same files under an older release
// manifest (a genuine signature of v0.0.0-old, as a replay of an older
// release would carry) and then under an expired one. The re-run, the
// upgrade path, refuses both before it touches the node;
// --allow-downgrade takes the older one.
func (w *world) olderReleaseIsRefused() {
	w.t.Helper()
	ino := inode(w.t, w.binPath)
	key := filepath.Join(w.bins, "release.key")
	older := w.copyRelease("older")
	w.releaseTool("sign", "-key", key, "-version", "v0.0.0-old", filepath.Join(older, "SHA256SUMS"))
	expired := w.copyRelease("expired")
	w.releaseTool("sign", "-key", key, "-version", testVersion, "-date", "2020-01-01T00:00:00Z", "-valid", "30d",
		filepath.Join(expired, "SHA256SUMS"))
	for rel, want := range map[string]string{
		older:   "older than the installed moat-node (" + testVersion + "): refusing to downgrade",
		expired: "expired at 2020-01-31T00:00:00Z",
	} {
		w.restartCoordinator(rel)
		out, err := w.script(w.plain("--no-systemd"))
		if err == nil || !strings.Contains(out, want) {
			w.t.Fatalf("%s was not refused with %q (err %v)", filepath.Base(rel), want, err)
		}
		if inode(w.t, w.binPath) != ino || w.nodePID() == 0 {
			w.t.Fatalf("a refused %s release changed the running node", filepath.Base(rel))
		}
	}
	w.restartCoordinator(older)
	out, err := w.script(w.plain("--no-systemd --allow-downgrade"))
	if err != nil || !strings.Contains(out, "WARNING: downgrading moat-node from "+testVersion+" to v0.0.0-old") {
		w.t.Fatalf("--allow-downgrade did not install the older release (err %v)", err)
	}
	w.restartCoordinator(w.rel)
}
