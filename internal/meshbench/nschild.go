package meshbench

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// ChildProfileEnv names the environment variable that makes each TUN
// child write a CPU profile to its value plus "." and its mesh address
// (and the relay child to its value plus ".relay").
const ChildProfileEnv = "MESHBENCH_CHILD_CPUPROFILE"

// StartProfile writes a CPU profile to path until stop is called.
func StartProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// profileChild profiles this child when ChildProfileEnv asks for it.
func profileChild(suffix string) (stop func(), err error) {
	path := os.Getenv(ChildProfileEnv)
	if path == "" {
		return func() {}, nil
	}
	return StartProfile(path + "." + suffix)
}

type tunConfig struct {
	Name    string         `json:"name"`
	Port    uint16         `json:"port"`
	Key     string         `json:"key"`
	Self    netip.Addr     `json:"self"`
	PeerKey key.Public     `json:"peerKey"`
	Peer    netip.Addr     `json:"peer"`
	PeerEP  netip.AddrPort `json:"peerEp"`
	Sink    bool           `json:"sink"`
	Relay   *relayConfig   `json:"relay,omitempty"`
}

// measuring is the line a sender prints when its measured run starts.
const measuring = "measuring"

// RunChild is the child side of Namespaces: `child sink ADDR`, `child tun
// JSON`, `child relay JSON` (all three run until stdin closes) and `child
// send ADDR DUR`, which prints measuring when its measured run starts and
// then "BPS BYTES CPU-NS RETRANS": the rate, the bytes the sink counted,
// the CPU the sender spent in that run and the TCP segments its network
// namespace's kernel retransmitted meanwhile.
func RunChild(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("child: want MODE ARG")
	}
	switch args[0] {
	case "sink":
		stop, err := startSink(args[1])
		if err != nil {
			return err
		}
		defer stop()
		return readyUntilEOF()
	case "tun":
		return runTUNChild(args[1])
	case "relay":
		return runRelayChild(args[1])
	case "send":
		if len(args) < 3 {
			return fmt.Errorf("child send: want ADDR DUR")
		}
		d, err := time.ParseDuration(args[2])
		if err != nil {
			return err
		}
		return send(args[1], d)
	}
	return fmt.Errorf("child: unknown mode %q", args[0])
}

func runTUNChild(js string) error {
	var cfg tunConfig
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	priv, err := key.ParsePrivate(cfg.Key)
	if err != nil {
		return err
	}
	stopProfile, err := profileChild(cfg.Self.String())
	if err != nil {
		return err
	}
	defer stopProfile()
	e, err := engine.New(engine.Config{
		PrivateKey: priv, ListenPort: cfg.Port, Backend: engine.TUN, TUNName: cfg.Name,
		Routes: []netip.Prefix{netip.PrefixFrom(cfg.Peer, cfg.Peer.BitLen())},
	})
	if err != nil {
		return err
	}
	defer e.Close()
	if r := cfg.Relay; r != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(r.CertPEM)) {
			return fmt.Errorf("relay certificate: no PEM")
		}
		if err := e.SetRelay(r.URL(), &tls.Config{RootCAs: pool, ServerName: relayServerName}, nil); err != nil {
			return err
		}
	}
	nm := &wire.NetMap{
		Version: wire.Version,
		Self:    wire.Self{Key: priv.Public(), Addresses: []netip.Addr{cfg.Self}},
		Peers:   []wire.Peer{{Key: cfg.PeerKey, Addresses: []netip.Addr{cfg.Peer}, Endpoints: []netip.AddrPort{cfg.PeerEP}}},
	}
	if err := e.Reconfig(nm); err != nil {
		return err
	}
	if cfg.Sink {
		stop, err := startSink(netip.AddrPortFrom(cfg.Self, sinkPort).String())
		if err != nil {
			return err
		}
		defer stop()
	}
	return readyUntilEOF()
}

func readyUntilEOF() error {
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// startSink serves a sink on addr until stop is called.
func startSink(addr string) (stop func(), err error) {
	if haveIperf() {
		ap := netip.MustParseAddrPort(addr)
		cmd := exec.Command("iperf3", "--server", "--bind", ap.Addr().String(), "--port", strconv.Itoa(int(ap.Port())))
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		if err := waitListening(addr); err != nil {
			cmd.Process.Kill()
			return nil, err
		}
		return func() { cmd.Process.Kill(); cmd.Wait() }, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go Sink(ln)
	return func() { ln.Close() }, nil
}

// waitListening polls until something accepts TCP on addr.
func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// send measures throughput to a sink at addr for d after a warm-up of a
// quarter of that (at least a second), and prints it as RunChild says.
func send(addr string, d time.Duration) error {
	run := goSend
	if haveIperf() {
		run = iperfSend
	}
	if _, _, err := run(addr, max(d/4, time.Second)); err != nil {
		return err
	}
	fmt.Println(measuring)
	cpu0, retrans0 := cpuTimeWithChildren(), tcpRetransmits()
	bps, n, err := run(addr, d)
	if err != nil {
		return err
	}
	fmt.Println(bps, n, int64(cpuTimeWithChildren()-cpu0), tcpRetransmits()-retrans0)
	return nil
}

// tcpRetransmits is the TCP segments the kernel has retransmitted in
// this process's network namespace (RetransSegs in /proc/net/snmp); 0
// where that cannot be read.
func tcpRetransmits() int64 {
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, name := range names {
			if name == "RetransSegs" && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

// goSend is one run of Send on a new connection; it returns the rate and
// the bytes the sink counted.
func goSend(addr string, d time.Duration) (float64, int64, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return 0, 0, err
	}
	defer c.Close()
	n, elapsed, err := sendCount(c, d)
	if err != nil {
		return 0, 0, err
	}
	return float64(n) * 8 / elapsed.Seconds(), int64(n), nil
}

func iperfSend(addr string, d time.Duration) (float64, int64, error) {
	ap := netip.MustParseAddrPort(addr)
	secs := max(1, int(d.Seconds()))
	out, err := exec.Command("iperf3", "--client", ap.Addr().String(), "--port", strconv.Itoa(int(ap.Port())),
		"--time", strconv.Itoa(secs), "--json").Output()
	if err != nil {
		return 0, 0, fmt.Errorf("iperf3: %w: %s", err, out)
	}
	var r struct {
		End struct {
			Received struct {
				BPS   float64 `json:"bits_per_second"`
				Bytes int64   `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return 0, 0, fmt.Errorf("iperf3 output: %w", err)
	}
	if r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %s", r.Error)
	}
	return r.End.Received.BPS, r.End.Received.Bytes, nil
}
