package lockdown

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// kubepods is a stand-in for a Kubernetes node's cgroup tree (systemd
// driver): real cgroups below the cgroup2 mount, named like the
// kubelet's, under a slice of the test's own.
type kubepods struct {
	root, top string // cgroup2 mount; the stand-in for kubepods.slice
}

func newKubepods(t *testing.T) kubepods {
	t.Helper()
	root, err := cgroup2Mount()
	if err != nil {
		t.Skip(err)
	}
	k := kubepods{root: root, top: fmt.Sprintf("moat-kubepods-%d-%s.slice", os.Getpid(), t.Name())}
	if err := os.Mkdir(filepath.Join(root, k.top), 0o755); err != nil {
		t.Skipf("cannot make a cgroup here: %v", err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(root, k.top)) })
	k.mkdir(t, k.top+"/kubepods-burstable.slice")
	return k
}

// mkdir makes the cgroup rel and removes it when the test ends (after
// the agents in it have exited: cleanups run last first).
func (k kubepods) mkdir(t *testing.T, rel string) {
	t.Helper()
	dir := filepath.Join(k.root, rel)
	check(t, os.Mkdir(dir, 0o755))
	t.Cleanup(func() { os.Remove(dir) })
}

// pod makes a pod's cgroup and one container's scope in it, and
// returns the pod's path.
func (k kubepods) pod(t *testing.T, uid string) (pod, container string) {
	t.Helper()
	pod = fmt.Sprintf("%s/kubepods-burstable.slice/kubepods-burstable-pod%s.slice", k.top, uid)
	k.mkdir(t, pod)
	container = pod + "/cri-containerd-" + uid + "0000.scope"
	k.mkdir(t, container)
	return pod, container
}

// move puts agent a's process into cgroup rel.
func (k kubepods) move(t *testing.T, a *agent, rel string) {
	t.Helper()
	check(t, os.WriteFile(filepath.Join(k.root, rel, "cgroup.procs"), []byte(a.ask(t, "pid")), 0o644))
}

// startPodHosts starts the hosts (in parallel with other tests), a
// stand-in kubepods tree with one pod, and an agent in the pod's
// container; the node agent sees the cgroup tree.
func startPodHosts(t *testing.T, uid string) (kubepods, *hosts, *agent) {
	t.Helper()
	if why := toolsMissing(); why != "" {
		t.Skip(why)
	}
	k := newKubepods(t)
	t.Parallel()
	h := startHosts(t)
	_, c := k.pod(t, uid)
	inf := startAgent(t, h.topology.node, "inf-"+uid, 0)
	k.move(t, inf, c)
	h.node.must(t, "mountcg")
	return k, h, inf
}

