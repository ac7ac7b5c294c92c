package tailnet

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tailscale.com/ipn/store/mem"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
	"tailscale.com/types/logger"

	"github.com/moatmesh/moat/internal/cli/clitest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/node/tailnet/tailnettest"
)

// The namespaces' addresses: the "world" holds the tailnet's control,
// relay and STUN servers and the caller alice; the node reaches it over a
// veth and has its default route there, so that anything the lockdown
// let out would arrive in the world and be counted.
const (
	worldAddr = "198.18.5.1"
	nodeAddr  = "198.18.5.2"
	alicePort = 41700 // alice's tsnet UDP port
	nodePort  = 41641 // the node's
)

// Environment variables naming the child tests' roles.
const (
	worldEnv = "MOAT_TAILNET_WORLD"
	upEnv    = "MOAT_TAILNET_UPSTREAM"
)

// TestTailnetLockdown runs moat-node tailnet, built as shipped, under the
// host lockdown in a namespace, against a tailnet in another: a caller
// streams through it over a direct UDP path, and at the world not one
// frame from the node goes anywhere but the control server, the relay,
// STUN and the caller's endpoint. An upload to Tailscale's log service
// would begin by resolving its name: the node's DNS drop counter shows it
// never tried.
func TestTailnetLockdown(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	bin := clitest.Build(t, "github.com/moatmesh/moat/cmd/moat-node")
	world, node := newNS(t, "moat-tnw"), newNS(t, "moat-tnn")
	if err := netns.Veth(world, "ul0", netip.MustParsePrefix(worldAddr+"/24"), node, "ul0", netip.MustParsePrefix(nodeAddr+"/24")); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []*netns.NS{world, node} {
		mustRun(t, ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
	}
	if err := node.IP("route", "add", "default", "via", worldAddr); err != nil {
		t.Fatal(err)
	}
	// The node's resolver is out in the world: any name the node looked
	// up (log.tailscale.com for an upload, say) would be a DNS packet the
	// lockdown drops and counts.
	etc := filepath.Join("/etc/netns", node.Name)
	must(t, os.MkdirAll(etc, 0o755))
	t.Cleanup(func() { os.RemoveAll(etc) })
	must(t, os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 198.18.9.53\n"), 0o644))

	w := netns.StartChild(t, world, "world", "TestTailnetWorldChild", worldEnv+"=1")
	var control string
	var derpPort, stunPort int
	if _, err := fmt.Sscanf(w.Expect(t, "control ", time.Minute), "%s %d %d", &control, &derpPort, &stunPort); err != nil {
		t.Fatal(err)
	}
	cport := control[strings.LastIndex(control, ":")+1:]
	countFrames(t, world, fmt.Sprintf("tcp dport %s, tcp dport %d, udp dport %d, udp dport %d", cport, derpPort, stunPort, alicePort))
	up := netns.StartChild(t, node, "upstream", "TestTailnetUpstreamChild", upEnv+"=1")
	up.Expect(t, "ready", 30*time.Second)

	dir := t.TempDir()
	pol := filepath.Join(dir, "policy.hujson")
	must(t, os.WriteFile(pol, []byte(`{"tagOwners": {"tag:gpu": []}, "models": {"standin": {"servedBy": ["tag:gpu"]}},
  "grants": [{"src": ["autogroup:member"], "models": ["standin"]}]}`), 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := node.Command(ctx, bin, "tailnet", "--control-url", control, "--hostname", "gpu-1", "--advertise-tags", "tag:gpu",
		"--policy", pol, "--model", "standin=http://127.0.0.1:11434", "--state-dir", filepath.Join(dir, "state"),
		"--listen-port", strconv.Itoa(nodePort), "--lockdown", "host", "--lockdown-dns", "none", "--lockdown-ntp", "none", "--lockdown-dhcp", "off")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	must(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		node.Command(context.Background(), bin, "lockdown", "off", "--force").Run()
		if t.Failed() {
			t.Logf("moat-node:\n%s", logs.String())
		}
	})

	if got := w.Ask(t, "call", 90*time.Second); got != "ok" {
		t.Fatalf("alice's call through the tailnet: %s", got)
	}
	// The call left an audit record, and the spool verifies with the
	// command an admin would run.
	waitFor(t, "moat-node audit verify to find the call's record intact", func() bool {
		out, _ := exec.Command(bin, "audit", "verify", "--json", "--state-dir", filepath.Join(dir, "state")).Output()
		return strings.Contains(string(out), `"exists": true`) && strings.Contains(string(out), `"intact": true`)
	})
	// Watch for a while with the node idle, long enough for tsnet's log
	// uploader to flush (it would within seconds) and netcheck to run.
	time.Sleep(5 * time.Second)
	allowed, elsewhere := readCounter(t, world, "allowed"), readCounter(t, world, "elsewhere")
	t.Logf("frames from the node at the world: %d to the tailnet's servers and alice, %d elsewhere", allowed, elsewhere)
	if allowed == 0 {
		t.Fatal("the capture counted nothing from the node: it does not work")
	}
	if elsewhere != 0 {
		t.Errorf("%d frames from the node went elsewhere than the control server, relay, STUN and the peer", elsewhere)
	}
	st, err := node.Command(ctx, bin, "lockdown", "status").CombinedOutput()
	if err != nil {
		t.Fatalf("lockdown status: %v\n%s", err, st)
	}
	// No name was looked up: nothing was sent to a server by name, the
	// log service included. (Other drops are the first STUN, relay and
	// ICMP probes netcheck sends as the DERP map arrives, in the moment
	// before the lockdown learns it from the same netmap; they are retried.)
	for _, line := range strings.Split(string(st), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "egress") {
			t.Logf("lockdown dropped %s %s", f[0], f[1])
			if f[0] == "egress_dns" && f[1] != "0" {
				t.Errorf("the node looked a name up (dropped by the lockdown): %s", line)
			}
		}
	}
}

func newNS(t *testing.T, prefix string) *netns.NS {
	ns, err := netns.New(prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

func mustRun(t *testing.T, ns *netns.NS, name string, args ...string) {
	t.Helper()
	if out, err := ns.Command(context.Background(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// countFrames counts, in the world, every IPv4 packet from the node:
// "allowed" those to the world's address on one of the allowed ports,
// "elsewhere" all the others.
func countFrames(t *testing.T, world *netns.NS, allowedPorts string) {
	script := fmt.Sprintf(`add table inet cap
add counter inet cap allowed
add counter inet cap elsewhere
add chain inet cap pre { type filter hook prerouting priority -300; policy accept; }
add rule inet cap pre ip saddr != %[1]s return
add rule inet cap pre ip daddr %[2]s meta l4proto . th dport { %[3]s } counter name allowed return
add rule inet cap pre counter name elsewhere
`, nodeAddr, worldAddr, strings.NewReplacer("tcp dport", "tcp .", "udp dport", "udp .").Replace(allowedPorts))
	cmd := world.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in the world: %v\n%s", err, out)
	}
}

func readCounter(t *testing.T, world *netns.NS, name string) int {
	out, err := world.Command(context.Background(), "nft", "list", "counter", "inet", "cap", name).Output()
	must(t, err)
	f := strings.Fields(string(out))
	for i, s := range f {
		if s == "packets" && i+1 < len(f) {
			n, err := strconv.Atoi(f[i+1])
			must(t, err)
			return n
		}
	}
	t.Fatalf("no packet count in %q", out)
	return 0
}

// TestTailnetUpstreamChild is the model server in the node's namespace.
func TestTailnetUpstreamChild(t *testing.T) {
	if os.Getenv(upEnv) == "" {
		t.Skip("started by TestTailnetLockdown only")
	}
	s, err := standin.Start(11434, 0)
	must(t, err)
	defer s.Close()
	fmt.Println("ready")
	bufio.NewScanner(os.Stdin).Scan() // until the parent closes stdin
}

// TestTailnetWorldChild is the tailnet in the world's namespace: it
// prints "control URL DERPPORT STUNPORT", then answers "call" by joining
// alice, waiting for a direct path to gpu-1 and streaming a completion
// from it ("ok" or what went wrong).
func TestTailnetWorldChild(t *testing.T) {
	if os.Getenv(worldEnv) == "" {
		t.Skip("started by TestTailnetLockdown only")
	}
	tn := tailnettest.StartOn(t, worldAddr)
	d := tn.DERPMap.Regions[1].Nodes[0]
	fmt.Printf("control %s %d %d\n", tn.URL, d.DERPPort, d.STUNPort)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "call" {
			fmt.Println(aliceCalls(t, tn))
		}
	}
}

func aliceCalls(t *testing.T, tn *tailnettest.Tailnet) string {
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	s := &tsnet.Server{Dir: t.TempDir(), ControlURL: tn.URL, Hostname: "alice", Store: new(mem.Store), Ephemeral: true,
		Port: alicePort, Logf: logger.Discard, UserLogf: logger.Discard}
	defer s.Close()
	if _, err := s.Up(ctx); err != nil {
		return "up: " + err.Error()
	}
	lc, _ := s.LocalClient()
	var gpu netip.Addr
	for !gpu.IsValid() {
		st, err := lc.Status(ctx)
		if err != nil {
			return "status: " + err.Error()
		}
		for _, p := range st.Peer {
			if p.HostName == "gpu-1" && len(p.TailscaleIPs) > 0 && p.CurAddr != "" {
				gpu = p.TailscaleIPs[0]
			} else if p.HostName == "gpu-1" && len(p.TailscaleIPs) > 0 {
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				lc.Ping(pctx, p.TailscaleIPs[0], tailcfg.PingDisco)
				pcancel()
			}
		}
		if ctx.Err() != nil {
			return "no direct path to gpu-1: " + ctx.Err().Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	c := &http.Client{Transport: &http.Transport{DialContext: s.Dial}}
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+gpu.String()+"/v1/chat/completions",
		strings.NewReader(`{"model":"standin","stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	resp, err := c.Do(req)
	if err != nil {
		return "request: " + err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(b.String(), "stand-in") {
		return fmt.Sprintf("status %d: %s", resp.StatusCode, b.String())
	}
	return "ok"
}
