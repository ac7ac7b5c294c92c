package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// reachResult is the reach child's answer to "chat" and "waitpath".
type reachResult struct {
	Status  int     `json:"status"`
	Body    string  `json:"body,omitempty"`
	Chunks  bool    `json:"chunks"` // the whole stream arrived
	Path    string  `json:"path"`   // the path to the node afterwards
	Relay   string  `json:"relay,omitempty"`
	Chats   int     `json:"chats"`   // completions made while waiting
	Seconds float64 `json:"seconds"` // how long it took
	Err     string  `json:"err,omitempty"`
}

// blockUDP makes ns drop every UDP packet it sends, as a hotel or guest
// network that allows only TCP does; unblockUDP lifts it.
func blockUDP(t *testing.T, ns *netns.NS) {
	t.Helper()
	nft(t, ns, "add table inet moat_reach_block\n"+
		"add chain inet moat_reach_block out { type filter hook output priority 0; policy accept; }\n"+
		"add rule inet moat_reach_block out meta l4proto udp drop\n")
}

func unblockUDP(t *testing.T, ns *netns.NS) {
	t.Helper()
	nft(t, ns, "delete table inet moat_reach_block\n")
}

func nft(t *testing.T, ns *netns.NS, script string) {
	t.Helper()
	cmd := ns.Command(context.Background(), "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft in %s: %v: %s", ns.Name, err, out)
	}
}

// TestReachThroughRelay: a laptop whose network drops all outbound UDP
// reaches the GPU node through the coordinator's relay over TLS, and the
// guard still knows it is alice; when UDP opens the path moves to direct
// without a failed request, when it closes again back to the relay, and a
// coordinator restart while relayed interrupts traffic only briefly.
func TestReachThroughRelay(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	hosts := underlay(t, "moat-reach", tunCoordUL, tunGPUUL, tunLaptopUL)
	coordNS, gpuNS, laptopNS := hosts[0], hosts[1], hosts[2]

	coord, cur, coordURL, fingerprint := reachCoordinator(t, coordNS)
	debug := os.Getenv("MOAT_TEST_LOG") != ""

	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		EnrollKey: coord.EnrollKey(t, "tag:gpu"), StateDir: t.TempDir(), Endpoint: netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort), Lockdown: true})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 20*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}

	blockUDP(t, laptopNS)
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coordURL, fingerprint)
	laptop := startE2EChild(t, laptopNS, tunChildConfig{Role: "reach", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		DeviceDir: string(dir), Node: ready.Node})
	ask := func(cmd string) reachResult {
		t.Helper()
		var r reachResult
		if err := json.Unmarshal([]byte(laptop.Ask(t, cmd, 30*time.Second)), &r); err != nil {
			t.Fatal(err)
		}
		if r.Err != "" {
			t.Fatalf("%s: %s (path %s)", cmd, r.Err, r.Path)
		}
		return r
	}

	// UDP blocked: the completion goes through the relay.
	r := ask("chat")
	if r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathRelay || !strings.HasPrefix(r.Relay, coordURL) {
		t.Fatalf("with UDP blocked: %+v; want a whole answer through %s/derp", r, coordURL)
	}
	t.Logf("UDP blocked: streamed answer through the relay in %.2fs", r.Seconds)
	waitAudit(t, coord, 1)

	// UDP opens: the path moves to direct while answers keep streaming.
	unblockUDP(t, laptopNS)
	r = ask("waitpath direct")
	t.Logf("UDP open: direct after %.2fs, %d answers streamed meanwhile, none failed", r.Seconds, r.Chats)

	// UDP closes again: back to the relay.
	blockUDP(t, laptopNS)
	r = ask("waitpath relay")
	t.Logf("UDP blocked again: relayed after %.2fs, %d answers streamed meanwhile, none failed", r.Seconds, r.Chats)

	// The coordinator restarts while the laptop is relayed.
	restarted := time.Now()
	coord.Restart(t)
	cur.Store(coord.Server)
	r = ask("chat")
	if r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathRelay {
		t.Fatalf("after a coordinator restart: %+v", r)
	}
	t.Logf("coordinator restarted: relayed answers again %.2fs after the restart", time.Since(restarted).Seconds())
	waitAudit(t, coord, 2)
}

