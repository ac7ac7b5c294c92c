package installtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/internal/testlog"
)

// childEnv names TestInstallChild's role when this binary runs it inside
// the host's namespace.
const childEnv = "MOAT_INSTALLTEST_CHILD"

// TestInstallChild runs inside the host's namespace: the stand-in model
// server on 127.0.0.1:11434, and probes the parent asks for, one per
// line ("tcp ADDR:PORT" or "udp ADDR:PORT"), each answered "ok" or
// "err …". It skips unless the parent started it.
func TestInstallChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("started by TestInstallScriptOnFreshHost only")
	}
	s, err := standin.Start(11434, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		proto, addr, _ := strings.Cut(sc.Text(), " ")
		fmt.Println(probe(proto, addr))
	}
}

// probe sends one marked datagram or opens one connection.
func probe(proto, addr string) string {
	c, err := net.DialTimeout(proto, addr, time.Second)
	if err != nil {
		return "err " + err.Error()
	}
	defer c.Close()
	if _, err := c.Write([]byte("moat-installtest-escape")); err != nil {
		return "err " + err.Error()
	}
	return "ok"
}

// startChild starts TestInstallChild in the host's namespace.
func (w *world) startChild() {
	w.t.Helper()
	w.child = netns.StartChild(w.t, w.host, "host", "TestInstallChild", childEnv+"=1")
	w.child.Expect(w.t, "ready", 30*time.Second)
}

// capture counts, at the "internet", every IPv4 packet from the host
// and from the device: nothing the lockdown refuses may arrive there.
func (w *world) capture() {
	w.t.Helper()
	script := fmt.Sprintf(`add table inet cap
add counter inet cap from_host
add counter inet cap from_dev
add chain inet cap pre { type filter hook prerouting priority -300; policy accept; }
add rule inet cap pre ip saddr %s counter name from_host
add rule inet cap pre ip saddr %s counter name from_dev
`, hostAddr, devAddr)
	cmd := w.inet.Command(w.ctx, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("nft at the internet host: %v\n%s", err, out)
	}
}

// captured returns the packets counted from the host or the device
// (counter from_host or from_dev) and resets the counter.
func (w *world) captured(counter string) int {
	w.t.Helper()
	out, err := w.inet.Command(w.ctx, "nft", "reset", "counter", "inet", "cap", counter).Output()
	must(w.t, err)
	f := strings.Fields(string(out))
	for i, s := range f {
		if s == "packets" && i+1 < len(f) {
			n, err := strconv.Atoi(f[i+1])
			must(w.t, err)
			return n
		}
	}
	w.t.Fatalf("no packet count in %q", out)
	return 0
}

// escapes tries TCP and UDP to the internet host and beyond it, as root
// (from the child) and as the service user (curl): it returns the
// packets that reached the internet host.
func (w *world) escapes() int {
	w.t.Helper()
	for _, p := range []string{"tcp " + inetAddr + ":80", "udp " + inetAddr + ":53", "udp " + inetAddr + ":123", "tcp 203.0.113.9:443"} {
		w.child.Ask(w.t, p, 5*time.Second)
	}
	w.host.Command(w.ctx, "setpriv", "--reuid", svcUser, "--regid", "nogroup", "--clear-groups",
		"curl", "-s", "-m", "1", "http://"+inetAddr+":8080/").Run()
	return w.captured("from_host")
}

// controlEscapes shows the capture sees the probes before the lockdown.
func (w *world) controlEscapes() {
	w.t.Helper()
	w.capture()
	if n := w.escapes(); n == 0 {
		w.t.Fatal("control: before the lockdown the internet host saw nothing of the probes; the capture does not work")
	}
}

// lockdownHolds checks the node as the unit runs it: the service user
// with two capabilities, on TUN, the lockdown in host scope, and nothing
// reaching the internet host.
func (w *world) lockdownHolds(key string) {
	w.t.Helper()
	pid := w.nodePID()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	must(w.t, err)
	if uid := statusField(string(status), "Uid:"); uid != "65534" {
		w.t.Errorf("node runs as uid %s, want %s's", uid, svcUser)
	}
	if caps, _ := strconv.ParseUint(statusField(string(status), "CapEff:"), 16, 64); caps&(1<<12) == 0 {
		w.t.Errorf("node lacks CAP_NET_ADMIN: CapEff %x", caps)
	}
	if err := w.host.IP("link", "show", "moat0"); err != nil {
		w.t.Errorf("no TUN device moat0 in the host: the node chose the netstack: %v", err)
	}
	out, err := w.host.Command(w.ctx, w.binPath, "lockdown", "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "scope host") || !strings.Contains(string(out), "watched by moat-node pid") {
		w.t.Errorf("lockdown status: %v\n%s", err, out)
	}
	if n := w.escapes(); n != 0 {
		w.t.Errorf("%d packets reached the internet host through the lockdown", n)
	}
	w.keyNotOnCommandLine(key)
}

func statusField(status, name string) string {
	for line := range strings.Lines(status) {
		if v, ok := strings.CutPrefix(line, name); ok {
			return strings.Fields(v)[0]
		}
	}
	return ""
}

