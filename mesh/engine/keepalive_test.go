package engine

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestDialedConnFailsWhenPeerVanishes: a connection waiting to read from
// a peer whose engine disappears (no FIN, no RST: its host is gone) ends
// with an error within the keepalive bound, and a live but silent peer
// keeps its connection through the probes.
func TestDialedConnFailsWhenPeerVanishes(t *testing.T) {
	a, b, c := newMember(t, 1), newMember(t, 2), newMember(t, 3)
	a.apply(t, 1, b, c)
	b.apply(t, 1, a)
	c.apply(t, 1, a)
	silent := func(m *member) net.Conn {
		t.Helper()
		ln, err := m.eng.Listen("tcp", ":80")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			if conn, err := ln.Accept(); err == nil {
				t.Cleanup(func() { conn.Close() }) // accepted, never answered
			}
		}()
		conn, err := a.eng.Dial(t.Context(), "tcp", netip.AddrPortFrom(m.addrs[0], 80).String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	gone, alive := silent(b), silent(c)

	ended := make(chan error, 1)
	began := time.Now()
	go func() { _, err := gone.Read(make([]byte, 1)); ended <- err }()
	b.eng.Close() // the peer vanishes without a word

	bound := meshKeepalive.Idle + time.Duration(meshKeepalive.Count+1)*meshKeepalive.Interval + 10*time.Second // slack for a loaded machine
	select {
	case err := <-ended:
		if err == nil {
			t.Fatal("read from a vanished peer returned data")
		}
		t.Logf("read from the vanished peer failed after %v: %v", time.Since(began).Round(time.Millisecond), err)
	case <-time.After(bound):
		t.Fatalf("read from a vanished peer still waits after %v", bound)
	}
	// The live peer answers every probe: its connection, as idle as the
	// other, outlasts the bound and fails only by our own read deadline.
	alive.SetReadDeadline(time.Now().Add(2 * meshKeepalive.Interval))
	if _, err := alive.Read(make([]byte, 1)); err == nil || !isTimeout(err) {
		t.Fatalf("the silent live peer's connection: %v, want only our own read deadline", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
