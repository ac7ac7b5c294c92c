package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/cli/clitest"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// coordProc is a running moat-coordinator serve with JSON logs.
type coordProc struct {
	cmd     *exec.Cmd
	url     string
	metrics string // the --metrics-listen URL of /metrics
	logs    *lineLog
	done    chan struct{} // closed when the process exited
	err     error         // its exit error, once done
}

// lineLog keeps a process's JSON log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
}

// Write keeps p's complete lines (the process's standard error).
func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.raw.Write(p)
	l.lines = l.lines[:0]
	for _, line := range bytes.Split(l.raw.Bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			l.lines = append(l.lines, m)
		}
	}
	return len(p), nil
}

func (l *lineLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.raw.String()
}

// find returns the first line whose msg is msg, or nil.
func (l *lineLog) find(msg string) map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.lines {
		if m["msg"] == msg {
			return m
		}
	}
	return nil
}

// waitFor waits up to 20 s for cond.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not waiting for time
	}
}

// within receives from ch, failing the test after 20 s.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func startServe(t *testing.T, bin string, args ...string) *coordProc {
	t.Helper()
	cmd := clitest.Command(bin, nil, append([]string{"serve", "--listen", "127.0.0.1:0", "--public-url", "http://127.0.0.1",
		"--data-dir", t.TempDir(), "--log-format", "json", "--metrics-listen", "127.0.0.1:0"}, args...)...)
	p := &coordProc{cmd: cmd, logs: new(lineLog), done: make(chan struct{})}
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = p.logs // Wait returns once all of it is written
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	addr, metrics, ended := make(chan string, 1), make(chan string, 1), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		listening := regexp.MustCompile(`listening on (\S+),`)
		metricsOn := regexp.MustCompile(`metrics on (\S+)`)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			if m := metricsOn.FindStringSubmatch(sc.Text()); m != nil {
				metrics <- m[1]
			}
		}
		close(ended)
		p.err = cmd.Wait()
		close(p.done)
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
		p.metrics = <-metrics // printed before
	case <-ended:
		<-p.done
		t.Fatalf("moat-coordinator ended before it listened:\n%s", p.logs.text())
	}
	return p
}

// inFlight reads moat_coordinator_http_requests_in_flight.
func (p *coordProc) inFlight() string {
	resp, err := http.Get(p.metrics)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^moat_coordinator_http_requests_in_flight (\S+)$`).FindSubmatch(b)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// slowLogin starts POST /api/v1/login whose body arrives only when the
// returned writer is given the rest; the answer comes on the channel.
func slowLogin(t *testing.T, url string) (*io.PipeWriter, []byte, <-chan *http.Response) {
	priv, _ := key.NewPrivate()
	body, _ := json.Marshal(wire.LoginRequest{Version: wire.Version, Key: priv.Public(), Hostname: "slow"})
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", url+"/api/v1/login", pr)
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/json")
	answered := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(answered) // a cut request; the drain test reports the nil answer
			return
		}
		answered <- resp
	}()
	pw.Write(body[:1])
	return pw, body[1:], answered
}

// TestGracefulShutdown: SIGTERM lets a slow request in flight finish,
// then the process exits 0 with a shutdown line; with a short
// --shutdown-timeout a request that never finishes is cut.
func TestGracefulShutdown(t *testing.T) {
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-coordinator")

	t.Run("drains", func(t *testing.T) {
		p := startServe(t, bin)
		waitFor(t, "the startup line", func() bool { return p.logs.find("moat-coordinator starting") != nil })
		start := p.logs.find("moat-coordinator starting")
		if start == nil || start["version"] != clitest.TestVersion || start["database"] != "sqlite" || start["idp"] != "embedded" {
			t.Errorf("startup line %v, want version, database sqlite and idp embedded", start)
		}
		rest, body, answered := slowLogin(t, p.url)
		waitFor(t, "the slow request in flight", func() bool { return p.inFlight() == "1" })
		p.cmd.Process.Signal(syscall.SIGTERM)
		waitFor(t, "the shutdown line", func() bool { return p.logs.find("moat-coordinator shutting down") != nil })
		if n := p.logs.find("moat-coordinator shutting down")["in_flight"]; n != 1.0 {
			t.Errorf("shutting down with %v in flight, want 1", n)
		}
		rest.Write(body)
		resp := within(t, "the answer", answered)
		if resp == nil {
			t.Fatal("no answer")
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("in-flight sign-in answered %d %s, want 200 with its start", resp.StatusCode, b)
		}
		if within(t, "the exit", p.done); p.err != nil {
			t.Fatalf("exit: %v\n%s", p.err, p.logs.text())
		}
		if p.logs.find("moat-coordinator stopped") == nil {
			t.Errorf("no shutdown line:\n%s", p.logs.text())
		}
		if _, err := http.Get(p.url + "/healthz"); err == nil {
			t.Error("still answering after it exited")
		}
	})
	t.Run("cuts at the deadline", func(t *testing.T) {
		p := startServe(t, bin, "--shutdown-timeout", "300ms")
		rest, _, answered := slowLogin(t, p.url)
		waitFor(t, "the request in flight", func() bool { return p.inFlight() == "1" })
		p.cmd.Process.Signal(syscall.SIGTERM)
		if within(t, "the exit", p.done); p.err != nil {
			t.Fatalf("exit: %v", p.err)
		}
		rest.CloseWithError(io.ErrUnexpectedEOF) // the client stops waiting to send
		if resp := within(t, "the cut request", answered); resp != nil && resp.StatusCode == http.StatusOK {
			t.Errorf("a request that never finished its body was answered %d", resp.StatusCode)
		}
		if cut := p.logs.find("moat-coordinator stopped, cutting requests still in flight"); cut == nil || cut["cut"] != 1.0 {
			t.Errorf("cut line %v, want cut=1:\n%s", cut, p.logs.text())
		}
	})
}
