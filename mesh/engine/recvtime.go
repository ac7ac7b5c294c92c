package engine

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/moatmesh/moat/mesh/key"
)

// LastReceive returns when a packet from the peer holding addr last
// came out of the tunnel (a decrypted data packet, not a handshake or a
// keepalive), or the zero time if none has since the peer was added.
// WireGuard only lets through packets whose source is an address of the
// peer that sent them, so a time after t proves the peer was up, with a
// working session, after t. The time carries a monotonic reading; compare
// it with times from time.Now. It costs a map lookup and an atomic load.
func (e *Engine) LastReceive(addr netip.Addr) time.Time {
	return e.recv.last(addr.Unmap())
}

// recvTimes stamps, per peer, when its packets last arrived. The receive
// path reads the address table through an atomic pointer and stores one
// atomic value per peer: no lock and no allocation per packet.
type recvTimes struct {
	base  time.Time                                 // monotonic origin of the stamps
	addrs atomic.Pointer[map[netip.Addr]*recvStamp] // every address of every peer

	mu struct {
		sync.Mutex
		byKey map[key.Public]*recvStamp
	}
}

// recvStamp is one peer's last receive, in nanoseconds after base; 0:
// never.
type recvStamp struct{ atomic.Int64 }

func newRecvTimes() *recvTimes {
	return &recvTimes{base: time.Now()}
}

// setPeers makes peers the peers whose packets are stamped; a peer
// already known keeps its stamp.
func (t *recvTimes) setPeers(peers map[key.Public]peerConfig) {
	t.mu.Lock()
	defer t.mu.Unlock()
	byKey := make(map[key.Public]*recvStamp, len(peers))
	addrs := make(map[netip.Addr]*recvStamp, len(peers))
	for k, pc := range peers {
		s := t.mu.byKey[k]
		if s == nil {
			s = new(recvStamp)
		}
		byKey[k] = s
		for _, p := range pc.allowed {
			addrs[p.Addr()] = s
		}
	}
	t.mu.byKey = byKey
	t.addrs.Store(&addrs)
}

func (t *recvTimes) last(addr netip.Addr) time.Time {
	m := t.addrs.Load()
	if m == nil {
		return time.Time{}
	}
	s := (*m)[addr]
	if s == nil {
		return time.Time{}
	}
	ns := s.Load()
	if ns == 0 {
		return time.Time{}
	}
	return t.base.Add(time.Duration(ns))
}

// stamp records now for the source of every packet in bufs (each an IP
// packet at offset), reading the clock once per batch.
func (t *recvTimes) stamp(bufs [][]byte, offset int) {
	m := t.addrs.Load()
	if m == nil || len(*m) == 0 {
		return
	}
	now := max(int64(time.Since(t.base)), 1)
	var prev *recvStamp
	for _, b := range bufs {
		src, ok := sourceAddr(b[offset:])
		if !ok {
			continue
		}
		if s := (*m)[src]; s != nil && s != prev {
			s.Store(now)
			prev = s
		}
	}
}

// sourceAddr reads an IPv4 or IPv6 packet's source address.
func sourceAddr(p []byte) (netip.Addr, bool) {
	if len(p) == 0 {
		return netip.Addr{}, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) >= 20 {
			return netip.AddrFrom4([4]byte(p[12:16])), true
		}
	case 6:
		if len(p) >= 40 {
			return netip.AddrFrom16([16]byte(p[8:24])), true
		}
	}
	return netip.Addr{}, false
}

// recvDevice is the backend as wireguard-go sees it: every batch of
// packets it writes (decrypted, from peers) is stamped first.
type recvDevice struct {
	tun.Device
	times *recvTimes
}

func (d recvDevice) Write(bufs [][]byte, offset int) (int, error) {
	d.times.stamp(bufs, offset)
	return d.Device.Write(bufs, offset)
}
