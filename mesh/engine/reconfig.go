package engine

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// peerConfig is what the engine configures in wireguard-go for one peer.
// Two equal peerConfigs mean there is nothing to change.
type peerConfig struct {
	allowed   []netip.Prefix // sorted host prefixes
	endpoints []netip.AddrPort
	keepAlive int
}

func (a peerConfig) equal(b peerConfig) bool {
	return slices.Equal(a.allowed, b.allowed) && slices.Equal(a.endpoints, b.endpoints) && a.keepAlive == b.keepAlive
}

func configOf(p *wire.Peer) peerConfig {
	pc := peerConfig{keepAlive: p.KeepAlive}
	for _, ep := range p.Endpoints {
		pc.endpoints = append(pc.endpoints, netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port()))
	}
	for _, a := range p.Addresses {
		a = a.Unmap()
		pc.allowed = append(pc.allowed, netip.PrefixFrom(a, a.BitLen()))
	}
	slices.SortFunc(pc.allowed, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return pc
}

// Reconfig applies nm: the engine's own addresses and its peer set. It
// validates nm first and changes nothing when nm is invalid or meant for
// another key. Peers whose configuration is unchanged are not touched and
// keep their sessions; removed peers are deleted with their keys, so their
// traffic stops at once. A new peer's handshake initiation that came
// before this netmap is answered now (replay.go), and a pending
// handshake with a peer whose addresses changed starts again on them.
func (e *Engine) Reconfig(nm *wire.NetMap) error {
	if nm == nil {
		return fmt.Errorf("engine: reconfig: nil netmap")
	}
	if err := nm.Validate(); err != nil {
		return fmt.Errorf("engine: reconfig: %w", err)
	}
	if !nm.Self.Key.Equal(e.PublicKey()) {
		return fmt.Errorf("engine: reconfig: netmap is for key %s, this engine has %s", nm.Self.Key.Short(), e.PublicKey().Short())
	}
	want := make(map[key.Public]peerConfig, len(nm.Peers))
	for i := range nm.Peers {
		want[nm.Peers[i].Key] = configOf(&nm.Peers[i])
	}
	addrs := make([]netip.Addr, len(nm.Self.Addresses))
	for i, a := range nm.Self.Addresses {
		addrs[i] = a.Unmap()
	}

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return ErrClosed
	}
	if !slices.Equal(addrs, e.mu.addrs) {
		if err := e.backend.setAddrs(e.mu.addrs, addrs); err != nil {
			return fmt.Errorf("engine: reconfig: set addresses: %w", err)
		}
		e.mu.addrs = addrs
	}
	candidates := make(map[key.Public][]netip.AddrPort, len(want))
	for k, pc := range want {
		candidates[k] = pc.endpoints
	}
	e.bind.setPeers(candidates)
	uapi := peerDiff(e.mu.peers, want)
	if e.mu.resync {
		// The last apply failed part-way: replace the whole peer set, so a
		// peer that should be gone cannot linger.
		uapi = "replace_peers=true\n" + peerDiff(nil, want)
	}
	if uapi != "" {
		if err := e.dev.IpcSet(uapi); err != nil {
			// wireguard-go applies UAPI line by line; the device may now hold
			// part of the change.
			e.mu.resync = true
			return fmt.Errorf("engine: reconfig: apply peers: %w", err)
		}
		e.recv.setPeers(want)
	}
	e.mu.resync = false
	var added []key.Public
	for k := range want {
		if _, ok := e.mu.peers[k]; !ok {
			added = append(added, k)
		}
	}
	e.bind.replayInitiations(added) // first contact (replay.go)
	e.mu.peers = want
	e.mu.netmap = nm
	e.log.Debug("reconfig", "seq", nm.Seq, "peers", len(want))
	return nil
}

// peerDiff returns the wireguard-go UAPI text that turns the peer set have
// into want, touching only peers that differ.
func peerDiff(have, want map[key.Public]peerConfig) string {
	var b strings.Builder
	for k := range have {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "public_key=%s\nremove=true\n", k.Hex())
		}
	}
	for k, w := range want {
		h, existed := have[k]
		if existed && h.equal(w) {
			continue
		}
		fmt.Fprintf(&b, "public_key=%s\n", k.Hex())
		if existed {
			b.WriteString("update_only=true\n")
		}
		b.WriteString("replace_allowed_ips=true\n")
		for _, p := range w.allowed {
			fmt.Fprintf(&b, "allowed_ip=%s\n", p)
		}
		// The endpoint is the peer's key: the bind picks the path (pathBind),
		// from the candidates setPeers gave it.
		if !existed {
			fmt.Fprintf(&b, "endpoint=%s%s\n", peerEndpointPrefix, k.Hex())
		}
		if !existed || h.keepAlive != w.keepAlive {
			fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", w.keepAlive)
		}
	}
	return b.String()
}

// listenAddrs resolves Listen's address to the local addresses to bind.
func (e *Engine) listenAddrs(network, addr string) ([]netip.AddrPort, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("bad port %q", portStr)
	}
	want4, want6 := network != "tcp6", network != "tcp4"
	if network != "tcp" && network != "tcp4" && network != "tcp6" {
		return nil, fmt.Errorf("network %q: want tcp, tcp4 or tcp6", network)
	}
	mine := e.Addresses()
	if host != "" {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("host %q: want an IP literal", host)
		}
		if !slices.Contains(mine, a.Unmap()) {
			return nil, fmt.Errorf("%s is not a mesh address of this engine (have %v)", a, mine)
		}
		return []netip.AddrPort{netip.AddrPortFrom(a.Unmap(), uint16(port))}, nil
	}
	var out []netip.AddrPort
	for _, a := range mine {
		if a.Is4() && want4 || a.Is6() && want6 {
			out = append(out, netip.AddrPortFrom(a, uint16(port)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the engine has no %s mesh address yet; apply a netmap first", network)
	}
	return out, nil
}
