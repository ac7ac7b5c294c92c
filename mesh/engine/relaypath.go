package engine

import (
	"net"
	"net/url"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// The relay side of pathBind: its connection, what it receives, and the
// handshakes held while it connects.

// relayInLen is how many packets from the relay wait for wireguard-go
// before more are dropped (relay.ClientConfig.Recv). The relay delivers
// a sender's burst (a TCP window, in WireGuard batches of up to 128
// packets) as fast as it reads it, faster than this member decrypts it:
// with the relay's queue deepened (relay's sendQueueDepth), 512 here
// dropped 1,000–3,000 packets a second of meshbench's relayed TUN
// transfer (the inner TCP retransmits each one and slows down), 2048
// fewer than 10 in 5 s. Each waiting packet holds a 2 KiB buffer: 4 MiB
// at most, only while this member is behind.
const relayInLen = 2048

// handshakePending reports whether an initiation to the peer went
// unanswered in the last 5 s (WireGuard's REKEY_TIMEOUT, after which it
// tries again on its own).
func (p *peerPath) handshakePending(now time.Time) bool {
	return !p.initAt.IsZero() && now.Sub(p.initAt) < 5*time.Second && p.answeredAt.Before(p.initAt)
}

// relayUp starts a new handshake with the peers without a direct path
// whose handshake is pending: the initiation went before the relay was
// up, or its response came back through the relay before it was (the
// peer answered a first initiation that reached it over UDP, where
// nothing goes back, such as a node whose lockdown does not yet know this
// member's address). A copy of the first initiation would not do: the
// peer rejects it as a replay. Otherwise the peer would wait WireGuard's
// 5 s for the retry.
func (b *pathBind) relayUp(*relay.Client) {
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for k, p := range b.mu.peers {
		if p.handshakePending(now) && !p.directFresh(now) {
			b.renewLater(k, p.initAt)
		}
	}
}

// renewGap is the least time between a pending initiation and the new
// one that replaces it: WireGuard drops an initiation that comes within
// 20 ms of the last it took from the same peer (a flood), which two sent
// over different paths could otherwise be.
const renewGap = 100 * time.Millisecond

// renewLater starts a new handshake with k renewGap after the initiation
// sent at initAt, unless by then it was answered, a direct path works or
// another initiation went.
func (b *pathBind) renewLater(k key.Public, initAt time.Time) {
	b.renewAt(k, initAt.Add(renewGap), func(p *peerPath, now time.Time) bool {
		return p.initAt.Equal(initAt) && p.handshakePending(now) && !p.directFresh(now)
	})
}

// firstContactRetry is when a first handshake with a peer that got no
// answer is tried once more, rather than at WireGuard's 5 s: its response
// or the initiation may have found no way yet (the peer's relay not yet
// meshed with this member's, its netmap not yet naming this member).
const firstContactRetry = time.Second

// retryFirstContactLocked schedules the one early retry of the first
// handshake with p (key k).
func (b *pathBind) retryFirstContactLocked(k key.Public, p *peerPath, now time.Time) {
	if p.firstRetry || !p.answeredAt.IsZero() {
		return
	}
	p.firstRetry = true
	b.renewAt(k, now.Add(firstContactRetry), func(p *peerPath, now time.Time) bool {
		return p.answeredAt.IsZero() && p.handshakePending(now) && !p.directFresh(now) && now.Sub(p.initAt) >= renewGap
	})
}

// renewAt starts a new handshake with k at t if due says so then.
func (b *pathBind) renewAt(k key.Public, t time.Time, due func(*peerPath, time.Time) bool) {
	time.AfterFunc(max(time.Until(t), 0), func() {
		b.mu.Lock()
		p := b.mu.peers[k]
		ok := p != nil && due(p, time.Now())
		b.mu.Unlock()
		if ok && b.renew != nil {
			b.renew(k)
		}
	})
}

// receiveRelay is the receiver for packets from the relay, and for the
// initiations handed to wireguard-go again (replay.go): it waits for one
// and takes those already queued behind it, up to a batch.
func (b *pathBind) receiveRelay(open chan struct{}) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		n := 0
		for n == 0 {
			select {
			case pkt := <-b.relayIn:
				n = b.takeRelayed(pkt, bufs, sizes, eps, n)
			case h := <-b.replays:
				n = putPacket(h.msg, h.ep, bufs, sizes, eps, n)
			case <-open:
				return 0, net.ErrClosed
			}
		}
		for n < len(bufs) {
			select {
			case pkt := <-b.relayIn:
				n = b.takeRelayed(pkt, bufs, sizes, eps, n)
			default:
				return n, nil
			}
		}
		return n, nil
	}
}

// takeRelayed puts pkt in the batch at n, unless it is not from a peer of
// this member (an initiation from one is held: replay.go), and returns
// the batch's new length.
func (b *pathBind) takeRelayed(pkt relay.Packet, bufs [][]byte, sizes []int, eps []conn.Endpoint, n int) int {
	defer pkt.Release()
	b.mu.Lock()
	p := b.mu.peers[pkt.From]
	if p != nil {
		p.speaksMoat = true
		if wgType(pkt.Data) == wgResponse {
			p.answeredAt = time.Now()
		}
	} else {
		b.holdStrangerLocked(pkt.From, pkt.Data, time.Now())
	}
	b.mu.Unlock()
	if p == nil {
		return n
	}
	return putPacket(pkt.Data, p.ep, bufs, sizes, eps, n)
}

// setRelay connects to the relay at cfg.URL, replacing the current one;
// an empty URL disconnects. The same configuration again changes nothing.
func (b *pathBind) setRelay(cfg relay.ClientConfig) error {
	b.mu.Lock()
	if b.mu.relay != nil && sameRelay(b.mu.relayCfg, cfg) {
		b.mu.Unlock()
		return nil
	}
	old := b.mu.relay
	b.mu.relay, b.mu.relayCfg = nil, cfg
	b.mu.Unlock()
	if old != nil {
		// Outside the lock: Close waits for the client's goroutine, which
		// may be calling relayUp.
		old.Close()
	}
	if cfg.URL == "" {
		return nil
	}
	cfg.OnConnect = b.relayUp
	cfg.Recv = b.relayIn
	rc, err := relay.NewClient(cfg)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.mu.relay != nil || !sameRelay(b.mu.relayCfg, cfg) {
		// Another setRelay ran meanwhile; its choice stands.
		b.mu.Unlock()
		rc.Close()
		return nil
	}
	b.mu.relay = rc
	b.mu.Unlock()
	return nil
}

func sameRelay(a, b relay.ClientConfig) bool {
	return a.URL == b.URL && a.TLS == b.TLS && urlString(a.Proxy) == urlString(b.Proxy)
}

func urlString(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.String()
}

// closeRelay disconnects from the relay for good.
func (b *pathBind) closeRelay() { b.setRelay(relay.ClientConfig{}) }

// relayState returns the relay's URL and whether it is connected.
func (b *pathBind) relayState() (string, bool, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mu.relay == nil {
		return "", false, nil
	}
	return b.mu.relay.URL(), b.mu.relay.Connected(), b.mu.relay.Err()
}
