package netns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// Child is the running test binary started again inside a namespace as
// one of its own tests (a "child" test that skips unless its environment
// names it). The parent writes it one line at a time on stdin and reads
// lines from its stdout; closing stdin asks it to stop.
type Child struct {
	name  string
	in    io.WriteCloser
	lines chan string
}

// StartChild starts test (a test function's name) of this binary inside
// ns with env added to the parent's environment, minus proxy settings:
// children talk only to namespaces, which no proxy reaches. When the test
// ends the child's stdin is closed; a child that then exits with an error
// (a failure, or a race the detector saw in it) or does not exit within
// 10 s fails the test, with its stderr logged.
func StartChild(t testing.TB, ns *NS, name, test string, env ...string) *Child {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^"+test+"$", "-test.v=false", "-test.count=1")
	cmd.Env = append(childEnv(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &Child{name: name, in: in, lines: make(chan string, 16)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		defer cancel()
		in.Close()
		done := make(chan error, 1)
		go func() {
			for range c.lines { // drain so the child never blocks on stdout
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("child %s: %v", name, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("child %s did not stop within 10s; killing it", name)
			cancel()
			<-done
		}
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("child %s stderr:\n%s", name, stderr.String())
		}
	})
	return c
}

// Send writes line to the child.
func (c *Child) Send(line string) { fmt.Fprintln(c.in, line) }

// Next returns the child's next line; an exit, or no line within
// timeout, fails t.
func (c *Child) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case line, ok := <-c.lines:
		if !ok {
			t.Fatalf("child %s exited", c.name)
		}
		return line
	case <-time.After(timeout):
		t.Fatalf("child %s printed nothing within %v", c.name, timeout)
	}
	return ""
}

// Ask sends line and returns the child's answer (its next line).
func (c *Child) Ask(t testing.TB, line string, timeout time.Duration) string {
	t.Helper()
	c.Send(line)
	return c.Next(t, timeout)
}

// Expect waits for the child's line starting with prefix and returns the
// rest, skipping others; a line starting "fail ", an exit or the timeout
// fails t.
func (c *Child) Expect(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		line := c.Next(t, max(time.Until(deadline), time.Millisecond))
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return rest
		}
		if strings.HasPrefix(line, "fail ") {
			t.Fatalf("child %s: %s", c.name, line)
		}
	}
}

// childEnv is this process's environment without proxy settings.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY":
			continue
		}
		env = append(env, kv)
	}
	return env
}
