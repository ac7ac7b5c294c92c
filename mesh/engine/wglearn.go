package engine

import (
	"encoding/binary"
	"net/netip"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/moatmesh/moat/mesh/key"
)

// Learning a peer's address from WireGuard's own messages, for peers
// that send no path pings: stock WireGuard apps (`moat wg-config`), whose
// address wireguard-go's roaming followed before the bind took the path
// choice over. It uses WireGuard's session indices, which travel in the
// clear:
//
//   - a handshake initiation from address X carries the initiator's
//     index I; when wireguard-go answers it for peer P (a response to
//     P whose receiver index is I), it has authenticated the initiation,
//     so P is at X;
//   - every handshake message this member sends names its own index for
//     the session, and data from the peer carries that index: data from
//     a new address with it is the peer roaming, as wireguard-go's own
//     roaming would follow.

// WireGuard message types and the sizes of the handshake messages.
const (
	wgInitiation   = 1
	wgResponse     = 2
	wgData         = 4
	wgInitiationSz = 148
	wgResponseSz   = 92
	maxLearnIdx    = 4096 // bound on the index tables
	initiationTTL  = 10 * time.Second
)

type seenInitiation struct {
	from     netip.AddrPort
	at       time.Time
	msg      []byte        // the message, to hand wireguard-go again (replay.go)
	ep       conn.Endpoint // where it came from
	answered bool          // wireguard-go sent a response to it
}

// wgType returns a WireGuard message's type, or 0.
func wgType(b []byte) byte {
	if len(b) < 16 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return 0
	}
	return b[0]
}

func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }

// noteSentLocked learns from the handshake messages sent to peer k.
func (b *pathBind) noteSentLocked(k key.Public, p *peerPath, bufs [][]byte, now time.Time) {
	for _, buf := range bufs {
		switch wgType(buf) {
		case wgInitiation:
			if len(buf) == wgInitiationSz {
				b.indexLocked(le32(buf[4:8]), k)
				p.initAt = now
				b.retryFirstContactLocked(k, p, now)
			}
		case wgResponse:
			if len(buf) != wgResponseSz {
				continue
			}
			b.indexLocked(le32(buf[4:8]), k)
			if in, ok := b.mu.inits[le32(buf[8:12])]; ok {
				in.answered = true
				b.mu.inits[le32(buf[8:12])] = in
				if now.Sub(in.at) < initiationTTL {
					p.wgAddr, p.wgAt = in.from, now
				}
			}
		}
	}
}

func (b *pathBind) indexLocked(idx uint32, k key.Public) {
	if len(b.mu.index) >= maxLearnIdx {
		clear(b.mu.index) // live sessions are relearned at their next handshake
	}
	b.mu.index[idx] = k
}

// noteReceived learns from a WireGuard message received from src (at
// endpoint ep).
func (b *pathBind) noteReceived(msg []byte, ep conn.Endpoint, src netip.AddrPort) {
	switch wgType(msg) {
	case wgInitiation:
		if len(msg) != wgInitiationSz {
			return
		}
		now := time.Now()
		b.mu.Lock()
		if len(b.mu.inits) >= maxLearnIdx {
			for i, in := range b.mu.inits {
				if now.Sub(in.at) >= initiationTTL {
					delete(b.mu.inits, i)
				}
			}
			if len(b.mu.inits) >= maxLearnIdx {
				clear(b.mu.inits)
			}
		}
		b.mu.inits[le32(msg[4:8])] = seenInitiation{from: src, at: now, msg: append([]byte(nil), msg...), ep: ep}
		b.mu.Unlock()
	case wgResponse:
		if len(msg) != wgResponseSz {
			return
		}
		b.mu.Lock()
		if k, ok := b.mu.index[le32(msg[8:12])]; ok {
			if p := b.mu.peers[k]; p != nil {
				p.answeredAt = time.Now()
			}
		}
		b.mu.Unlock()
	case wgData:
		b.mu.Lock()
		if k, ok := b.mu.index[le32(msg[4:8])]; ok {
			if p := b.mu.peers[k]; p != nil && p.wgAddr.IsValid() && p.wgAddr != src {
				p.wgAddr, p.wgAt = src, time.Now()
			}
		}
		b.mu.Unlock()
	}
}
