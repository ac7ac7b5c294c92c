package installtest

import (
	"encoding/json"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// tamperedBinaryIsRefused changes the served binary after its sum was
// taken: the script must refuse it and leave the host as it was.
func (w *world) tamperedBinaryIsRefused(before map[string]fs.FileMode) {
	w.t.Helper()
	if out, err := w.script("curl -fsS -k --pinnedpubkey sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= " + w.url + "/install.sh"); err == nil {
		w.t.Fatalf("curl accepted a wrong pin:\n%s", out)
	}
	served := filepath.Join(w.rel, "moat-node-linux-"+runtime.GOARCH)
	good, err := os.ReadFile(served)
	must(w.t, err)
	must(w.t, os.WriteFile(served, append(append([]byte{}, good...), "tampered"...), 0o755))
	line, _ := w.installCommand()
	out, err := w.script(line + " --model " + model + " --no-systemd")
	must(w.t, os.WriteFile(served, good, 0o755))
	if err == nil || !strings.Contains(out, "checksum mismatch") || !strings.Contains(out, "refusing to install") {
		w.t.Fatalf("a tampered binary was not refused (err %v)", err)
	}
	if after := snapshot(w.t, w.root); !maps.Equal(before, after) {
		w.t.Fatalf("a refused install changed the host:\nbefore %v\nafter  %v", before, after)
	}
}

// installJoins runs the admin's command with the key in a file: the node
// joins and keeps running, and the coordinator lists it. It returns the
// node's device ID and the key.
func (w *world) installJoins() (dev, key string) {
	w.t.Helper()
	line, key := w.installCommand()
	out, err := w.script(line + " --model " + model + " --no-systemd")
	if err != nil {
		w.t.Fatalf("install: %v", err)
	}
	for _, want := range []string{"Signature Verified Successfully", "signature ok: SHA256SUMS signed by the release key " + w.releaseKey,
		"checksum ok: moat-node-linux-", "checksum ok: moat-node.service", "wrote " + w.envPath + " (0600)", "started moat-node join", "joined the mesh",
		"lockdown host: this host may now send only to", "NEW SSH OR MONITORING CONNECTIONS FROM OUTSIDE THE MESH ARE REFUSED"} {
		if !strings.Contains(out, want) {
			w.t.Errorf("install output lacks %q", want)
		}
	}
	w.checkModes(map[string]fs.FileMode{w.binPath: 0o755, w.envPath: 0o600, w.stateDir: fs.ModeDir | 0o700})
	env, err := os.ReadFile(w.envPath)
	must(w.t, err)
	if strings.Contains(string(env), "moat_ek_") || !strings.Contains(string(env), `MOAT_COMMAND="run"`) {
		w.t.Errorf("after the join the env file should say run and hold no key:\n%s", env)
	}
	if !strings.Contains(string(env), `MOAT_LOCKDOWN="host"`) || strings.Contains(string(env), "MOAT_LOCKDOWN_CHOSEN") {
		w.t.Errorf("the env file should hold the default lockdown, not chosen:\n%s", env)
	}
	dev = w.deviceID()
	w.waitLog(1)
	w.checkListed(dev)
	return dev, key
}

// rerunUpgrades runs the script again without a key: a new binary, a
// restarted node, the same identity.
func (w *world) rerunUpgrades(dev string) {
	w.t.Helper()
	oldPID, oldIno := w.nodePID(), inode(w.t, w.binPath)
	if oldPID == 0 {
		w.t.Fatal("the node is not running before the upgrade")
	}
	// Every install before lockdown was the default wrote "off": a re-run
	// moves it to host and says so.
	env, err := os.ReadFile(w.envPath)
	must(w.t, err)
	must(w.t, os.WriteFile(w.envPath, []byte(strings.Replace(string(env), `MOAT_LOCKDOWN="host"`, `MOAT_LOCKDOWN="off"`, 1)), 0o600))
	out, err := w.script(w.plain("--no-systemd"))
	if err != nil {
		w.t.Fatalf("upgrade: %v", err)
	}
	if env, _ := os.ReadFile(w.envPath); !strings.Contains(out, "this node ran WITHOUT a lockdown") || !strings.Contains(string(env), `MOAT_LOCKDOWN="host"`) {
		w.t.Errorf("an unchosen off was not moved to host:\n%s", env)
	}
	if !strings.Contains(out, "started moat-node run") || strings.Contains(out, "joined the mesh") {
		w.t.Errorf("the upgrade should restart with run, not join")
	}
	if pid := w.nodePID(); pid == 0 || pid == oldPID || syscall.Kill(oldPID, 0) == nil {
		w.t.Errorf("node pid %d → %d: want the old one stopped and a new one running", oldPID, pid)
	}
	if inode(w.t, w.binPath) == oldIno {
		w.t.Error("the binary was not replaced")
	}
	if got := w.deviceID(); got != dev {
		w.t.Errorf("device %s became %s: the upgrade must keep the node's identity", dev, got)
	}
	w.waitLog(2)
	w.checkListed(dev)
}

// uninstallRemovesWhatItAdded: --uninstall keeps only the state dir,
// --purge removes that too; the host is then as it was.
func (w *world) uninstallRemovesWhatItAdded(before map[string]fs.FileMode) {
	w.t.Helper()
	pid := w.nodePID()
	if _, err := w.script(w.plain("--uninstall")); err != nil {
		w.t.Fatalf("uninstall: %v", err)
	}
	if syscall.Kill(pid, 0) == nil {
		w.t.Errorf("node pid %d still runs after --uninstall", pid)
	}
	after := snapshot(w.t, w.root)
	for p := range after {
		if _, ok := before[p]; !ok && !strings.HasPrefix(p, "var/lib/moat-node") {
			w.t.Errorf("--uninstall left %s", p)
		}
	}
	if _, ok := after["var/lib/moat-node/node.json"]; !ok {
		w.t.Error("--uninstall without --purge removed the node's state")
	}
	if _, err := w.script(w.plain("--uninstall --purge")); err != nil {
		w.t.Fatalf("uninstall --purge: %v", err)
	}
	if after := snapshot(w.t, w.root); !maps.Equal(before, after) {
		w.t.Errorf("--uninstall --purge did not restore the host:\nbefore %v\nafter  %v", before, after)
	}
}

func (w *world) deviceID() string {
	w.t.Helper()
	var st struct {
		DeviceID string `json:"deviceId"`
	}
	b, err := os.ReadFile(filepath.Join(w.stateDir, "node.json"))
	must(w.t, err)
	must(w.t, json.Unmarshal(b, &st))
	return st.DeviceID
}

// checkListed asks the admin API for the nodes: this one is among them.
func (w *world) checkListed(dev string) {
	w.t.Helper()
	var res struct {
		Devices []struct {
			ID     string `json:"id"`
			Models any    `json:"models"`
		} `json:"devices"`
	}
	must(w.t, json.Unmarshal(w.admin("GET", "/devices?kind=node", ""), &res))
	for _, d := range res.Devices {
		if d.ID == dev {
			return
		}
	}
	w.t.Fatalf("coordinator lists nodes %+v, not %s", res.Devices, dev)
}

// waitLog waits until the node's log shows it in the mesh n times (once
// per start).
func (w *world) waitLog(n int) {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(w.logPath)
		if strings.Count(string(b), "in the mesh: guard listening") >= n {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the node did not report being in the mesh %d time(s):\n%s", n, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *world) checkModes(want map[string]fs.FileMode) {
	w.t.Helper()
	for path, mode := range want {
		fi, err := os.Stat(path)
		if err != nil {
			w.t.Errorf("%s: %v", path, err)
		} else if fi.Mode() != mode {
			w.t.Errorf("%s: mode %v, want %v", path, fi.Mode(), mode)
		}
	}
}

// snapshot lists every path under root with its type and permissions.
func snapshot(t interface{ Fatal(...any) }, root string) map[string]fs.FileMode {
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = fi.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func inode(t interface{ Fatal(...any) }, path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}
