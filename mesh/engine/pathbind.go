package engine

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"tailscale.com/net/stun"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// Path timing.
const (
	// pingEvery is how often a peer with traffic is pinged on its
	// candidate addresses: to find a direct path while relayed, and to
	// keep proving the direct path while on it.
	pingEvery = 500 * time.Millisecond
	// trustDirect is how long a pong keeps a direct path in use. With
	// pings every half second, three lost pongs in a row move the peer to
	// the relay alone.
	trustDirect = 1750 * time.Millisecond
	// pongWait is how long a ping on the direct path may go unanswered
	// before the path is in doubt, as is a path with no pong for
	// pingEvery + pongWait: packets then go over the relay too (WireGuard
	// drops the second copy), until a pong or trustDirect settles it. The
	// time from UDP blocked to packets relayed is so at most pingEvery +
	// pongWait for a peer with steady traffic, and the first packet after
	// that for one with sparse traffic (a TCP connect's SYNs, 1 s apart).
	pongWait = 250 * time.Millisecond
	// showDirect is how long an idle peer's last proven direct path is
	// shown as its path (a WireGuard session's life).
	showDirect = 3 * time.Minute
	// pingTimeout forgets unanswered pings.
	pingTimeout = 5 * time.Second
)

// pathBind is the engine's conn.Bind. It sends each peer's packets over
// direct UDP when a path ping proved one within trustDirect, and over the
// relay otherwise, and receives from both. Peers are configured in
// wireguard-go with a peerEndpoint (their key) and roaming off, so the
// choice is the bind's alone; without a relay it falls back to the best
// UDP address it knows, as wireguard-go's roaming would.
type pathBind struct {
	udp  *cappedBind
	seal sealer
	log  *slog.Logger

	relayIn chan relay.Packet // from the current relay client
	// renew starts a new handshake with a peer (Engine.renewSession): set
	// once, before the device opens the bind.
	renew   func(key.Public)
	replays chan heldMsg // initiations to hand wireguard-go again (replay.go)
	// onPublic is told of a new public address from STUN (stun.go).
	onPublic atomic.Pointer[func(netip.AddrPort)]

	mu struct {
		sync.Mutex
		peers    map[key.Public]*peerPath
		eps      map[netip.AddrPort]conn.Endpoint // UDP endpoints by address
		relay    *relay.Client
		relayCfg relay.ClientConfig
		index    map[uint32]key.Public     // this member's session indices (wglearn.go)
		inits    map[uint32]seenInitiation // initiations received, by sender index
		// strangers are initiations the relay brought from keys that
		// are no peers (yet), by sender (replay.go).
		strangers map[key.Public]heldMsg
		stun      struct {
			server, public netip.AddrPort
			asked          time.Time
			tx             stun.TxID
		}
		open chan struct{} // closed by Close; nil while closed
	}
}

// peerPath is what the bind knows about reaching one peer.
type peerPath struct {
	ep         *peerEndpoint
	candidates []netip.AddrPort // from the netmap, best first
	learned    netip.AddrPort   // where the peer's last ping came from
	direct     netip.AddrPort   // the address the last pong proved
	directAt   time.Time        // when; zero: never
	// unanswered is when the first ping to direct since its last pong
	// was sent; zero: none outstanding.
	unanswered time.Time
	rtt        time.Duration  // of that pong's ping
	wgAddr     netip.AddrPort // where its WireGuard messages come from (wglearn.go)
	wgAt       time.Time      // when that was learned
	speaksMoat bool           // it pinged, answered a ping or used the relay
	// initAt is when the last handshake initiation to the peer was sent,
	// answeredAt when a handshake response from it last came: a
	// handshake is pending between the two (handshakePending).
	initAt     time.Time
	answeredAt time.Time
	firstRetry bool // the first handshake's early retry is scheduled
	lastPing   time.Time
	pings      map[txID]sentPing
}

type sentPing struct {
	to   netip.AddrPort
	sent time.Time
}

func newPathBind(udp *cappedBind, priv key.Private, log *slog.Logger) *pathBind {
	b := &pathBind{udp: udp, seal: newSealer(priv), log: log, relayIn: make(chan relay.Packet, relayInLen), replays: make(chan heldMsg, maxReplay)}
	b.mu.peers = map[key.Public]*peerPath{}
	b.mu.eps = map[netip.AddrPort]conn.Endpoint{}
	b.mu.index = map[uint32]key.Public{}
	b.mu.inits = map[uint32]seenInitiation{}
	b.mu.strangers = map[key.Public]heldMsg{}
	return b
}

