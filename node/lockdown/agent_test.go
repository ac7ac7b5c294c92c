package lockdown

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
)

// An agent is a child process of the test binary running inside one
// network namespace (and, if asked, as an unprivileged user). The parent
// sends it one command per line and reads one reply line.

const (
	agentEnv    = "MOAT_LOCKDOWN_AGENT"
	agentUIDEnv = "MOAT_LOCKDOWN_AGENT_UID"
	probeWait   = 3 * time.Second // for an exchange that should work
	blockedWait = time.Second     // for one that should not: a drop costs this
)

type agent struct {
	*netns.Child
	name string
}

func startAgent(t *testing.T, ns *netns.NS, name string, uid int) *agent {
	t.Helper()
	a := &agent{netns.StartChild(t, ns, name, "TestAgent", agentEnv+"="+name, agentUIDEnv+"="+strconv.Itoa(uid)), name}
	if got := a.ask(t, "hello"); got != "ok" {
		t.Fatalf("agent %s: %s", name, got)
	}
	return a
}

// ask sends one command and returns the agent's answer; every command
// answers within a few probe waits.
func (a *agent) ask(t *testing.T, cmd string) string {
	t.Helper()
	return a.Ask(t, cmd, 30*time.Second)
}

// must runs cmd and fails the test unless the agent answers "ok".
func (a *agent) must(t *testing.T, cmd string) {
	t.Helper()
	if got := a.ask(t, cmd); got != "ok" {
		t.Fatalf("%s: %s: %s", a.name, cmd, got)
	}
}

// TestAgent is not a test: it is the agent process, run by startAgent.
func TestAgent(t *testing.T) {
	if os.Getenv(agentEnv) == "" {
		t.Skip("agent process of the namespace tests only")
	}
	if uid, _ := strconv.Atoi(os.Getenv(agentUIDEnv)); uid != 0 {
		if err := dropPrivileges(uid); err != nil {
			fmt.Println("fail", err)
			os.Exit(1)
		}
	}
	var ld *Lockdown
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		fmt.Println(reply(agentDo(&ld, verb, arg)))
	}
	os.Exit(0)
}

func dropPrivileges(uid int) error {
	if err := syscall.Setgroups(nil); err != nil {
		return err
	}
	if err := syscall.Setgid(uid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

func reply(s string, err error) string {
	if err != nil {
		return "err " + strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return s
}

func agentDo(ld **Lockdown, verb, arg string) (string, error) {
	f := strings.Fields(arg)
	switch verb {
	case "hello":
		return "ok", nil
	case "pid":
		return strconv.Itoa(os.Getpid()), nil
	case "mountcg": // `ip netns exec` gave us a fresh /sys without cgroups
		return "ok", syscall.Mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, "")
	case "listen":
		return "ok", listen(f[0], f[1])
	case "tcp", "udp", "icmp":
		wait := probeWait
		if last := f[len(f)-1]; strings.HasPrefix(last, "wait=") {
			wait, _ = time.ParseDuration(strings.TrimPrefix(last, "wait="))
			f = f[:len(f)-1]
		}
		src := ""
		if len(f) > 1 {
			src = f[1]
		}
		return "ok", probe(verb, f[0], src, wait)
	}
	return lockdownDo(ld, verb, arg)
}

func lockdownDo(ld **Lockdown, verb, arg string) (string, error) {
	switch verb {
	case "apply":
		var cfg Config
		if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
			return "", err
		}
		l, err := Apply(cfg)
		*ld = l
		return "ok", err
	case "peers":
		var peers []Peer
		if err := json.Unmarshal([]byte(arg), &peers); err != nil {
			return "", err
		}
		return "ok", (*ld).UpdatePeers(peers)
	case "relays": // relays URL...: SetRelays
		return "ok", (*ld).SetRelays(context.Background(), strings.Fields(arg))
	case "status":
		st, err := Inspect()
		js, _ := json.Marshal(st)
		return string(js), err
	case "off":
		return "ok", Off()
	case "pods":
		return strings.Join((*ld).Pods(), " "), nil
	case "applysrc": // apply JSON with the agent's PodSource
		var cfg Config
		if err := json.Unmarshal([]byte(arg), &cfg); err != nil {
			return "", err
		}
		cfg.PodSource = agentSource
		l, err := Apply(cfg)
		*ld = l
		return "ok", err
	case "src": // src PATTERN...: the source's answer; src fail: it cannot answer
		return "ok", agentSource.say(strings.Fields(arg))
	}
	return escapeDo(*ld, verb, strings.Fields(arg))
}

// listen serves TCP (write "hi", close) or UDP (echo) on addr.
func listen(network, addr string) error {
	if network == "udp" {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 1500)
			for {
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				pc.WriteTo(buf[:n], from)
			}
		}()
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi\n"))
			c.Close()
		}
	}()
	return nil
}

// agentSource is a PodSource the test drives through the agent.
var agentSource = &testSource{running: make(chan struct{})}

type testSource struct {
	running chan struct{} // closed once Run has been called
	mu      sync.Mutex
	update  func([]string, error)
}

func (s *testSource) Run(ctx context.Context, update func([]string, error)) {
	s.mu.Lock()
	s.update = update
	s.mu.Unlock()
	close(s.running)
	<-ctx.Done()
}

func (s *testSource) say(words []string) error {
	select {
	case <-s.running:
	case <-time.After(5 * time.Second):
		return errors.New("the source is not running 5s after watch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(words) == 1 && words[0] == "fail" {
		s.update(nil, errors.New("the API server does not answer"))
	} else {
		s.update(words, nil)
	}
	return nil
}
