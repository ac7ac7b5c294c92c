package installtest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
)

const (
	coordAddr = "198.18.0.1"
	hostAddr  = "198.18.0.2"
	inetAddr  = "198.18.0.3" // the "internet": the host's default gateway, counting what reaches it
	devAddr   = "198.18.0.4" // a device: another moat-node, tagged tag:client
	coordPort = "8443"
	model     = "llama=http://127.0.0.1:11434"
	svcUser   = "nobody" // the node's user, as the unit's moat-node user: not root, two capabilities
	// testVersion is stamped into the binaries and the release manifest.
	testVersion = "v0.0.0-test"
)

// world is a running coordinator and a fresh host to install on.
type world struct {
	t          *testing.T
	ctx        context.Context
	bins, rel  string // built binaries; the release dir the coordinator serves
	releaseKey string // the release's minisign public key (RW…), the test's own
	install    string // the verified install command, run as root here, up to its options
	coordCmd   *exec.Cmd
	data       string // the coordinator's data dir
	coord      *netns.NS
	host       *netns.NS
	inet, dev  *netns.NS
	child      *netns.Child // in host: the stand-in model server and probes
	url, pin   string
	token      string
	root       string   // the host's install root: usr/local, etc, var/lib
	knobs      []string // MOAT_PREFIX, MOAT_ETC, MOAT_STATE, MOAT_NO_USER
	stateDir   string
	binPath    string
	envPath    string
	pidPath    string
	logPath    string
}

func TestInstallScriptOnFreshHost(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	for _, c := range []string{"curl", "sha256sum", "openssl"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("needs %s (apt-get install curl coreutils openssl; make test installs it)", c)
		}
	}
	begin := time.Now()
	w := newWorld(t)
	before := snapshot(t, w.root)

	w.tamperedBinaryIsRefused(before)
	w.tamperedReleaseIsRefused(before)
	w.startChild()
	w.controlEscapes()
	dev, key := w.installJoins()
	w.lockdownHolds(key)
	w.joinDevice()
	gpu := w.nodeMeshAddr(dev)
	w.deviceIsServed(gpu)
	w.flushHeals(gpu)
	w.offRefusedWhileRunning()
	w.rerunUpgrades(dev)
	w.olderReleaseIsRefused()
	w.uninstallRemovesWhatItAdded(before)
	t.Logf("install as %s with two capabilities, lockdown host by default, tampered binary, install.sh and SHA256SUMS refused, join, a device served, flush healed, upgrade, older and expired releases refused, and uninstall in %v",
		svcUser, time.Since(begin).Round(time.Millisecond))
}

func newWorld(t *testing.T) *world {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	dir := t.TempDir()
	w := &world{t: t, ctx: ctx, bins: filepath.Join(dir, "bin"), rel: filepath.Join(dir, "release"),
		data: filepath.Join(dir, "coord"), root: filepath.Join(dir, "root")}
	w.stateDir = filepath.Join(w.root, "var/lib/moat-node")
	w.binPath = filepath.Join(w.root, "usr/local/bin/moat-node")
	w.envPath = filepath.Join(w.root, "etc/moat-node/env")
	w.pidPath = filepath.Join(w.root, "run/moat-node/moat-node.pid")
	w.logPath = filepath.Join(w.root, "var/log/moat-node/moat-node.log")
	w.knobs = []string{"MOAT_PREFIX=" + filepath.Join(w.root, "usr/local"), "MOAT_ETC=" + filepath.Join(w.root, "etc/moat-node"),
		"MOAT_STATE=" + w.stateDir, "MOAT_USER=" + svcUser, "MOAT_RUN_DIR=" + filepath.Dir(w.pidPath),
		"MOAT_LOG_DIR=" + filepath.Dir(w.logPath)}
	for _, d := range []string{"usr/local/bin", "etc", "var/lib", "var/log", "run"} {
		must(t, os.MkdirAll(filepath.Join(w.root, d), 0o755))
	}
	openPath(t, w.root) // the service user must reach its binary and state
	tunForAll(t)
	w.build()
	w.release()
	w.namespaces()
	w.startCoordinator(w.rel)
	t.Cleanup(w.killNode)
	return w
}

// build compiles the real binaries.
func (w *world) build() {
	w.t.Helper()
	cmd := exec.CommandContext(w.ctx, "go", "build", "-ldflags", "-X github.com/moatmesh/moat/internal/cli.version="+testVersion,
		"-o", w.bins+"/", "github.com/moatmesh/moat/cmd/moat-node", "github.com/moatmesh/moat/cmd/moat-coordinator")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		w.t.Fatalf("go build: %v\n%s", err, out)
	}
}