// reachCoordinator starts a coordinator with Policy in force, serving
// the namespace coordNS over TLS at tunCoordUL (and STUN on its port
// 3478), through cur so that a test can restart it.
func reachCoordinator(t *testing.T, coordNS *netns.NS) (coord *coordtest.Coord, cur *atomic.Pointer[coordinator.Server], url, fingerprint string) {
	t.Helper()
	coord = coordtest.Start(t)
	cur = new(atomic.Pointer[coordinator.Server])
	cur.Store(coord.Server)
	cert, fingerprint := selfSigned(t, tunCoordUL.Addr())
	url = serveInNS(t, coordNS, cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { cur.Load().ServeHTTP(w, r) }))
	pc, err := openIn(coordNS, func() (net.PacketConn, error) {
		return net.ListenPacket("udp", netip.AddrPortFrom(tunCoordUL.Addr(), 3478).String())
	})
	if err != nil {
		t.Fatal(err)
	}
	go relay.ServeSTUN(pc)
	t.Cleanup(func() { pc.Close() })
	coord.SavePolicy(t, Policy)
	return coord, cur, url, fingerprint
}

// serveInNS serves h over TLS with cert in ns at a free port of
// tunCoordUL, and returns its URL.
func serveInNS(t *testing.T, ns *netns.NS, cert tls.Certificate, h http.Handler) string {
	t.Helper()
	ln, err := listenIn(ns, netip.AddrPortFrom(tunCoordUL.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://" + ln.Addr().String()
}

// waitAudit waits until the coordinator holds at least n allowed audit
// records for alice: the guard on the node knew who asked, whatever path
// the packets took.
func waitAudit(t *testing.T, coord *coordtest.Coord, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out := coord.Admin(t, "GET", "/audit?login=alice@example.com", "")
		if strings.Count(out, `"decision":"allow"`) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("want %d audit records for alice at the coordinator: %s", n, out)
		}
	}
}

// runReachChild is the laptop of TestReachThroughRelay: a client over TUN
// that answers the parent's commands, one JSON line each.
func runReachChild(cfg tunChildConfig) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cl, err := client.New(client.Config{StateDir: cfg.DeviceDir, Listen: "127.0.0.1:0", Backend: engine.TUN, Logger: childLogger(cfg)})
	if err != nil {
		return err
	}
	defer cl.Close()
	go cl.Run(ctx)
	var nodeAddr netip.Addr
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if string(p.Identity.DeviceID) == cfg.Node {
				nodeAddr = p.Addresses[0]
			}
		}
		return nodeAddr.IsValid()
	}) == nil {
		return fmt.Errorf("the laptop never saw the node; status %+v", cl.Status())
	}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		start := time.Now()
		var r reachResult
		switch cmd, arg, _ := strings.Cut(sc.Text(), " "); cmd {
		case "chat":
			r = chatOnce(ctx, nodeAddr, 20*time.Second)
		case "chatonce": // one try, for a refusal
			r = chatOnce(ctx, nodeAddr, 0)
		case "waitpath":
			r = waitPath(ctx, cl, nodeAddr, arg)
		default:
			r.Err = "unknown command " + cmd
		}
		r.Path, r.Relay = nodePath(cl)
		r.Seconds = time.Since(start).Seconds()
		printLine("", r)
	}
	return nil
}

// chatOnce makes one streamed completion, retrying until it works or
// within passes.
func chatOnce(ctx context.Context, node netip.Addr, within time.Duration) reachResult {
	var r reachResult
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	body := `{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	for deadline := time.Now().Add(within); ; {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://"+netip.AddrPortFrom(node, tunGuard).String()+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err == nil {
			r.Status = resp.StatusCode
			chunks, done, err := ReadChatStream(resp.Body)
			resp.Body.Close()
			r.Chunks = err == nil && done && slices.Equal(chunks, StandinChunks())
			return r
		}
		if time.Now().After(deadline) {
			r.Err = "chat completion: " + err.Error()
			return r
		}
	}
}

// waitPath streams completions until the node's path is want; every one
// must succeed on its first try.
func waitPath(ctx context.Context, cl *client.Client, node netip.Addr, want string) reachResult {
	var r reachResult
	for deadline := time.Now().Add(20 * time.Second); ; {
		if p, _ := nodePath(cl); p == want {
			return r
		}
		if time.Now().After(deadline) {
			r.Err = "path never became " + want
			return r
		}
		c := chatOnce(ctx, node, 0)
		if c.Err != "" || c.Status != http.StatusOK || !c.Chunks {
			r.Err = fmt.Sprintf("an answer failed while moving to %s: %+v", want, c)
			return r
		}
		r.Chats++
	}
}

func nodePath(cl *client.Client) (path, relay string) {
	for _, n := range cl.Status().Nodes {
		return n.Path, n.Relay
	}
	return "", ""
}