// Open implements conn.Bind: the UDP socket's receivers, filtered of path
// pings, and one receiver for the relay.
func (b *pathBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.udp.Open(port)
	if err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	open := make(chan struct{})
	b.mu.open = open
	b.mu.Unlock()
	for i, fn := range fns {
		fns[i] = b.receiveUDP(fn)
	}
	return append(fns, b.receiveRelay(open)), actual, nil
}

// Close implements conn.Bind. The relay client stays: it belongs to the
// engine (closeRelay), and the device may open the bind again.
func (b *pathBind) Close() error {
	b.mu.Lock()
	if b.mu.open != nil {
		close(b.mu.open)
		b.mu.open = nil
	}
	b.mu.Unlock()
	return b.udp.Close()
}

// SetMark implements conn.Bind.
func (b *pathBind) SetMark(mark uint32) error { return b.udp.SetMark(mark) }

// BatchSize implements conn.Bind.
func (b *pathBind) BatchSize() int { return b.udp.BatchSize() }

// peerEndpointPrefix starts the endpoint string the engine configures for
// every peer: the bind picks the path.
const peerEndpointPrefix = "moat-peer:"

// ParseEndpoint implements conn.Bind: "moat-peer:KEYHEX" is a peer,
// anything else a UDP address.
func (b *pathBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	if hexKey, ok := strings.CutPrefix(s, peerEndpointPrefix); ok {
		k, err := parseHexKey(hexKey)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.pathLocked(k).ep, nil
	}
	return b.udp.ParseEndpoint(s)
}

// pathLocked returns k's path state, making it if needed.
func (b *pathBind) pathLocked(k key.Public) *peerPath {
	p := b.mu.peers[k]
	if p == nil {
		p = &peerPath{ep: &peerEndpoint{key: k}, pings: map[txID]sentPing{}}
		b.mu.peers[k] = p
	}
	return p
}

// setPeers replaces the peers' candidate addresses; peers not in want are
// forgotten. A peer whose addresses changed while a handshake with it was
// pending gets a new one on the new addresses (the pending one may have
// gone where nothing answers).
func (b *pathBind) setPeers(want map[key.Public][]netip.AddrPort) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for k := range b.mu.peers {
		if _, ok := want[k]; !ok {
			delete(b.mu.peers, k)
		}
	}
	now := time.Now()
	for k, c := range want {
		p := b.pathLocked(k)
		if !slices.Equal(p.candidates, c) && p.handshakePending(now) && !p.directFresh(now) {
			b.renewLater(k, p.initAt)
		}
		p.candidates = c
	}
}

// Send implements conn.Bind.
func (b *pathBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	pe, ok := ep.(*peerEndpoint)
	if !ok {
		return b.udp.Send(bufs, ep) // a cookie reply to where a packet came from
	}
	now := time.Now()
	b.mu.Lock()
	p := b.mu.peers[pe.key]
	if p == nil {
		b.mu.Unlock()
		return errNoPath
	}
	b.noteSentLocked(pe.key, p, bufs, now)
	pings := append(b.pingsLocked(pe.key, p, now), b.stunDueLocked(now)...)
	rc := b.mu.relay
	if rc == nil || !rc.Connected() {
		rc = nil
	}
	var dst conn.Endpoint
	udp, viaRelay := p.route(now, rc != nil)
	if udp.IsValid() {
		dst = b.endpointLocked(udp)
	}
	b.mu.Unlock()

	b.sendPings(pings)
	var err error
	if dst != nil {
		err = b.udp.Send(bufs, dst)
	}
	if viaRelay {
		err = errors.Join(err, rc.SendBatch(pe.key, bufs))
	}
	if dst == nil && !viaRelay {
		return errNoPath
	}
	return err
}

var errNoPath = errors.New("no path to peer: no direct address works and no relay is connected")

// route picks where packets to p go at now: the UDP address (invalid:
// none) and whether the relay (connected: relayUp) carries them too.
func (p *peerPath) route(now time.Time, relayUp bool) (udp netip.AddrPort, viaRelay bool) {
	switch {
	case p.directFresh(now):
		// In doubt, the relay too: WireGuard drops the second copy.
		return p.direct, relayUp && p.speaksMoat && p.inDoubt(now)
	case relayUp && p.speaksMoat:
		return netip.AddrPort{}, true
	case p.wgAddr.IsValid() && !p.speaksMoat:
		// A stock WireGuard peer: it is never on the relay.
		return p.wgAddr, false
	}
	// Nothing proven yet: the best UDP guess and the relay both.
	return p.bestGuess(), relayUp
}

