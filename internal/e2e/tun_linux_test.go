package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/lockdown"
)

// The underlay: one bridge in a switch namespace, three hosts on it, all
// in 198.18.0.0/15 (the benchmarking range, never routed anywhere real).
var (
	tunCoordUL  = netip.MustParsePrefix("198.18.0.1/24")
	tunGPUUL    = netip.MustParsePrefix("198.18.0.2/24")
	tunLaptopUL = netip.MustParsePrefix("198.18.0.3/24")
)

const (
	tunChildEnv = "MOAT_TEST_E2E_TUN_CHILD"
	tunWGPort   = 51820
	tunGuard    = 80
)

// tunChildConfig is handed to a child process as JSON in tunChildEnv.
type tunChildConfig struct {
	Role        string `json:"role"` // "gpu", "laptop" or "phone"
	Coordinator string `json:"coordinator"`
	Fingerprint string `json:"fingerprint"`
	Debug       bool   `json:"debug,omitempty"`

	// gpu
	EnrollKey string         `json:"enrollKey,omitempty"`
	StateDir  string         `json:"stateDir,omitempty"`
	Endpoint  netip.AddrPort `json:"endpoint,omitzero"`
	Lockdown  bool           `json:"lockdown,omitempty"` // the host lockdown, as installed nodes run

	// laptop: the client's state directory (key and login)
	DeviceDir    string     `json:"deviceDir,omitempty"`
	Node         string     `json:"node,omitempty"`
	GPUUnderlay  netip.Addr `json:"gpuUnderlay,omitzero"`
	UpstreamPort uint16     `json:"upstreamPort,omitempty"`

	// phone: the guard URL to send chat completions to
	GuardURL string `json:"guardURL,omitempty"`
}

// gpuReady is the gpu child's readiness line after "ready ".
type gpuReady struct {
	Node         string     `json:"node"`
	MeshAddr     netip.Addr `json:"meshAddr"`
	UpstreamPort uint16     `json:"upstreamPort"`
}

// laptopResult is the laptop child's result line after "result ".
type laptopResult struct {
	NodeAddr netip.Addr        `json:"nodeAddr"`
	Status   int               `json:"status"`
	Body     string            `json:"body,omitempty"` // when not 200
	Chunks   []string          `json:"chunks"`
	Done     bool              `json:"done"`   // saw "data: [DONE]"
	Probes   map[string]string `json:"probes"` // what -> "connected" or the dial error
}

// TestWholeSystemOverTUN is TestWholeSystem over real kernel TUN devices:
// a GPU node and a person's laptop, each a child process in its own
// network namespace, reach each other and the coordinator over a bridged
// underlay.
//
// The coordinator runs in this process (so the test can use coordtest's
// store, clock, sign-in and admin API directly) but serves the children on
// a TLS listener whose socket is opened inside the "coord" namespace. The
// root namespace therefore gains no interfaces or addresses, and the
// children reach the coordinator only across the bridge, with https and a
// pinned self-signed certificate, as a real node does.
// underlay makes a switch and one host per address attached to it (as
// ul0), in the order given. They close when the test ends, after
// everything the test registers later.
func underlay(t *testing.T, prefix string, addrs ...netip.Prefix) []*netns.NS {
	t.Helper()
	mk := func(name string) *netns.NS {
		ns, err := netns.New(name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ns.Close() })
		return ns
	}
	sw := mk(prefix + "-sw")
	if err := netns.Bridge(sw, "br0"); err != nil {
		t.Fatal(err)
	}
	hosts := make([]*netns.NS, len(addrs))
	for i, addr := range addrs {
		hosts[i] = mk(fmt.Sprintf("%s-%d", prefix, i+1))
		if err := netns.Attach(hosts[i], "ul0", []netip.Prefix{addr}, sw, "br0"); err != nil {
			t.Fatal(err)
		}
	}
	return hosts
}

