package engine

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// A member that has just joined is known to one side first: the side
// that knows sends a handshake initiation, which the other drops as from
// no peer of its own. When the other side's netmap then adds the sender,
// the first answer must not wait WireGuard's 5 s retry. The request
// goes as a program's over TUN does, without Dial's renewal of an
// unanswered connection (staleSessionAfter).
func TestFirstContactNetmapOneSideFirst(t *testing.T) {
	for _, relayed := range []bool{false, true} {
		name := "direct"
		if relayed {
			name = "relayed"
		}
		t.Run(name, func(t *testing.T) {
			dropped := &logWatch{substr: "Received invalid initiation message", seen: make(chan struct{})}
			a, b := newMember(t, 1), newMemberLog(t, 2, slog.New(dropped))
			var eps = unreachable
			if !relayed {
				eps = nil
				b.apply(t, 1) // its addresses, no peers yet
			} else {
				startRelay(t, a, b)
				b.applyEndpoints(t, 1, eps)
			}
			b.serveHTTP(t, "b")
			a.applyEndpoints(t, 1, eps, b) // a knows b; b does not know a

			type answer struct {
				got string
				err error
				at  time.Time
			}
			done := make(chan answer, 1)
			go func() {
				c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
					DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						return a.eng.backend.dial(ctx, network, netip.MustParseAddrPort(addr))
					},
				}}
				got, err := get(c, b.addrs[0])
				done <- answer{got, err, time.Now()}
			}()
			// Wait until b dropped a's initiation: wireguard-go's (UDP) or
			// the bind's (the relay's, from no peer).
			deadline := time.Now().Add(10 * time.Second)
			for !dropped.saw() && !b.eng.bind.heldFrom(a.eng.PublicKey()) {
				if time.Now().After(deadline) {
					t.Fatal("b never dropped a's handshake initiation")
				}
				time.Sleep(5 * time.Millisecond)
			}
			added := time.Now()
			b.applyEndpoints(t, 2, eps, a) // b's netmap now has a
			ans := <-done
			if ans.err != nil || !strings.HasPrefix(ans.got, "b saw 100.64.0.1:") {
				t.Fatalf("answer %q, %v", ans.got, ans.err)
			}
			if took := ans.at.Sub(added); took > 1500*time.Millisecond {
				t.Fatalf("first answer %v after b added a, want at most 1.5 s (WireGuard's retry is 5 s)", took)
			} else {
				t.Logf("first answer %v after b added a", took)
			}
		})
	}
}

// logWatch is a log handler that notes a message containing substr.
type logWatch struct {
	substr string
	once   sync.Once
	seen   chan struct{}
}

func (w *logWatch) saw() bool {
	select {
	case <-w.seen:
		return true
	default:
		return false
	}
}

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *logWatch) WithGroup(string) slog.Handler            { return w }
func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, w.substr) {
		w.once.Do(func() { close(w.seen) })
	}
	return nil
}
