package compose_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// engine is a dockerd of the test's own: its own data and exec roots,
// pidfile, socket and containerd namespace, and hands off the host's
// firewall and forwarding (no iptables rules, no ip_forward, no default
// bridge), so that it leaves the host as it found it while namespace
// tests run beside it. Compose's own bridge network is the only
// interface it adds, and it goes with `docker-compose down`.
type engine struct {
	dir  string // everything of this engine's lives here
	host string // DOCKER_HOST
	cmd  *exec.Cmd
	log  *os.File
}

// startEngine starts dockerd and waits until it answers; it is stopped
// and its data removed when the test ends.
func startEngine(t *testing.T, dir string) *engine {
	t.Helper()
	e := &engine{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock")}
	var err error
	if e.log, err = os.Create(filepath.Join(dir, "dockerd.log")); err != nil {
		t.Fatal(err)
	}
	e.cmd = exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", e.host,
		"--containerd-namespace", e.name(),
		"--containerd-plugins-namespace", e.name()+"-plugins",
		"--iptables=false", "--ip6tables=false", "--ip-forward=false", "--ip-masq=false",
		"--bridge=none")
	e.cmd.Stdout, e.cmd.Stderr = e.log, e.log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.stop(t) })
	if err := waitFor(60*time.Second, func() error { _, err := e.docker("version"); return err }); err != nil {
		t.Fatalf("dockerd did not answer: %v\n%s", err, tail(filepath.Join(dir, "dockerd.log")))
	}
	return e
}

// name is this engine's own name, from its directory's (unique) name:
// lower-case letters and digits, as Compose wants for a project.
func (e *engine) name() string {
	return strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(filepath.Base(e.dir)))
}

// env is the environment docker, docker-compose and images.sh use to
// reach this engine.
func (e *engine) env() []string {
	return append(os.Environ(), "DOCKER_HOST="+e.host, "DOCKER="+dockerCLI)
}

// docker runs the Debian docker CLI against the engine.
func (e *engine) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerCLI, args...)
	cmd.Env = e.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// stop ends dockerd (SIGTERM stops its containerd and containers too),
// waits for it, and removes its data.
func (e *engine) stop(t *testing.T) {
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Errorf("dockerd did not stop within 60s of SIGTERM; killing it")
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	e.log.Close()
	if err := os.RemoveAll(e.dir); err != nil {
		t.Errorf("remove dockerd's data: %v", err)
	}
}

// dockerCLI is Debian's docker client, which matches its dockerd.
const dockerCLI = "/usr/bin/docker"

// waitFor calls f until it returns nil or timeout passes, and returns
// its last error then.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tail returns the end of a log file, for failure messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