// release lays out what `make release` makes, for this machine's arch,
// signed with the test's own key by the release tool.
func (w *world) release() {
	w.t.Helper()
	w.releaseTool("keygen", filepath.Join(w.bins, "release"))
	copyFile(w.t, filepath.Join(w.bins, "moat-node"), filepath.Join(w.rel, "moat-node-linux-"+runtime.GOARCH))
	copyFile(w.t, "../../deploy/install.sh", filepath.Join(w.rel, "install.sh"))
	copyFile(w.t, "../../deploy/systemd/moat-node.service", filepath.Join(w.rel, "moat-node.service"))
	var sums []byte
	for _, name := range []string{"moat-node-linux-" + runtime.GOARCH, "install.sh", "moat-node.service"} {
		b, err := os.ReadFile(filepath.Join(w.rel, name))
		must(w.t, err)
		sums = fmt.Appendf(sums, "%x  %s\n", sha256.Sum256(b), name)
	}
	must(w.t, os.WriteFile(filepath.Join(w.rel, "SHA256SUMS"), sums, 0o644))
	w.releaseKey = strings.TrimSpace(w.releaseTool("sign", "-key", filepath.Join(w.bins, "release.key"), "-version", testVersion,
		filepath.Join(w.rel, "SHA256SUMS"), filepath.Join(w.rel, "install.sh")))
}

// releaseTool runs internal/tools/release (built once) and returns its output.
func (w *world) releaseTool(args ...string) string {
	w.t.Helper()
	tool := filepath.Join(w.bins, "release-tool")
	if _, err := os.Stat(tool); err != nil {
		cmd := exec.CommandContext(w.ctx, "go", "build", "-o", tool, ".")
		cmd.Dir = "../tools/release"
		if out, err := cmd.CombinedOutput(); err != nil {
			w.t.Fatalf("build the release tool: %v\n%s", err, out)
		}
	}
	out, err := exec.CommandContext(w.ctx, tool, args...).Output()
	if err != nil {
		w.t.Fatalf("release %v: %v", args, err)
	}
	return string(out)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	must(t, err)
	must(t, os.MkdirAll(filepath.Dir(to), 0o755))
	must(t, os.WriteFile(to, b, 0o755))
}

// namespaces puts the coordinator, the host, the "internet" and a device
// on one bridge; the internet is the host's default gateway.
func (w *world) namespaces() {
	w.t.Helper()
	newNS := func(name string) *netns.NS {
		ns, err := netns.New(name)
		must(w.t, err)
		w.t.Cleanup(func() { ns.Close() })
		return ns
	}
	sw := newNS("moat-inst-s")
	must(w.t, netns.Bridge(sw, "br0"))
	w.coord, w.host, w.inet, w.dev = newNS("moat-inst-c"), newNS("moat-inst-h"), newNS("moat-inst-i"), newNS("moat-inst-d")
	for ns, addr := range map[*netns.NS]string{w.coord: coordAddr, w.host: hostAddr, w.inet: inetAddr, w.dev: devAddr} {
		must(w.t, netns.Attach(ns, "eth0", []netip.Prefix{netip.MustParsePrefix(addr + "/24")}, sw, "br0"))
	}
	must(w.t, w.host.IP("route", "add", "default", "via", inetAddr))
}

// tunForAll makes /dev/net/tun 0666, as udev makes it on Debian, Ubuntu
// and Fedora (some containers leave it 0600), for the test's duration:
// CAP_NET_ADMIN creates the device, the file mode lets the user open it.
func tunForAll(t *testing.T) {
	const tun = "/dev/net/tun"
	fi, err := os.Stat(tun)
	if err != nil {
		t.Skipf("no %s: %v", tun, err)
	}
	if fi.Mode().Perm() == 0o666 {
		return
	}
	must(t, os.Chmod(tun, 0o666))
	t.Cleanup(func() { os.Chmod(tun, fi.Mode().Perm()) })
}

// openPath makes dir and its parents traversable by the service user.
func openPath(t *testing.T, dir string) {
	for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		must(t, err)
		must(t, os.Chmod(d, fi.Mode().Perm()|0o011))
	}
}

// startCoordinator makes an admin token (once), then runs
// `moat-coordinator serve --tls=self-signed` in the coordinator's
// namespace, serving the release in rel, with the test's release key.
func (w *world) startCoordinator(rel string) {
	w.t.Helper()
	coordBin := filepath.Join(w.bins, "moat-coordinator")
	if w.token == "" {
		out, err := exec.CommandContext(w.ctx, coordBin, "tokens", "create", "--data-dir", w.data, "installtest").CombinedOutput()
		if err != nil {
			w.t.Fatalf("tokens create: %v\n%s", err, out)
		}
		w.token = strings.TrimSpace(string(out))
		w.t.Cleanup(w.stopCoordinator)
	}
	w.url = "https://" + coordAddr + ":" + coordPort
	cmd := w.coord.Command(w.ctx, coordBin, "serve", "--listen", coordAddr+":"+coordPort, "--public-url", w.url,
		"--tls", "self-signed", "--data-dir", w.data, "--release-dir", rel, "--release-key", w.releaseKey, "--log-level", "warn")
	stdout, err := cmd.StdoutPipe()
	must(w.t, err)
	cmd.Stderr = testWriter{w.t, "coordinator: "}
	must(w.t, cmd.Start())
	w.coordCmd = cmd
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on") {
	}
	go io.Copy(io.Discard, stdout)
	w.pin = spkiPin(w.t, filepath.Join(w.data, "tls-cert.pem"))
}

