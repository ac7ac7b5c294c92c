package relay

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// freezer forwards TCP connections to addr. freeze makes the connections
// open at that moment go silent both ways, without closing them (a
// relay's host gone, a middlebox dropping the flow); later connections
// are forwarded again.
type freezer struct {
	ln       net.Listener
	accepted atomic.Int32
	mu       sync.Mutex
	frozen   []*atomic.Bool
}

func newFreezer(t *testing.T, addr string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			f.accepted.Add(1)
			off := new(atomic.Bool)
			f.mu.Lock()
			f.frozen = append(f.frozen, off)
			f.mu.Unlock()
			t.Cleanup(func() { c.Close(); up.Close() })
			go pump(up, c, off)
			go pump(c, up, off)
		}
	}()
	return f
}

// pump copies from src to dst until either fails, dropping what it reads
// while off is set.
func pump(dst io.Writer, src io.Reader, off *atomic.Bool) {
	b := make([]byte, 32<<10)
	for {
		n, err := src.Read(b)
		if n > 0 && !off.Load() {
			if _, werr := dst.Write(b[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, off := range f.frozen {
		off.Store(true)
	}
}

// TestClientLeavesASilentRelay: a healthy idle relay is pinged and kept;
// one that goes silent without closing is dropped within a ping's wait
// and connected to again on a new connection, which carries packets.
func TestClientLeavesASilentRelay(t *testing.T) {
	defer func(b, i, w, k time.Duration) { liveBusy, liveIdle, livePingWait, liveTick = b, i, w, k }(liveBusy, liveIdle, livePingWait, liveTick)
	liveBusy, liveIdle, livePingWait, liveTick = 300*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 100*time.Millisecond

	a, b := newKey(t), newKey(t)
	relayURL, conf := testRelay(t, a.Public(), b.Public())
	host := strings.TrimPrefix(strings.TrimSuffix(relayURL, Path), "https://")
	f := newFreezer(t, host)
	ca := client(t, "https://"+f.ln.Addr().String()+Path, conf, a)
	cb := client(t, relayURL, conf, b)
	waitFor(t, "both connected", func() bool { return ca.Connected() && cb.Connected() })

	time.Sleep(2 * time.Second) // idle: pinged a few times, answered
	if !ca.Connected() || f.accepted.Load() != 1 {
		t.Fatalf("an idle, healthy relay: connected %v after %d connections, want 1", ca.Connected(), f.accepted.Load())
	}

	f.freeze()
	began := time.Now()
	waitFor(t, "the silent relay dropped", func() bool { return !ca.Connected() || f.accepted.Load() > 1 })
	t.Logf("silent relay left after %v", time.Since(began).Round(time.Millisecond))
	if d := time.Since(began); d > liveIdle+livePingWait+time.Second {
		t.Errorf("left after %v, want within %v", d, liveIdle+livePingWait+time.Second)
	}
	waitFor(t, "connected again on a new connection", func() bool { return ca.Connected() && f.accepted.Load() > 1 })
	sendUntil(t, cb, ca, a.Public(), "after the silence")
}
