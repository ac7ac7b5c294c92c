package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestDemo builds the demo as `make demo` runs it, starts it, checks its
// hints and a streamed request through the local endpoint, and stops it
// with Ctrl-C (SIGINT).
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole system; skipped with -short")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "demo")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	coord := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	endpoint := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	cmd := exec.Command(bin, "--dir", filepath.Join(dir, "state"), "--coordinator", coord, "--endpoint", endpoint,
		"--wg-port", fmt.Sprint(freePort(t, "udp")), "--standin-delay", "1ms")
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var printed strings.Builder
	sc := bufio.NewScanner(out)
	deadline := time.AfterFunc(90*time.Second, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for sc.Scan() {
		printed.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "Ctrl-C stops everything") {
			break
		}
	}
	for _, want := range []string{"moat is up", "curl -N http://" + endpoint, "restricted-model", "/ui/audit", "/api/v1/admin/audit", "TOTP secret"} {
		if !strings.Contains(printed.String(), want) {
			t.Fatalf("the demo did not print %q:\n%s", want, printed.String())
		}
	}
	resp, err := http.Post("http://"+endpoint+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"standin","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "stand-in") || !strings.Contains(string(body), "[DONE]") {
		t.Fatalf("request through the demo: %d\n%s", resp.StatusCode, body)
	}
	// The printed admin API command finds the request's audit record.
	auth := regexp.MustCompile(`Bearer (moat_at_[a-z0-9]+)`).FindStringSubmatch(printed.String())
	if auth == nil {
		t.Fatalf("no API token in the hints:\n%s", printed.String())
	}
	var found bool
	for wait := time.Now().Add(15 * time.Second); !found && time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+coord+"/api/v1/admin/audit?limit=5", nil)
		req.Header.Set("Authorization", "Bearer "+auth[1])
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			found = strings.Contains(string(b), `"login":"demo@example.com"`) && strings.Contains(string(b), `"model":"standin"`)
		}
	}
	if !found {
		t.Fatal("the request's audit record never reached the coordinator")
	}
	cmd.Process.Signal(syscall.SIGINT)
	go io.Copy(io.Discard, out)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the demo did not stop cleanly on Ctrl-C: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the demo did not stop within 20s of Ctrl-C")
	}
}