// inDoubt reports whether a ping on the direct path went unanswered for
// pongWait, or no pong came for pingEvery + pongWait.
func (p *peerPath) inDoubt(now time.Time) bool {
	return p.pingLost(now) || now.Sub(p.directAt) > pingEvery+pongWait
}

// pingLost reports whether a ping on the direct path went unanswered for
// pongWait: the evidence that the path broke.
func (p *peerPath) pingLost(now time.Time) bool {
	return !p.unanswered.IsZero() && now.Sub(p.unanswered) > pongWait
}

// pinged notes ping tx sent to a at now.
func (p *peerPath) pinged(tx txID, a netip.AddrPort, now time.Time) {
	p.pings[tx] = sentPing{to: a, sent: now}
	if a == p.direct && p.unanswered.IsZero() {
		p.unanswered = now
	}
}

// ponged notes the pong of ping tx at now, which proves the address the
// ping went to; it reports whether that is a new direct path.
func (p *peerPath) ponged(tx txID, now time.Time) (proved netip.AddrPort, isNew bool) {
	sp, found := p.pings[tx]
	if !found {
		return netip.AddrPort{}, false
	}
	delete(p.pings, tx)
	isNew = !p.directFresh(now) || p.direct != sp.to
	if p.direct != sp.to || !sp.sent.Before(p.unanswered) {
		p.unanswered = time.Time{}
	}
	p.direct, p.directAt, p.rtt = sp.to, now, now.Sub(sp.sent)
	return sp.to, isNew
}

// directFresh reports whether a pong proved the direct path recently.
func (p *peerPath) directFresh(now time.Time) bool {
	return p.direct.IsValid() && now.Sub(p.directAt) < trustDirect
}

// bestGuess is the UDP address to use without a relay: the last proven
// one, else where the peer last pinged from, else its first candidate.
func (p *peerPath) bestGuess() netip.AddrPort {
	switch {
	case p.direct.IsValid():
		return p.direct
	case p.wgAddr.IsValid():
		return p.wgAddr
	case p.learned.IsValid():
		return p.learned
	case len(p.candidates) > 0:
		return p.candidates[0]
	}
	return netip.AddrPort{}
}

type outPing struct {
	to  conn.Endpoint
	msg []byte
}

// pingsLocked returns the pings due for peer k: one to each address it
// may be reached at, at most every pingEvery.
func (b *pathBind) pingsLocked(k key.Public, p *peerPath, now time.Time) []outPing {
	if now.Sub(p.lastPing) < pingEvery {
		return nil
	}
	p.lastPing = now
	for tx, sp := range p.pings {
		if now.Sub(sp.sent) > pingTimeout {
			delete(p.pings, tx)
		}
	}
	var out []outPing
	seen := map[netip.AddrPort]bool{}
	for _, a := range append([]netip.AddrPort{p.direct, p.learned}, p.candidates...) {
		if !a.IsValid() || seen[a] || len(p.pings) >= 4*maxPingTargets {
			continue
		}
		seen[a] = true
		tx := newTxID()
		p.pinged(tx, a, now)
		out = append(out, outPing{to: b.endpointLocked(a), msg: b.seal.seal(kindPing, k, tx)})
	}
	return out
}

// maxPingTargets bounds the addresses pinged at once (the netmap's
// endpoints plus two).
const maxPingTargets = 18

func (b *pathBind) sendPings(ps []outPing) {
	for _, p := range ps {
		if err := b.udp.Send([][]byte{p.msg}, p.to); err != nil {
			b.log.Debug("path ping not sent", "to", p.to.DstToString(), "err", err)
		}
	}
}

// endpointLocked returns the UDP endpoint for a.
func (b *pathBind) endpointLocked(a netip.AddrPort) conn.Endpoint {
	ep := b.mu.eps[a]
	if ep == nil {
		var err error
		if ep, err = b.udp.ParseEndpoint(a.String()); err != nil {
			return nil
		}
		if len(b.mu.eps) > 4096 {
			clear(b.mu.eps)
		}
		b.mu.eps[a] = ep
	}
	return ep
}

