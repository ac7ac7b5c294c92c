package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// testRelay serves a relay over TLS that admits the keys in known.
func testRelay(t *testing.T, known ...key.Public) (url string, tlsConf *tls.Config) {
	t.Helper()
	var mu sync.Mutex
	_, url, tlsConf = serveRelay(t, ServerConfig{Admit: func(_ context.Context, k key.Public) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range known {
			if o.Equal(k) {
				return true
			}
		}
		return false
	}})
	return url, tlsConf
}

// serveRelay serves a relay made with cfg over TLS.
func serveRelay(t *testing.T, cfg ServerConfig) (s *Server, url string, tlsConf *tls.Config) {
	t.Helper()
	s, ts := startServer(t, cfg, httptest.NewTLSServer)
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return s, ts.URL + Path, &tls.Config{RootCAs: pool, ServerName: "example.com"}
}

// servePlainRelay serves a relay over plain HTTP.
func servePlainRelay(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	s, ts := startServer(t, cfg, httptest.NewServer)
	return s, ts.URL + Path
}

func startServer(t *testing.T, cfg ServerConfig, serve func(http.Handler) *httptest.Server) (*Server, *httptest.Server) {
	t.Helper()
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	ts := serve(mux)
	t.Cleanup(func() { ts.Close(); s.Close() })
	return s, ts
}

func newKey(t *testing.T) key.Private {
	k, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func client(t *testing.T, url string, conf *tls.Config, k key.Private) *Client {
	c, err := NewClient(ClientConfig{URL: url, PrivateKey: k, TLS: conf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two known members exchange packets over the relay; a third, unknown
// key is refused and neither sends nor receives.
func TestRelayCarriesPacketsBetweenKnownMembersOnly(t *testing.T) {
	a, b, stranger := newKey(t), newKey(t), newKey(t)
	url, conf := testRelay(t, a.Public(), b.Public())
	ca, cb, cs := client(t, url, conf, a), client(t, url, conf, b), client(t, url, conf, stranger)
	waitFor(t, "both members connected", func() bool { return ca.Connected() && cb.Connected() })

	// Send until b has it: b's registration at the relay may lag a's.
	sendUntil(t, ca, cb, b.Public(), "hello")

	// The stranger's connection is refused every time it tries.
	waitFor(t, "the stranger refused", func() bool { return cs.Err() != nil })
	if cs.Connected() {
		t.Fatal("the relay admitted a key it does not know")
	}
	if err := cs.Send(a.Public(), []byte("x")); err != ErrNotConnected {
		t.Fatalf("stranger's Send = %v, want ErrNotConnected", err)
	}
}

// A wrong certificate is refused: the client does not connect.
func TestRelayClientVerifiesTheCertificate(t *testing.T) {
	a := newKey(t)
	url, _ := testRelay(t, a.Public())
	c := client(t, url, &tls.Config{ServerName: "example.com"}, a) // system roots only
	waitFor(t, "the connection refused", func() bool { return c.Err() != nil })
	if c.Connected() {
		t.Fatal("connected to a relay whose certificate does not verify")
	}
}

// connectProxy is an HTTP proxy that answers CONNECT only, counting the
// tunnels it opened.
func connectProxy(t *testing.T) (*url.URL, *atomic.Int32) {
	var tunnels atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
			return
		}
		up, err := net.Dial("tcp", r.Host)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			up.Close()
			return
		}
		tunnels.Add(1)
		c.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		go func() { io.Copy(up, c); up.Close() }()
		go func() { io.Copy(c, up); c.Close() }()
	}))
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	return u, &tunnels
}

// A member whose only way out is an HTTP CONNECT proxy reaches the relay
// through it, over TLS inside the tunnel.
func TestRelayThroughConnectProxy(t *testing.T) {
	a, b := newKey(t), newKey(t)
	relayURL, conf := testRelay(t, a.Public(), b.Public())
	proxy, tunnels := connectProxy(t)
	ca, err := NewClient(ClientConfig{URL: relayURL, PrivateKey: a, TLS: conf, Proxy: proxy})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ca.Close() })
	cb := client(t, relayURL, conf, b)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })
	if tunnels.Load() == 0 {
		t.Fatal("the client connected without using the proxy")
	}
	sendUntil(t, ca, cb, b.Public(), "through the proxy")
}

// sendUntil sends msg from one client to another (whose key is to) until
// it arrives: the receiver's registration at the relay, or the relays'
// mesh, may lag the sender's connection.
func sendUntil(t *testing.T, from, dst *Client, to key.Public, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := from.Send(to, []byte(msg)); err != nil && err != ErrNotConnected {
			t.Fatal(err)
		}
		select {
		case p := <-dst.Recv():
			if !p.From.Equal(from.cfg.PrivateKey.Public()) {
				t.Fatalf("got %q from %s, want %q from %s", p.Data, p.From.Short(), msg, from.cfg.PrivateKey.Public().Short())
			}
			if string(p.Data) == msg {
				return
			}
			// A late copy of an earlier message this sender repeated.
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q never arrived", msg)
		}
	}
}

// A batch goes out in one write and arrives whole, in order.
func TestSendBatch(t *testing.T) {
	a, b := newKey(t), newKey(t)
	url, conf := testRelay(t, a.Public(), b.Public())
	ca, cb := client(t, url, conf, a), client(t, url, conf, b)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })
	sendUntil(t, ca, cb, b.Public(), "ready")
	batch := [][]byte{[]byte("one"), []byte("two"), []byte("three")}
	if err := ca.SendBatch(b.Public(), batch); err != nil {
		t.Fatal(err)
	}
	for _, want := range batch {
		var got string
		for got == "" || got == "ready" { // skip repeats of sendUntil's, sent before the first arrived
			select {
			case p := <-cb.Recv():
				got = string(p.Data)
			case <-time.After(10 * time.Second):
				t.Fatalf("%q never arrived", want)
			}
		}
		if got != string(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if held := ca.conn.Load(); held.corked != 0 || len(held.held) != 0 {
		t.Fatalf("the connection stayed corked: %d, %d bytes held", held.corked, len(held.held))
	}
}

// The relay queues two WireGuard batches per member, not DERP's 32
// packets, unless the operator set DERP's own variable.
func TestSendQueueDepth(t *testing.T) {
	if v, set := os.LookupEnv(sendQueueDepthEnv); set && v != sendQueueDepth {
		t.Skipf("%s=%s set outside the test", sendQueueDepthEnv, v)
	}
	testRelay(t)
	if got := os.Getenv(sendQueueDepthEnv); got != sendQueueDepth {
		t.Fatalf("%s = %q after starting a relay, want %s", sendQueueDepthEnv, got, sendQueueDepth)
	}
}

// A client given a channel delivers into it, and Close leaves it open
// for whatever else feeds it (the engine's next relay client).
func TestClientDeliversToItsConfiguredChannel(t *testing.T) {
	a, b := newKey(t), newKey(t)
	url, conf := testRelay(t, a.Public(), b.Public())
	shared := make(chan Packet, 16)
	cb, err := NewClient(ClientConfig{URL: url, PrivateKey: b, TLS: conf, Recv: shared})
	if err != nil {
		t.Fatal(err)
	}
	ca := client(t, url, conf, a)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })
	sendUntil(t, ca, cb, b.Public(), "into the shared channel")
	if err := cb.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case shared <- Packet{}: // still open: a send on a closed channel panics
	default:
		t.Fatal("the shared channel is full")
	}
}