func TestWholeSystemOverTUN(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)

	// Namespaces first, so that their Close runs last.
	hosts := underlay(t, "moat-e2e", tunCoordUL, tunGPUUL, tunLaptopUL)
	coordNS, gpuNS, laptopNS := hosts[0], hosts[1], hosts[2]

	// The coordinator, reachable at https://198.18.0.1:PORT from the bridge.
	coord := coordtest.Start(t)
	ln, err := listenIn(coordNS, netip.AddrPortFrom(tunCoordUL.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	cert, fingerprint := selfSigned(t, tunCoordUL.Addr())
	srv := &http.Server{Handler: coord.Server, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	coordURL := "https://" + ln.Addr().String()

	coord.SavePolicy(t, Policy)
	ek := coord.EnrollKey(t, "tag:gpu")
	debug := os.Getenv("MOAT_TEST_LOG") != ""

	// The GPU node: joins with the key, serves llama from the stand-in on
	// its own 127.0.0.1, guard on its mesh address.
	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		EnrollKey: ek, StateDir: t.TempDir(), Endpoint: netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort)})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 20*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %s up at %s after %v (upstream on its 127.0.0.1:%d)", ready.Node, ready.MeshAddr, time.Since(began).Round(time.Millisecond), ready.UpstreamPort)

	// Alice signs in through the browser flow here; her laptop runs the
	// client on the state directory that leaves, over TUN.
	dir := SignInDevice(t, ctx, coord, coord.AddPerson(t, "alice@example.com", false), "laptop", coordURL, fingerprint)
	laptop := startE2EChild(t, laptopNS, tunChildConfig{Role: "laptop", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		DeviceDir: string(dir), Node: ready.Node, GPUUnderlay: tunGPUUL.Addr(), UpstreamPort: ready.UpstreamPort})
	var res laptopResult
	if err := json.Unmarshal([]byte(laptop.Expect(t, "result ", 25*time.Second)), &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("laptop's streamed completion done after %v", time.Since(began).Round(time.Millisecond))

	// The streamed completion arrived whole, chunk by chunk.
	if res.Status != http.StatusOK {
		t.Fatalf("chat completion over TUN: %d %s", res.Status, res.Body)
	}
	if res.NodeAddr != ready.MeshAddr {
		t.Errorf("laptop used node address %s, node has %s", res.NodeAddr, ready.MeshAddr)
	}
	if want := StandinChunks(); !slices.Equal(res.Chunks, want) || !res.Done {
		t.Fatalf("got chunks %q (done=%v), want %q", res.Chunks, res.Done, want)
	}

	// Only the guard on the mesh address is reachable: the upstream binds
	// 127.0.0.1 and the guard only the mesh address.
	for _, what := range []string{"underlay-upstream", "underlay-guard", "mesh-upstream"} {
		got, ok := res.Probes[what]
		if !ok {
			t.Errorf("probe %s missing", what)
		} else if got == "connected" {
			t.Errorf("probe %s: the laptop connected; it must not be reachable", what)
		} else {
			t.Logf("probe %s refused as it should be: %s", what, got)
		}
	}
	if got := res.Probes["underlay-coordinator"]; got != "connected" {
		t.Errorf("control probe: the laptop cannot reach the coordinator over the underlay: %s", got)
	}

	// The audit record reaches the coordinator, attributed to alice.
	for deadline := time.Now().Add(20 * time.Second); ; {
		out := coord.Admin(t, "GET", "/audit?login=alice@example.com", "")
		if strings.Contains(out, `"decision":"allow"`) && strings.Contains(out, "llama") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record for alice's request at the coordinator: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("whole flow over TUN in %v", time.Since(began).Round(time.Millisecond))
}

// listenIn opens a TCP listener inside ns from this process (openIn).
func listenIn(ns *netns.NS, addr string) (net.Listener, error) {
	return openIn(ns, func() (net.Listener, error) { return net.Listen("tcp", addr) })
}

// openIn makes a socket inside ns from this process: a locked thread
// enters the namespace, calls open and comes back. The socket stays in
// ns; using it needs no particular thread.
func openIn[T io.Closer](ns *netns.NS, open func() (T, error)) (T, error) {
	type result struct {
		sock T
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var zero T
		runtime.LockOSThread()
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, err}
			return
		}
		defer self.Close()
		target, err := os.Open("/var/run/netns/" + ns.Name)
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, err}
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			ch <- result{zero, fmt.Errorf("enter namespace %s: %w", ns.Name, err)}
			return
		}
		sock, err := open()
		if rerr := setns(self); rerr != nil {
			// The thread stays locked, so the runtime discards it when this
			// goroutine ends instead of reusing it in the wrong namespace.
			if err == nil {
				sock.Close()
			}
			ch <- result{zero, fmt.Errorf("return from namespace %s: %w", ns.Name, rerr)}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{sock, err}
	}()
	r := <-ch
	return r.sock, r.err
}

