package relay

import (
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/internal/tcpproxy"
)

// TestClientLeavesASilentRelay: a healthy idle relay is pinged and kept;
// one that goes silent without closing is dropped within a ping's wait
// and connected to again on a new connection, which carries packets.
func TestClientLeavesASilentRelay(t *testing.T) {
	busy, idle, wait, tick := liveBusy, liveIdle, livePingWait, liveTick
	// Put back after the clients' cleanups (which run first: they are
	// registered later) have stopped their watches.
	t.Cleanup(func() { liveBusy, liveIdle, livePingWait, liveTick = busy, idle, wait, tick })
	liveBusy, liveIdle, livePingWait, liveTick = 300*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 100*time.Millisecond

	a, b := newKey(t), newKey(t)
	relayURL, conf := testRelay(t, a.Public(), b.Public())
	host := strings.TrimPrefix(strings.TrimSuffix(relayURL, Path), "https://")
	f := tcpproxy.Start(t, host)
	ca := client(t, "https://"+f.Addr()+Path, conf, a)
	cb := client(t, relayURL, conf, b)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })

	time.Sleep(2 * time.Second) // idle: pinged a few times, answered
	if !ca.Connected() || f.Accepted() != 1 {
		t.Fatalf("an idle, healthy relay: connected %v after %d connections, want 1", ca.Connected(), f.Accepted())
	}

	f.Freeze()
	began := time.Now()
	waitFor(t, "the silent relay dropped", func() bool { return !ca.Connected() || f.Accepted() > 1 })
	t.Logf("silent relay left after %v", time.Since(began).Round(time.Millisecond))
	if d := time.Since(began); d > liveIdle+livePingWait+time.Second {
		t.Errorf("left after %v, want within %v", d, liveIdle+livePingWait+time.Second)
	}
	waitFor(t, "connected again on a new connection", func() bool { return ca.Connected() && f.Accepted() > 1 })
	sendUntil(t, cb, ca, a.Public(), "after the silence")
}
