package engine

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// tunChild is the configuration handed to a child process that runs one
// TUN engine inside a network namespace.
type tunChild struct {
	Name     string         `json:"name"`
	Key      string         `json:"key"`
	Port     uint16         `json:"port"`
	Self     []netip.Addr   `json:"self"`
	PeerKey  key.Public     `json:"peerKey"`
	PeerAddr []netip.Addr   `json:"peerAddr"`
	PeerEP   netip.AddrPort `json:"peerEp"`
}

const tunChildEnv = "MOAT_TEST_TUN_CHILD"

// TestTUNPairInNamespaces runs two engines on real TUN devices in two
// network namespaces joined by a veth pair, one process per namespace.
func TestTUNPairInNamespaces(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	a, err := netns.New("moat-tun-a")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := netns.New("moat-tun-b")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ulA, ulB := netip.MustParsePrefix("198.18.0.1/24"), netip.MustParsePrefix("198.18.0.2/24")
	if err := netns.Veth(a, "ul0", ulA, b, "ul0", ulB); err != nil {
		t.Fatal(err)
	}
	ka, _ := key.NewPrivate()
	kb, _ := key.NewPrivate()
	addrA := []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd7a:6d6f:6174::1")}
	addrB := []netip.Addr{netip.MustParseAddr("100.64.0.2"), netip.MustParseAddr("fd7a:6d6f:6174::2")}
	ca := startTUNChild(t, a, tunChild{"a", ka.Text(), 51820, addrA, kb.Public(), addrB, netip.AddrPortFrom(ulB.Addr(), 51820)})
	cb := startTUNChild(t, b, tunChild{"b", kb.Text(), 51820, addrB, ka.Public(), addrA, netip.AddrPortFrom(ulA.Addr(), 51820)})

	for _, tc := range []struct {
		c    *netns.Child
		cmd  string
		want string
	}{
		{ca, "get 100.64.0.2", "ok b saw 100.64.0.1:"},
		{cb, "get 100.64.0.1", "ok a saw 100.64.0.2:"},
		{ca, "get fd7a:6d6f:6174::2", "ok b saw [fd7a:6d6f:6174::1]:"},
		{ca, "drop", "ok"},
		{ca, "probe 100.64.0.2", "err "},
		{ca, "add", "ok"},
		{ca, "get 100.64.0.2", "ok b saw 100.64.0.1:"},
	} {
		if got := tc.c.Ask(t, tc.cmd, time.Minute); !strings.HasPrefix(got, tc.want) {
			t.Fatalf("%s: %q, want prefix %q", tc.cmd, got, tc.want)
		}
	}
}

// startTUNChild runs cfg's side of the pair in ns and waits until it is
// ready (see TestTUNChild).
func startTUNChild(t *testing.T, ns *netns.NS, cfg tunChild) *netns.Child {
	t.Helper()
	js, _ := json.Marshal(cfg)
	c := netns.StartChild(t, ns, cfg.Name, "TestTUNChild", tunChildEnv+"="+string(js))
	c.Expect(t, "ready", time.Minute) // readiness, never a sleep
	return c
}

// TestTUNChild is not a test: it is the child process of
// TestTUNPairInNamespaces, run inside a namespace.
func TestTUNChild(t *testing.T) {
	js := os.Getenv(tunChildEnv)
	if js == "" {
		t.Skip("child process of TestTUNPairInNamespaces only")
	}
	if err := runTUNChild(js); err != nil {
		fmt.Printf("fail %v\n", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runTUNChild(js string) error {
	var cfg tunChild
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		return err
	}
	priv, err := key.ParsePrivate(cfg.Key)
	if err != nil {
		return err
	}
	e, err := New(Config{PrivateKey: priv, ListenPort: cfg.Port, Backend: TUN})
	if err != nil {
		return err
	}
	defer e.Close()
	nm := func(withPeer bool) *wire.NetMap {
		m := &wire.NetMap{Version: wire.Version, Self: wire.Self{Key: priv.Public(), Addresses: cfg.Self}}
		if withPeer {
			m.Peers = []wire.Peer{{Key: cfg.PeerKey, Addresses: cfg.PeerAddr, Endpoints: []netip.AddrPort{cfg.PeerEP}}}
		}
		return m
	}
	if err := e.Reconfig(nm(true)); err != nil {
		return err
	}
	ln, err := e.Listen("tcp", ":80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s saw %s", cfg.Name, r.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		verb, arg, _ := strings.Cut(sc.Text(), " ")
		switch verb {
		case "get", "probe": // probe expects failure: wait briefly
			timeout := 10 * time.Second
			if verb == "probe" {
				timeout = time.Second
			}
			c := &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: e.Dial, DisableKeepAlives: true}}
			body, err := get(c, netip.MustParseAddr(arg))
			if err != nil {
				fmt.Println("err", err)
			} else {
				fmt.Println("ok", body)
			}
		case "drop", "add":
			if err := e.Reconfig(nm(verb == "add")); err != nil {
				fmt.Println("err", err)
			} else {
				fmt.Println("ok")
			}
		}
	}
	return nil
}
