package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/internal/netns"
	"github.com/moatmesh/moat/internal/pgtest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/engine"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
)

// relayProcUL is the relay process's host on the underlay.
var relayProcUL = netip.MustParsePrefix("198.18.0.4/24")

// relayProcFirstAnswer bounds the first answer in
// TestReachThroughRelayProcess (0.10–1.01 s measured).
const relayProcFirstAnswer = 4 * time.Second

// TestReachThroughRelayProcess: one coordinator replica on PostgreSQL
// (in this process, served over TLS in the coordinator's namespace) and
// a relay process of its own, the real `moat-coordinator relay` binary
// with its real flags in a namespace of its own, sharing the database,
// the seal key and the cluster's self-signed certificate; the replica's
// --relay names it. The laptop, whose network drops all outbound UDP,
// is on the relay process (the first relay of its netmap); the node
// (under its lockdown) cannot reach the relay process (an nftables drop)
// and falls back to the coordinator's relay, so the relays' mesh carries
// the streamed answer, which the guard records as alice's. The relay
// process refuses a key it does not know; revoked at the replica, the
// laptop is cut off from the relay process.
func TestReachThroughRelayProcess(t *testing.T) {
	if why := netns.Unavailable(); why != "" {
		t.Skip(why)
	}
	dsn := pgtest.FreshSchema(t, pgtest.URL(t, "the relay process reach test"))
	bin := buildCoordinator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	t.Cleanup(cancel)
	hosts := underlay(t, "moat-rp", tunCoordUL, tunGPUUL, tunLaptopUL, relayProcUL)
	coordNS, gpuNS, laptopNS, relayNS := hosts[0], hosts[1], hosts[2], hosts[3]
	debug := os.Getenv("MOAT_TEST_LOG") != ""

	// The cluster's self-signed certificate, kept sealed in the database
	// as `serve --tls self-signed` keeps it, for the name the replicas
	// verify each other with (the replica's public URL's host).
	var sealKey [32]byte
	rand.Read(sealKey[:])
	cert, fingerprint, err := coordinator.SelfSignedTLS(ctx, coordinator.Config{PublicURL: "https://127.0.0.1",
		Database: dsn, DataDir: t.TempDir(), SealKey: sealKey, SealKeySource: "the test's seal key"})
	if err != nil {
		t.Fatal(err)
	}

	// The relay process listens at relayPort on every address of its
	// namespace; the replica, in this process's namespace, reaches it at
	// 127.0.0.1:relayPort, forwarded across the underlay.
	meshLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	relayPort := meshLn.Addr().(*net.TCPAddr).Port
	forward(t, meshLn, coordNS, netip.AddrPortFrom(relayProcUL.Addr(), uint16(relayPort)).String())
	relayURL := "https://" + netip.AddrPortFrom(relayProcUL.Addr(), uint16(relayPort)).String() + relay.Path

	// The replica, served to the namespaces over TLS in the coordinator's.
	coordLn, err := listenIn(coordNS, netip.AddrPortFrom(tunCoordUL.Addr(), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	coordURL := "https://" + coordLn.Addr().String()
	replica := coordtest.Start(t, func(cfg *coordinator.Config) {
		cfg.Database, cfg.DataDir = dsn, t.TempDir()
		cfg.SealKey, cfg.SealKeySource = sealKey, "the test's seal key"
		cfg.SelfSignedCert = cert.Certificate[0]
		cfg.RelayMeshURL = coordURL + relay.Path
		cfg.Relays = []string{relayURL}
	})
	srv := &http.Server{Handler: replica.Server, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(coordLn, "", "")
	t.Cleanup(func() { srv.Close() })
	replica.SavePolicy(t, Policy)

	// The relay process reaches PostgreSQL at its address in this
	// process's namespace, forwarded.
	pg, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgLn, err := listenIn(relayNS, pg.Host)
	if err != nil {
		t.Fatal(err)
	}
	forward(t, pgLn, nil, pg.Host)
	relayProc := startRelayProcess(t, ctx, relayNS, bin, sealKey, "--listen", ":"+itoa(relayPort),
		"--public-url", replica.URL, "--relay-url", relayURL, "--database", dsn, "--data-dir", t.TempDir(),
		"--tls", "self-signed", "--relay-mesh-url", "https://127.0.0.1:"+itoa(relayPort)+relay.Path)

	// The relay process admits a member and refuses a key it does not know.
	pin := pinnedTLS(t, fingerprint)
	known := enrollKey(t, ctx, replica)
	for _, tc := range []struct {
		what string
		k    key.Private
		want bool
	}{{"an enrolled node's key", known, true}, {"a key it does not know", mustNewKey(t), false}} {
		rc, err := relay.NewClient(relay.ClientConfig{URL: "https://127.0.0.1:" + itoa(relayPort) + relay.Path, PrivateKey: tc.k, TLS: pin})
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(20 * time.Second); !rc.Connected() && rc.Err() == nil; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the relay process neither admitted nor refused a key in 20 s; its log:\n%s", relayProc)
			}
		}
		if rc.Connected() != tc.want {
			t.Errorf("relay process, %s: connected %v, want %v (err %v)", tc.what, rc.Connected(), tc.want, rc.Err())
		}
		rc.Close()
	}

	// The node cannot reach the relay process.
	nft(t, gpuNS, "add table inet moat_relayproc_block\n"+
		"add chain inet moat_relayproc_block out { type filter hook output priority 0; policy accept; }\n"+
		"add rule inet moat_relayproc_block out ip daddr "+relayProcUL.Addr().String()+" drop\n")
	gpu := startE2EChild(t, gpuNS, tunChildConfig{Role: "gpu", Coordinator: coordURL, Fingerprint: fingerprint, Debug: debug,
		EnrollKey: replica.EnrollKey(t, "tag:gpu"), StateDir: t.TempDir(), Endpoint: netip.AddrPortFrom(tunGPUUL.Addr(), tunWGPort), Lockdown: true})
	var ready gpuReady
	if err := json.Unmarshal([]byte(gpu.Expect(t, "ready ", 30*time.Second)), &ready); err != nil {
		t.Fatal(err)
	}

	deviceID, ask := relayedLaptop(t, ctx, laptopNS, replica, coordURL, fingerprint, ready.Node, debug)
	r := ask("chat")
	if r.Err != "" || r.Status != http.StatusOK || !r.Chunks || r.Path != engine.PathRelay || !strings.HasPrefix(r.Relay, relayURL) {
		t.Fatalf("laptop on the relay process, node on the coordinator's relay: %+v; want a whole answer through %s; the relay process's log:\n%s", r, relayURL, relayProc)
	}
	t.Logf("a streamed answer from the relay process across the mesh to the coordinator's relay in %.2fs", r.Seconds)
	// The node asks all its relays as soon as its netmap names them and
	// moves within a probe's 2 s; found only once its first relay had
	// been down for 2 s, the handshake lost meanwhile waited WireGuard's
	// 5 s (6.1–6.3 s measured).
	if r.Seconds > relayProcFirstAnswer.Seconds() {
		t.Errorf("first answer after %.2fs, want at most %v", r.Seconds, relayProcFirstAnswer)
	}
	waitAudit(t, replica, 1)

	revokeAndWaitCut(t, replica, deviceID, ask)
}

// buildCoordinator builds moat-coordinator into a temporary directory.
func buildCoordinator(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/moatmesh/moat/cmd/moat-coordinator")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "moat-coordinator")
}

// syncBuffer is a process's output, safe to read while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRelayProcess runs `moat-coordinator relay ARGS` in ns, with the
// seal key in its environment, until the test ends, and waits until it
// listens. The returned buffer holds its output.
func startRelayProcess(t *testing.T, ctx context.Context, ns *netns.NS, bin string, sealKey [32]byte, args ...string) *syncBuffer {
	t.Helper()
	out := new(syncBuffer)
	cmd := ns.Command(ctx, bin, append([]string{"relay"}, args...)...)
	cmd.Env = append(os.Environ(), "MOAT_SEAL_KEY="+hex.EncodeToString(sealKey[:]))
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() || os.Getenv("MOAT_TEST_LOG") != "" {
			t.Logf("the relay process's output:\n%s", out)
		}
	})
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(out.String(), "moat-coordinator relay listening"); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			t.Fatalf("the relay process exited: %s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay process does not listen after 30 s: %s", out)
		}
	}
	return out
}

