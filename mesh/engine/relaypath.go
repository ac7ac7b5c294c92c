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

// holdInitLocked keeps a handshake initiation sent before the relay was
// up, so that relayUp can send it as soon as it is: otherwise a peer
// reachable only through the relay waits WireGuard's 5 s for the retry.
func (b *pathBind) holdInitLocked(p *peerPath, bufs [][]byte, now time.Time) {
	for _, buf := range bufs {
		if wgType(buf) == wgInitiation && len(buf) == wgInitiationSz {
			p.heldInit, p.heldInitAt = append(p.heldInit[:0], buf...), now
		}
	}
}

// relayUp sends the initiations held while the relay was connecting, to
// peers with no direct path.
func (b *pathBind) relayUp(rc *relay.Client) {
	now := time.Now()
	type held struct {
		to  key.Public
		msg []byte
	}
	var out []held
	b.mu.Lock()
	for k, p := range b.mu.peers {
		if p.heldInit != nil && now.Sub(p.heldInitAt) < 5*time.Second && !p.directFresh(now) {
			out = append(out, held{k, p.heldInit})
		}
		p.heldInit = nil
	}
	b.mu.Unlock()
	for _, h := range out {
		rc.Send(h.to, h.msg)
	}
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
				n = takeReplay(h, bufs, sizes, eps, n)
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
	} else {
		b.holdStrangerLocked(pkt.From, pkt.Data, time.Now())
	}
	b.mu.Unlock()
	if p == nil || len(pkt.Data) > len(bufs[n]) {
		return n
	}
	sizes[n] = copy(bufs[n], pkt.Data)
	eps[n] = p.ep
	return n + 1
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
	go b.forward(rc)
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

// forward moves rc's packets to the relay receiver until rc is closed.
func (b *pathBind) forward(rc *relay.Client) {
	for pkt := range rc.Recv() {
		select {
		case b.relayIn <- pkt:
		default: // the device is not reading (closed, or behind): drop
			pkt.Release()
		}
	}
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