// keyNotOnCommandLine: no process shows the enrollment key.
func (w *world) keyNotOnCommandLine(key string) {
	w.t.Helper()
	files, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), key) {
			w.t.Errorf("%s shows the enrollment key: %q", f, strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// joinDevice runs another moat-node in the device's namespace, tagged
// tag:client, with --lockdown service held to the service user, until
// it is in the mesh.
func (w *world) joinDevice() {
	w.t.Helper()
	var res struct{ Key string }
	must(w.t, json.Unmarshal(w.admin("POST", "/enroll-keys", `{"tags":["tag:client"]}`), &res))
	dir := w.t.TempDir()
	keyFile := filepath.Join(dir, "key")
	must(w.t, os.WriteFile(keyFile, []byte(res.Key+"\n"), 0o600))
	log := &testlog.Buffer{}
	cmd := w.dev.Command(w.ctx, filepath.Join(w.bins, "moat-node"), "join", "--key-file", keyFile, "--coordinator", w.url,
		"--coordinator-fingerprint", w.fingerprint(), "--state-dir", filepath.Join(dir, "state"), "--hostname", "device",
		"--lockdown", "service", "--lockdown-service-user", svcUser, "--model", "none=http://127.0.0.1:9")
	cmd.Stdout, cmd.Stderr = log, log
	must(w.t, cmd.Start())
	w.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(w.t, 30*time.Second, "the device in the mesh", func() bool { return strings.Contains(log.String(), "guard listening") }, log.String)
	out, err := w.dev.Command(w.ctx, w.binPath, "lockdown", "status").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "scope service") {
		w.t.Errorf("device: --lockdown service is not applied: %v\n%s", err, out)
	}
}

// nodeMeshAddr is the first mesh address of the node id.
func (w *world) nodeMeshAddr(id string) string {
	w.t.Helper()
	var res struct {
		Devices []struct {
			ID        string   `json:"id"`
			Addresses []string `json:"addresses"`
		} `json:"devices"`
	}
	must(w.t, json.Unmarshal(w.admin("GET", "/devices?kind=node", ""), &res))
	for _, d := range res.Devices {
		if d.ID == id && len(d.Addresses) > 0 {
			return d.Addresses[0]
		}
	}
	w.t.Fatalf("no node %q in %+v", id, res.Devices)
	return ""
}

// ask sends a chat request from the device through the GPU node's guard
// and returns the HTTP status and body.
func (w *world) ask(gpu string) (int, string) {
	w.t.Helper()
	out, _ := w.dev.Command(w.ctx, "curl", "-s", "-m", "5", "-w", "\n%{http_code}", "-H", "Content-Type: application/json",
		"-d", `{"model":"llama","messages":[{"role":"user","content":"hi"}]}`, "http://"+gpu+"/v1/chat/completions").Output()
	i := strings.LastIndex(string(out), "\n")
	if i < 0 {
		return 0, string(out)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(out[i+1:])))
	return n, string(out[:i])
}

// deviceIsServed: the device's request reaches the model through the
// GPU node's guard, as the policy grants.
func (w *world) deviceIsServed(gpu string) {
	w.t.Helper()
	var code int
	var body string
	waitFor(w.t, 20*time.Second, "the device served through the guard", func() bool {
		code, body = w.ask(gpu)
		return code == 200
	}, func() string { return fmt.Sprintf("%d %s", code, body) })
	if !strings.Contains(body, "stand-in") {
		w.t.Errorf("answer is not the stand-in's: %s", body)
	}
}

// flushHeals flushes the whole ruleset in the host, as Debian's
// nftables.service reload does: the node restores its lockdown within
// 5 s, nothing escapes afterwards, the guard serves again, and the
// coordinator receives the loss in the node's audit trail.
func (w *world) flushHeals(gpu string) {
	w.t.Helper()
	flushed := time.Now()
	if out, err := w.host.Command(w.ctx, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
		w.t.Fatalf("nft flush ruleset: %v\n%s", err, out)
	}
	waitFor(w.t, 5*time.Second, "the lockdown restored", func() bool {
		return w.host.Command(w.ctx, "nft", "list", "table", "inet", "moat").Run() == nil
	}, func() string { return "" })
	w.t.Logf("lockdown restored %v after nft flush ruleset", time.Since(flushed).Round(time.Millisecond))
	if n := w.escapes(); n != 0 {
		w.t.Errorf("%d packets reached the internet host after the restore", n)
	}
	w.deviceIsServed(gpu)
	waitFor(w.t, 15*time.Second, "the coordinator told of the loss", func() bool {
		return strings.Contains(string(w.admin("GET", "/audit?decision=lockdown-lost", "")), "lockdown-lost")
	}, func() string { return string(w.admin("GET", "/audit?limit=10", "")) })
}

// offRefusedWhileRunning: `moat-node lockdown off` does not remove a
// lockdown the running node watches.
func (w *world) offRefusedWhileRunning() {
	w.t.Helper()
	out, err := w.host.Command(w.ctx, w.binPath, "lockdown", "off").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Stop the node first") {
		w.t.Errorf("lockdown off on a running node: %v\n%s", err, out)
	}
	if err := w.host.Command(w.ctx, "nft", "list", "table", "inet", "moat").Run(); err != nil {
		w.t.Error("a refused lockdown off removed the table")
	}
}

// fingerprint is the coordinator certificate's SHA-256, as the install
// script pins it.
func (w *world) fingerprint() string {
	w.t.Helper()
	b, err := os.ReadFile(w.envPath)
	must(w.t, err)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "MOAT_FINGERPRINT="); ok {
			return strings.Trim(v, `"`)
		}
	}
	w.t.Fatal("no MOAT_FINGERPRINT in the env file")
	return ""
}

func waitFor(t *testing.T, limit time.Duration, what string, ok func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v\n%s", what, limit, state())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