// forward accepts on ln until the test ends and joins each connection to
// one dialled to addr, from the namespace ns (nil: this process's).
func forward(t *testing.T, ln net.Listener, ns *netns.NS, addr string) {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				dial := func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }
				var d net.Conn
				var err error
				if ns == nil {
					d, err = dial()
				} else {
					d, err = openIn(ns, dial)
				}
				if err != nil {
					return
				}
				defer d.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(d, c); done <- struct{}{} }()
				go func() { io.Copy(c, d); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

// pinnedTLS accepts exactly the certificate with fingerprint, as members
// pinning the coordinator do.
func pinnedTLS(t *testing.T, fingerprint string) *tls.Config {
	t.Helper()
	c, err := control.New(control.Config{URL: "https://127.0.0.1", Fingerprint: fingerprint})
	if err != nil {
		t.Fatal(err)
	}
	return c.TLSConfig()
}

// enrollKey enrolls a node with a new key at c and returns the key.
func enrollKey(t *testing.T, ctx context.Context, c *coordtest.Coord) key.Private {
	t.Helper()
	ctl, err := control.New(control.Config{URL: c.URL})
	if err != nil {
		t.Fatal(err)
	}
	k := mustNewKey(t)
	if _, err := ctl.Enroll(ctx, wire.EnrollRequest{Version: wire.Version, AuthKey: wire.Secret(c.EnrollKey(t, "tag:gpu")), Key: k.Public(), Hostname: "probe"}); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustNewKey(t *testing.T) key.Private {
	t.Helper()
	k, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func itoa(n int) string { return strconv.Itoa(n) }