// stopCoordinator stops the running coordinator and waits for it.
func (w *world) stopCoordinator() {
	if w.coordCmd != nil {
		w.coordCmd.Process.Signal(syscall.SIGTERM)
		w.coordCmd.Wait()
		w.coordCmd = nil
	}
}

// spkiPin computes curl's pin of the certificate, independently of the
// coordinator's code.
func spkiPin(t *testing.T, certFile string) string {
	b, err := os.ReadFile(certFile)
	must(t, err)
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	must(t, err)
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// admin calls the coordinator's admin API from the host namespace.
func (w *world) admin(method, path, body string) []byte {
	w.t.Helper()
	args := []string{"-fsS", "-k", "--pinnedpubkey", w.pin, "-X", method, "-H", "Authorization: Bearer " + w.token}
	if body != "" {
		args = append(args, "-H", "Content-Type: application/json", "-d", body)
	}
	out, err := w.host.Command(w.ctx, "curl", append(args, w.url+"/api/v1/admin"+path)...).Output()
	if err != nil {
		w.t.Fatalf("admin %s %s: %v", method, path, err)
	}
	return out
}

// policyBody lets the device (tag:client) use llama on the GPU node
// (tag:gpu) and reach its port 22 over the mesh.
var policyBody = func() string {
	policy := `{
  "tagOwners": { "tag:gpu": [], "tag:client": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [
    { "src": ["tag:client"], "models": ["llama"] },
    { "src": ["tag:client"], "dst": ["tag:gpu:22"] },
  ],
}`
	b, _ := json.Marshal(map[string]string{"text": policy, "message": "GPU hosts and a client"})
	return string(b)
}()

// installCommand makes an enrollment key and returns the install command
// the API hands out, run as root here (no sudo). The command asks for the
// key on the terminal (`--key -`); with no terminal here, the key goes in
// a 0600 file instead (`--key-file`), so it is on no command line.
func (w *world) installCommand() (line, key string) {
	w.t.Helper()
	var res struct{ Key, Install string }
	w.admin("PUT", "/policy", policyBody)
	must(w.t, json.Unmarshal(w.admin("POST", "/enroll-keys", `{"tags":["tag:gpu"]}`), &res))
	for _, want := range []string{"--pinnedpubkey " + w.pin + " ", "echo " + w.releaseKey + " | openssl", "openssl pkeyutl -verify",
		` && sudo sh "$d/install.sh" --coordinator '` + w.url + `' --pin ` + w.pin} {
		if !strings.Contains(res.Install, want) {
			w.t.Fatalf("install command %q lacks %q", res.Install, want)
		}
	}
	base, ok := strings.CutSuffix(res.Install, " --release-key "+w.releaseKey+" --key -")
	if strings.Contains(res.Install, res.Key) || !ok {
		w.t.Fatalf("install command %q: want the release key, and the key asked for, not on the line", res.Install)
	}
	w.install = strings.Replace(base, `&& sudo sh "$d/install.sh"`, `&& sh "$d/install.sh"`, 1) + " --release-key " + w.releaseKey
	keyFile := filepath.Join(w.t.TempDir(), "enroll.key")
	must(w.t, os.WriteFile(keyFile, []byte(res.Key+"\n"), 0o600))
	return w.install + " --key-file " + keyFile, res.Key
}

// script runs a shell command line in the host namespace with the knobs.
func (w *world) script(line string) (string, error) {
	w.t.Helper()
	cmd := w.host.Command(w.ctx, "sh", "-c", line)
	cmd.Env = append(os.Environ(), w.knobs...)
	out, err := cmd.CombinedOutput()
	w.t.Logf("$ %s\n%s", line, out)
	return string(out), err
}

// plain is the install command without a key.
func (w *world) plain(args string) string {
	if w.install == "" {
		w.t.Fatal("plain before installCommand")
	}
	return w.install + " " + args
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type testWriter struct {
	t      *testing.T
	prefix string
}

func (tw testWriter) Write(p []byte) (int, error) {
	tw.t.Log(tw.prefix + strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// nodePID returns the pid in the pid file, if that process lives.
func (w *world) nodePID() int {
	b, err := os.ReadFile(w.pidPath)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// killNode stops a node the test left running.
func (w *world) killNode() {
	if pid := w.nodePID(); pid > 0 {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
