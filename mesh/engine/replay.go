package engine

import (
	"slices"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/moatmesh/moat/mesh/key"
)

// First contact. A member that has just joined, or just appeared in
// another's netmap, is known to one side before the other: netmaps reach
// members one at a time. The side that knows sends a handshake
// initiation; the other drops it (wireguard-go knows no such peer, and the
// bind takes nothing from the relay from a stranger), and WireGuard tries
// again only after REKEY_TIMEOUT, 5 s. Dial's renewal of an unanswered
// connection (staleSessionAfter) covers the engine's own connections
// after 500 ms, but not a program's over TUN.
//
// So the bind keeps the initiations of the last replayWithin that got no
// response, and when Reconfig adds peers it hands them to wireguard-go
// again: the new peer's is answered at once. WireGuard authenticates each
// as it did the first time, and rejects one whose timestamp is not newer
// than the last it accepted from that peer, so a replay can do no more
// than the first delivery would have.

const (
	// replayWithin is how old an initiation may be to be replayed: the
	// initiator retries after 5 s on its own.
	replayWithin = 5 * time.Second
	// maxReplay bounds the initiations from UDP replayed at once (the most
	// recent), and the strangers the relay's are kept for.
	maxReplay = 16
)

// heldMsg is a WireGuard message and the endpoint it came from.
type heldMsg struct {
	msg []byte
	ep  conn.Endpoint // a UDP address, or the peer's endpoint for the relay
	at  time.Time
}

// holdStrangerLocked keeps an initiation the relay brought from k, which
// is no peer of this member (yet).
func (b *pathBind) holdStrangerLocked(k key.Public, msg []byte, now time.Time) {
	if wgType(msg) != wgInitiation || len(msg) != wgInitiationSz {
		return
	}
	if len(b.mu.strangers) >= maxReplay {
		for s, h := range b.mu.strangers {
			if now.Sub(h.at) >= replayWithin {
				delete(b.mu.strangers, s)
			}
		}
		if len(b.mu.strangers) >= maxReplay {
			return // a flood of strangers: the initiator's retry will do
		}
	}
	b.mu.strangers[k] = heldMsg{msg: append([]byte(nil), msg...), at: now}
}

// replayInitiations hands wireguard-go again the recent initiations it did
// not answer: those from UDP (the sender is known only to wireguard-go)
// and those the relay brought from the peers in added.
func (b *pathBind) replayInitiations(added []key.Public) {
	if len(added) == 0 {
		return
	}
	now := time.Now()
	var out []heldMsg
	b.mu.Lock()
	for _, in := range b.mu.inits {
		if !in.answered && in.msg != nil && now.Sub(in.at) < replayWithin {
			out = append(out, heldMsg{msg: in.msg, ep: in.ep, at: in.at})
		}
	}
	slices.SortFunc(out, func(x, y heldMsg) int { return y.at.Compare(x.at) })
	out = out[:min(len(out), maxReplay)]
	for _, k := range added {
		h, ok := b.mu.strangers[k]
		p := b.mu.peers[k]
		if !ok || p == nil {
			continue
		}
		delete(b.mu.strangers, k)
		if now.Sub(h.at) < replayWithin {
			out = append(out, heldMsg{msg: h.msg, ep: p.ep, at: h.at})
		}
	}
	b.mu.Unlock()
	for _, h := range out {
		select {
		case b.replays <- h:
		default: // the receiver is behind: the initiator's retry will do
		}
	}
}

// putPacket puts msg, from ep, in the batch at n (unless it does not fit)
// and returns the batch's new length.
func putPacket(msg []byte, ep conn.Endpoint, bufs [][]byte, sizes []int, eps []conn.Endpoint, n int) int {
	if len(msg) > len(bufs[n]) {
		return n
	}
	sizes[n] = copy(bufs[n], msg)
	eps[n] = ep
	return n + 1
}

// heldFrom reports whether an initiation the relay brought from k is held
// (for tests).
func (b *pathBind) heldFrom(k key.Public) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.mu.strangers[k]
	return ok
}