// TestPodScope is the Kubernetes node mode on a stand-in node: moat-node
// (the node agent, the host's network namespace) holds the processes of
// the "inference pods" (found by a cgroup pattern, sharing the host's
// network) to loopback and one declared destination, and leaves the
// "kubelet" (a process outside them) alone. A pod started after the
// lockdown is held as soon as its cgroup exists, by inotify alone (the
// periodic re-match is set to an hour); a pod that ends is dropped.
func TestPodScope(t *testing.T) {
	k, h, inf1 := startPodHosts(t, "1f0c")
	kubelet := h.node

	mirror := netip.MustParseAddrPort(ap(inetUL, "80"))
	cfg := Config{Scope: ScopeService, InferencePorts: []uint16{11434}, WatchInterval: time.Hour,
		PodCgroups: []string{k.top + "/*/kubepods-*-pod*.slice"}, PodAllowPorts: []netip.AddrPort{mirror}}
	kubelet.must(t, "apply "+mustJSON(cfg))
	kubelet.must(t, "watch")
	if got := kubelet.ask(t, "pods"); !strings.HasSuffix(got, "pod1f0c.slice") {
		t.Fatalf("pods held at Apply: %q", got)
	}
	held := []probeCase{
		{inf1, "tcp " + ap(inetUL, "80"), true}, // the declared destination
		{inf1, "udp " + ap(inetUL, "9999"), false},
		{inf1, "udp " + ap(inetUL, "53"), false},
		{inf1, "tcp " + ap(coordUL, apiPort), false},
		{inf1, "tcp " + ap(inetUL6, "80"), false},
		{inf1, "icmp " + inetUL, false},
		{inf1, "tcp " + ap("127.0.0.1", inferencePort), true},
	}
	free := []probeCase{
		{kubelet, "tcp " + ap(inetUL, "80"), true},
		{kubelet, "udp " + ap(inetUL, "9999"), true},
		{kubelet, "tcp " + ap(coordUL, apiPort), true},
		{kubelet, "icmp " + inetUL, true},
	}
	runProbes(t, append(held, free...))

	// A pod started later: the kubelet makes its cgroup, then starts
	// its containers in it.
	p2, c2 := k.pod(t, "2a7e")
	took := waitPods(t, kubelet, func(got string) bool { return strings.Contains(got, "pod2a7e.slice") })
	t.Logf("a new pod was held %v after its cgroup was made (inotify)", took.Round(time.Millisecond))
	inf2 := startAgent(t, h.topology.node, "inf2", 0)
	k.move(t, inf2, c2)
	runProbes(t, []probeCase{
		{inf2, "tcp " + ap(inetUL, "80"), true},
		{inf2, "udp " + ap(inetUL, "9999"), false},
		{inf2, "tcp " + ap(coordUL, apiPort), false},
	})
	runProbes(t, free)
	if c, _ := h.status(t).Counter(CatService); c.Packets == 0 {
		t.Errorf("counter %s = %+v, want packets > 0", CatService, c)
	}
	if ev := kubelet.ask(t, "events"); !strings.Contains(ev, `"Kind":"pods"`) {
		t.Errorf("no pods event reported: %s", ev)
	}

	// The pod ends: its cgroup goes and its rules with it.
	k.move(t, inf2, "")
	check(t, os.Remove(filepath.Join(k.root, c2)))
	check(t, os.Remove(filepath.Join(k.root, p2)))
	waitPods(t, kubelet, func(got string) bool { return !strings.Contains(got, "pod2a7e") && strings.Contains(got, "pod1f0c") })
	kubelet.must(t, "unwatch")
	kubelet.must(t, "off")
}

// waitPods asks the node which pods it holds until ok says yes, and
// fails after five seconds. It returns how long that took.
func waitPods(t *testing.T, node *agent, ok func(string) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := node.ask(t, "pods")
		if ok(got) {
			return time.Since(start)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("pods held after 5s: %q; events: %s", got, node.ask(t, "events"))
		}
	}
}

// TestPodPatterns: patterns that could name cgroups outside the tree,
// or nothing, are refused; destinations are checked.
func TestPodPatterns(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Scope: ScopeService, PodCgroups: []string{"kubepods.slice/[x"}}, "syntax error"},
		{Config{Scope: ScopeService, PodCgroups: []string{"/"}}, "below the cgroup2 mount"},
		{Config{Scope: ScopeService, PodCgroups: []string{"kubepods.slice/../system.slice"}}, "below the cgroup2 mount"},
		{Config{Scope: ScopeService, PodCgroups: []string{"kubepods.slice/*"}, PodAllowPorts: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:0")}}, "pod destination"},
		{Config{Scope: ScopeService}, "PodSource"},
	} {
		_, err := c.cfg.withDefaults()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			js, _ := json.Marshal(c.cfg.PodCgroups)
			t.Errorf("%s: %v, want an error with %q", js, err, c.want)
		}
	}
	if _, err := (Config{Scope: ScopeService, PodCgroups: []string{"kubepods.slice/*/kubepods-*-pod*.slice"}}).withDefaults(); err != nil {
		t.Error(err)
	}
}