// lockdownIf is the host lockdown with the node's defaults when on.
func lockdownIf(on bool) *lockdown.Config {
	if !on {
		return nil
	}
	return &lockdown.Config{}
}

// validOnly is the list of ep, empty when ep is not valid.
func validOnly(ep netip.AddrPort) []netip.AddrPort {
	if !ep.IsValid() {
		return nil
	}
	return []netip.AddrPort{ep}
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// selfSigned makes a short-lived certificate for ip and returns it with
// its fingerprint in the form control.Config.Fingerprint takes.
func selfSigned(t *testing.T, ip netip.Addr) (tls.Certificate, string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "moat e2e coordinator"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{ip.AsSlice()}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: c}, control.Fingerprint(c)
}

// startE2EChild runs cfg's role in ns (see TestE2ETUNChild).
func startE2EChild(t *testing.T, ns *netns.NS, cfg tunChildConfig) *netns.Child {
	t.Helper()
	js, _ := json.Marshal(cfg)
	return netns.StartChild(t, ns, cfg.Role, "TestE2ETUNChild", tunChildEnv+"="+string(js))
}

// TestE2ETUNChild is not a test: it is a child process of
// TestWholeSystemOverTUN, run inside a namespace.
func TestE2ETUNChild(t *testing.T) {
	js := os.Getenv(tunChildEnv)
	if js == "" {
		t.Skip("child process of TestWholeSystemOverTUN only")
	}
	var cfg tunChildConfig
	err := json.Unmarshal([]byte(js), &cfg)
	if err == nil {
		switch cfg.Role {
		case "gpu":
			err = runGPUChild(cfg)
		case "laptop":
			err = runLaptopChild(cfg)
		case "phone":
			err = runPhoneChild(cfg)
		case "reach":
			err = runReachChild(cfg)
		default:
			err = fmt.Errorf("unknown role %q", cfg.Role)
		}
	}
	if err != nil {
		fmt.Printf("fail %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func childLogger(cfg tunChildConfig) *slog.Logger {
	if !cfg.Debug {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("child", cfg.Role)
}

// untilStdinEnds returns a context that ends when the parent closes our
// stdin.
func untilStdinEnds() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	return ctx, cancel
}

func printLine(prefix string, v any) {
	b, _ := json.Marshal(v)
	fmt.Printf("%s%s\n", prefix, b)
}

func runGPUChild(cfg tunChildConfig) error {
	ctx, cancel := untilStdinEnds()
	defer cancel()
	up, err := standin.Start(0, 0) // 127.0.0.1 of this namespace only
	if err != nil {
		return err
	}
	defer up.Close()
	upPort := netip.MustParseAddrPort(strings.TrimPrefix(up.URL, "http://")).Port()
	tun := engine.TUN
	n, err := node.Start(ctx, node.Config{
		Coordinator: cfg.Coordinator, Fingerprint: cfg.Fingerprint, EnrollKey: wire.Secret(cfg.EnrollKey),
		StateDir: cfg.StateDir, Hostname: "gpu-1", Logger: childLogger(cfg),
		Models:  []node.Model{{Name: "llama", Upstream: guard.Upstream{URL: up.URL, Kind: guard.KindOpenAI}}},
		Backend: &tun, ListenPort: tunWGPort, GuardPort: tunGuard, Endpoints: validOnly(cfg.Endpoint),
		Lockdown: lockdownIf(cfg.Lockdown),
	})
	if err != nil {
		return err
	}
	defer n.Close()
	runErr := make(chan error, 1)
	go func() { runErr <- n.Run(ctx) }()

	// Ready once the guard accepts on the mesh address (it starts listening
	// with the first netmap): connect to it through our own kernel.
	var mesh netip.Addr
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, a := range n.Engine().Addresses() {
			if a.Is4() {
				mesh = a
			}
		}
		if mesh.IsValid() {
			if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(mesh, tunGuard).String(), time.Second); err == nil {
				c.Close()
				break
			}
		}
		select {
		case err := <-runErr:
			return fmt.Errorf("node stopped before it was ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("guard not listening on the mesh (address %v) within 15s", mesh)
		}
	}
	printLine("ready ", gpuReady{Node: string(n.DeviceID()), MeshAddr: mesh, UpstreamPort: upPort})
	select {
	case <-ctx.Done():
		return nil
	case err := <-runErr:
		if err != nil {
			return fmt.Errorf("node stopped: %v", err)
		}
		return nil
	}
}

func runLaptopChild(cfg tunChildConfig) error {
	ctx, cancel := untilStdinEnds()
	defer cancel()
	cl, err := client.New(client.Config{StateDir: cfg.DeviceDir, Listen: "127.0.0.1:0", Backend: engine.TUN, Logger: childLogger(cfg)})
	if err != nil {
		return err
	}
	defer cl.Close()
	go cl.Run(ctx) // Close stops it and waits
	var nodeAddr netip.Addr
	if WaitNetMap(cl, 10*time.Second, func(nm *wire.NetMap) bool {
		for _, p := range nm.Peers {
			if string(p.Identity.DeviceID) == cfg.Node && len(p.Models) == 1 {
				for _, a := range p.Addresses {
					if a.Is4() {
						nodeAddr = a
					}
				}
			}
		}
		return nodeAddr.IsValid()
	}) == nil {
		return fmt.Errorf("the laptop never saw the node in its netmap; client status: %+v", cl.Status())
	}

	// A streamed chat completion to the node's mesh address through the
	// kernel: plain net/http, the TUN routes the mesh.
	res := laptopResult{NodeAddr: nodeAddr, Probes: map[string]string{}}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	body := `{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}`
	var resp *http.Response
	for deadline := time.Now().Add(15 * time.Second); ; {
		// The node may learn our key a moment after we learn its; the
		// WireGuard handshake is retried, so give each try a few seconds.
		rctx, rcancel := context.WithTimeout(ctx, 6*time.Second)
		req, _ := http.NewRequestWithContext(rctx, "POST", "http://"+netip.AddrPortFrom(nodeAddr, tunGuard).String()+"/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Moat-User", "mallory@example.com") // spoofing changes nothing
		if resp, err = hc.Do(req); err == nil {
			defer rcancel()
			break
		}
		rcancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("chat completion through the mesh: %v", err)
		}
	}
	defer resp.Body.Close()
	res.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		res.Body = string(b)
	} else if res.Chunks, res.Done, err = ReadChatStream(resp.Body); err != nil {
		return fmt.Errorf("reading the stream: %v", err)
	}

	// What must not be reachable, and one thing that must (so that a dead
	// underlay cannot pass for a locked-down one).
	for what, dst := range map[string]netip.AddrPort{
		"underlay-upstream":    netip.AddrPortFrom(cfg.GPUUnderlay, cfg.UpstreamPort),
		"underlay-guard":       netip.AddrPortFrom(cfg.GPUUnderlay, tunGuard),
		"mesh-upstream":        netip.AddrPortFrom(nodeAddr, cfg.UpstreamPort),
		"underlay-coordinator": netip.MustParseAddrPort(strings.TrimPrefix(cfg.Coordinator, "https://")),
	} {
		conn, err := net.DialTimeout("tcp", dst.String(), 2*time.Second)
		if err != nil {
			res.Probes[what] = err.Error()
			continue
		}
		conn.Close()
		res.Probes[what] = "connected"
	}
	printLine("result ", res)
	<-ctx.Done()
	return nil
}
