package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// testRelay serves a relay over TLS that admits the keys in known.
func testRelay(t *testing.T, known ...key.Public) (url string, tlsConf *tls.Config) {
	t.Helper()
	var mu sync.Mutex
	s, err := NewServer(func(_ context.Context, k key.Public) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, o := range known {
			if o.Equal(k) {
				return true
			}
		}
		return false
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	ts := httptest.NewTLSServer(mux)
	t.Cleanup(func() { ts.Close(); s.Close() })
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return ts.URL + Path, &tls.Config{RootCAs: pool, ServerName: "example.com"}
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
	got := make(chan Packet, 1)
	go func() { got <- <-cb.Recv() }()
	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case p := <-got:
			if !p.From.Equal(a.Public()) || string(p.Data) != "hello" {
				t.Fatalf("b got %q from %s, want hello from a", p.Data, p.From.Short())
			}
			done = true
		case <-tick.C:
			if err := ca.Send(b.Public(), []byte("hello")); err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("b never received a's packet")
		}
	}

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