func TestPodsDiff(t *testing.T) {
	a, b, b2 := podCgroup{"k/a", 1}, podCgroup{"k/b", 2}, podCgroup{"k/b", 3}
	for _, c := range []struct {
		old, cur []podCgroup
		want     string
	}{
		{nil, nil, ""},
		{[]podCgroup{a}, []podCgroup{a}, ""},
		{[]podCgroup{a}, []podCgroup{a, b}, "pod cgroups added [k/b], gone []"},
		{[]podCgroup{a, b}, []podCgroup{a}, "pod cgroups added [], gone [k/b]"},
		// The same path made again is another cgroup: its rule must follow.
		{[]podCgroup{b}, []podCgroup{b2}, "pod cgroups added [k/b], gone [k/b]"},
	} {
		if got := podsDiff(c.old, c.cur); got != c.want {
			t.Errorf("podsDiff(%v, %v) = %q, want %q", c.old, c.cur, got, c.want)
		}
	}
}

// TestPodSourceScope: pods named by a PodSource (as kubepods names the
// labelled ones) are held like PodCgroups'; until the source answers,
// and while it cannot, the lockdown is not healthy (the guard refuses),
// and a source that fails keeps the pods it named held.
func TestPodSourceScope(t *testing.T) {
	k, h, inf := startPodHosts(t, "5c1d")
	node := h.node
	node.must(t, "applysrc "+mustJSON(Config{Scope: ScopeService, InferencePorts: []uint16{11434}, WatchInterval: time.Hour}))
	node.must(t, "watch")
	waitHealthy(t, node, "false holding the inference pods failed: which pods to hold is not known: the pod source has not answered yet")
	runProbes(t, []probeCase{{inf, "tcp " + ap(inetUL, "80"), true}}) // not named yet

	node.must(t, "src "+k.top+"/*/kubepods-*-pod5c1d.slice")
	waitPods(t, node, func(got string) bool { return strings.HasSuffix(got, "pod5c1d.slice") })
	waitHealthy(t, node, "true ")
	runProbes(t, []probeCase{
		{inf, "tcp " + ap(inetUL, "80"), false},
		{inf, "tcp " + ap("127.0.0.1", inferencePort), true},
		{node, "tcp " + ap(inetUL, "80"), true},
	})

	node.must(t, "src fail")
	waitHealthy(t, node, "false holding the inference pods failed: which pods to hold is not known: the API server does not answer")
	runProbes(t, []probeCase{{inf, "tcp " + ap(inetUL, "80"), false}}) // still held
	// Restoring lost tables does not make it healthy while the pods are
	// not known.
	run(t, h.topology.node, "nft", "flush", "ruleset")
	waitEvent(t, node, `"Kind":"restored"`)
	if got := node.ask(t, "healthy"); !strings.HasPrefix(got, "false holding the inference pods failed") {
		t.Errorf("after a restore while the pod source fails: healthy %q", got)
	}
	if got := node.ask(t, "healthyat"); !strings.Contains(got, "restored=false") || strings.Contains(got, "restored=true") {
		t.Errorf("the restore was reported as healthy while the pods were not known (a guard would serve): %s", got)
	}
	runProbes(t, []probeCase{{inf, "tcp " + ap(inetUL, "80"), false}})
	node.must(t, "src "+k.top+"/*/kubepods-*-pod5c1d.slice")
	waitHealthy(t, node, "true ")
	node.must(t, "unwatch")
	node.must(t, "off")
}

// waitHealthy asks the node whether its lockdown is healthy until the
// answer is want, and fails after five seconds.
func waitHealthy(t *testing.T, node *agent, want string) {
	t.Helper()
	for start := time.Now(); ; {
		got := node.ask(t, "healthy")
		if got == want {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("healthy: %q after 5s, want %q", got, want)
		}
	}
}

// waitEvent waits until the node's watch has reported an event
// containing want (JSON), for five seconds.
func waitEvent(t *testing.T, node *agent, want string) {
	t.Helper()
	for start := time.Now(); ; {
		got := node.ask(t, "events")
		if strings.Contains(got, want) {
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("no event %s after 5s: %s", want, got)
		}
	}
}
