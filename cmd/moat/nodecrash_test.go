package main

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/cli/clitest"
	"github.com/moatmesh/moat/internal/e2e"
	"github.com/moatmesh/moat/internal/standin"
)

// TestStreamEndsWhenNodeIsKilled: a stream through `moat up` whose node
// process is killed (no FIN, no RST: the host is simply gone) ends with
// an error within seconds instead of hanging, and once the node runs
// again a new request goes through without anything done on the client.
func TestStreamEndsWhenNodeIsKilled(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-node")
	f := newMesh(t)
	sin, err := standin.Start(0, 100*time.Millisecond) // a 3 s stream
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sin.Close() })
	state, port := t.TempDir(), strconv.Itoa(freeUDPPort(t))
	common := []string{"--state-dir", state, "--netstack", "--lockdown", "off", "--listen-port", port}
	key := clitest.WriteFile(t, "key", f.sys.Coord.EnrollKey(t, "tag:gpu"))
	// As the Debian package's unit runs it: `run` with the key kept in its
	// settings joins the first time and only then.
	first := append([]string{"--coordinator", f.sys.Coord.URL, "--key-file", key, "--hostname", "gpu-1", "--model", "llama=" + sin.URL}, common...)
	gpu := startNodeProcess(t, bin, append([]string{"run"}, first...)...)
	f.connect(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // far beyond the bound below
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.endpoint+"/v1/chat/completions",
		strings.NewReader(`{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: %v %v", resp, err)
	}
	defer resp.Body.Close()
	if _, err := resp.Body.Read(make([]byte, 1)); err != nil { // the stream has begun
		t.Fatal(err)
	}
	gpu.kill()
	killed := time.Now()
	_, done, err := e2e.ReadChatStream(resp.Body)
	took := time.Since(killed)
	t.Logf("the stream ended %v after the node was killed: done %v, %v", took.Round(time.Millisecond), done, err)
	if done || err == nil {
		t.Fatal("a stream from a killed node ended as if complete")
	}
	if took > 30*time.Second {
		t.Fatalf("the stream took %v to end after its node was killed", took)
	}

	// The key is spent: join enrolls with it again and is refused, run
	// (with the same settings) does not use it.
	if r := clitest.Run(t, bin, nil, append([]string{"join"}, first...)...); r.Code == 0 || !strings.Contains(r.Stderr, "used up") {
		t.Fatalf("join with a spent key: exit %d\n%s", r.Code, r.Stderr)
	}
	back := startNodeProcess(t, bin, append([]string{"run"}, first...)...)
	began := time.Now()
	f.waitServed(t, "a request after the node came back")
	t.Logf("the restarted node answered after %v", time.Since(began).Round(time.Millisecond))
	if !strings.Contains(back.stderr.String(), "the enrollment key is not used") {
		t.Errorf("the restarted node did not say it left the key unused:\n%s", back.stderr)
	}
	f.stillUp(t)
}

// nodeProcess is a moat-node running as a process of its own.
type nodeProcess struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
}

// startNodeProcess starts bin with args and an environment without
// MOAT_* variables; it is killed when the test ends.
func startNodeProcess(t *testing.T, bin string, args ...string) *nodeProcess {
	t.Helper()
	p := &nodeProcess{cmd: clitest.Command(bin, nil, args...), stderr: new(syncBuffer)}
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("moat-node %s said:\n%s", args[0], p.stderr)
		}
	})
	return p
}

// kill ends the node at once, as a crash or a pulled cable would, and
// waits for it to be gone.
func (p *nodeProcess) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}