// receiveUDP wraps a UDP receiver: path pings and pongs are answered or
// noted and taken out of the batch; WireGuard's packets pass on.
func (b *pathBind) receiveUDP(fn conn.ReceiveFunc) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		for {
			n, err := fn(bufs, sizes, eps)
			kept := 0
			for i := range n {
				if isPing(bufs[i][:sizes[i]]) {
					b.handlePing(bufs[i][:sizes[i]], eps[i])
					continue
				}
				if stun.Is(bufs[i][:sizes[i]]) {
					b.handleSTUN(bufs[i][:sizes[i]])
					continue
				}
				if t := wgType(bufs[i][:sizes[i]]); t == wgInitiation || t == wgResponse || t == wgData && i == 0 {
					// Data is checked once a batch: roaming is rare.
					if src, ok := addrOf(eps[i]); ok {
						b.noteReceived(bufs[i][:sizes[i]], eps[i], src)
					}
				}
				if kept != i {
					// wireguard-go reads the packets from its own arrays
					// behind bufs, so they move by copying.
					copy(bufs[kept], bufs[i][:sizes[i]])
					sizes[kept], eps[kept] = sizes[i], eps[i]
				}
				kept++
			}
			if kept > 0 || err != nil {
				return kept, err
			}
		}
	}
}

// handlePing answers a ping with a pong and notes where the peer is; a
// pong proves the address its ping went to.
func (b *pathBind) handlePing(msg []byte, from conn.Endpoint) {
	kind, k, tx, ok := b.seal.open(msg)
	if !ok {
		return
	}
	src, ok := addrOf(from)
	if !ok {
		return
	}
	now := time.Now()
	b.mu.Lock()
	p := b.mu.peers[k]
	if p == nil {
		b.mu.Unlock()
		return // not a peer of this member
	}
	p.speaksMoat = true
	var reply []outPing
	switch kind {
	case kindPing:
		p.learned = src
		reply = append(reply, outPing{to: from, msg: b.seal.seal(kindPong, k, tx)})
		if !p.directFresh(now) {
			// Ping back at once rather than at the next packet: the
			// path is proven in both directions within a round trip.
			p.lastPing = time.Time{}
			reply = append(reply, b.pingsLocked(k, p, now)...)
		}
	case kindPong:
		if a, isNew := p.ponged(tx, now); isNew {
			b.log.Debug("direct path proven", "peer", k.Short(), "addr", a)
		}
	}
	b.mu.Unlock()
	b.sendPings(reply)
}

// pathOf describes how packets to k travel now, or for a peer idle since
// its last pong, would: direct until a ping goes unanswered (for at most
// showDirect).
func (b *pathBind) pathOf(k key.Public) (path string, endpoint netip.AddrPort, rtt time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.mu.peers[k]
	if p == nil {
		return "", netip.AddrPort{}, 0
	}
	return p.describe(time.Now(), b.relayUpLocked())
}

// describe is pathOf for p at now, the relay connected or not.
func (p *peerPath) describe(now time.Time, relayUp bool) (path string, endpoint netip.AddrPort, rtt time.Duration) {
	switch {
	case p.direct.IsValid() && now.Sub(p.directAt) < showDirect && !p.pingLost(now):
		return PathDirect, p.direct, p.rtt
	case p.wgAddr.IsValid() && !p.speaksMoat:
		// A stock WireGuard peer: its handshake proved the address.
		return PathDirect, p.wgAddr, 0
	case relayUp:
		return PathRelay, netip.AddrPort{}, 0
	}
	return PathUnproven, p.bestGuess(), 0
}

func (b *pathBind) relayUpLocked() bool { return b.mu.relay != nil && b.mu.relay.Connected() }

// The paths a peer's packets may take (PeerStatus.Path).
const (
	PathDirect   = "direct"   // UDP to an address a ping proved
	PathRelay    = "relay"    // through the relay over HTTPS
	PathUnproven = "unproven" // UDP to the best address known, no relay: nothing proved it yet
)

// peerEndpoint is a peer as wireguard-go sees its endpoint: the bind
// picks the path for every send.
type peerEndpoint struct{ key key.Public }

func (e *peerEndpoint) ClearSrc()           {}
func (e *peerEndpoint) SrcToString() string { return "" }
func (e *peerEndpoint) DstToString() string { return peerEndpointPrefix + e.key.Hex() }
func (e *peerEndpoint) DstToBytes() []byte  { raw := e.key.Raw(); return raw[:] }
func (e *peerEndpoint) DstIP() netip.Addr   { return netip.Addr{} }
func (e *peerEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

func parseHexKey(s string) (key.Public, error) {
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != key.Len {
		return key.Public{}, fmt.Errorf("peer endpoint: bad key %q", s)
	}
	return key.PublicFromRaw([key.Len]byte(raw)), nil
}

// addrOf returns a UDP endpoint's address.
func addrOf(ep conn.Endpoint) (netip.AddrPort, bool) {
	a, err := netip.ParseAddrPort(ep.DstToString())
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), true
}
