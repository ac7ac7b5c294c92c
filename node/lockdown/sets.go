package lockdown

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
)

// Names of the named sets in the table. The *4 sets hold IPv4 keys, the
// *6 sets IPv6 keys.
const (
	setMeshPeers4   = "mesh_peers4"   // peers' mesh addresses
	setMeshPeers6   = "mesh_peers6"   //
	setEndpoints4   = "wg_endpoints4" // WireGuard underlay addr . port (peers + coordinator)
	setEndpoints6   = "wg_endpoints6" //
	setCoordinator4 = "coordinator4"  // coordinator API addr . port (TCP)
	setCoordinator6 = "coordinator6"  //
	setDNS4         = "dns4"          // resolvers (port 53)
	setDNS6         = "dns6"          //
	setExtraPorts4  = "extra_ports4"  // admin-allowed addr . port (TCP, UDP)
	setExtraPorts6  = "extra_ports6"  //
	setNTP4         = "ntp4"          // time servers (UDP port 123)
	setNTP6         = "ntp6"          //
	setUpstreams4   = "upstreams4"    // inference containers addr . port (TCP)
	setUpstreams6   = "upstreams6"    //
	setUpAddrs4     = "upstream_addrs4"
	setUpAddrs6     = "upstream_addrs6"
	setForward4     = "forward4" // allowed forward destinations addr . port
	setForward6     = "forward6" //
	setInference    = "inference_ports"
)

// keyKind is what a set's elements are.
type keyKind int

const (
	keyAddr     keyKind = iota // an IP address
	keyAddrPort                // an IP address . a port
	keyPort                    // a port
)

type setDef struct {
	name string
	v6   bool
	kind keyKind
}

var setDefs = []setDef{
	{setMeshPeers4, false, keyAddr}, {setMeshPeers6, true, keyAddr},
	{setEndpoints4, false, keyAddrPort}, {setEndpoints6, true, keyAddrPort},
	{setCoordinator4, false, keyAddrPort}, {setCoordinator6, true, keyAddrPort},
	{setDNS4, false, keyAddr}, {setDNS6, true, keyAddr},
	{setExtraPorts4, false, keyAddrPort}, {setExtraPorts6, true, keyAddrPort},
	{setNTP4, false, keyAddr}, {setNTP6, true, keyAddr},
	{setUpstreams4, false, keyAddrPort}, {setUpstreams6, true, keyAddrPort},
	{setUpAddrs4, false, keyAddr}, {setUpAddrs6, true, keyAddr},
	{setForward4, false, keyAddrPort}, {setForward6, true, keyAddrPort},
	{setInference, false, keyPort},
}

func (d setDef) keyType() nftables.SetDatatype {
	addr := nftables.TypeIPAddr
	if d.v6 {
		addr = nftables.TypeIP6Addr
	}
	switch d.kind {
	case keyAddrPort:
		return nftables.MustConcatSetType(addr, nftables.TypeInetService)
	case keyPort:
		return nftables.TypeInetService
	}
	return addr
}

func (d setDef) set(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: d.name, KeyType: d.keyType(), Concatenation: d.kind == keyAddrPort}
}

// newSets returns the named sets of t, by name.
func newSets(t *nftables.Table) map[string]*nftables.Set {
	sets := make(map[string]*nftables.Set, len(setDefs))
	for _, d := range setDefs {
		sets[d.name] = d.set(t)
	}
	return sets
}

// setFor names the set of kind base ("mesh_peers", ...) for a's family.
func setFor(base string, a netip.Addr) string {
	if a.Unmap().Is4() {
		return base + "4"
	}
	return base + "6"
}

// addrKey and addrPortKey encode set keys the way the kernel compares
// them: an address in network order, a port in network order padded to
// four bytes.
func addrKey(a netip.Addr) []byte { return a.Unmap().AsSlice() }

func addrPortKey(ap netip.AddrPort) []byte {
	k := addrKey(ap.Addr())
	return padKey(binary.BigEndian.AppendUint16(k, ap.Port()))
}

func padKey(k []byte) []byte {
	for len(k)%4 != 0 {
		k = append(k, 0)
	}
	return k
}

func portKey(p uint16) []byte { return binary.BigEndian.AppendUint16(nil, p) }

// elems holds the wanted keys of each set, by set name.
type elems map[string][][]byte

func (e elems) addAddr(base string, a netip.Addr) {
	if a.IsValid() {
		n := setFor(base, a)
		e[n] = appendKey(e[n], addrKey(a))
	}
}

func (e elems) addAddrPort(base string, ap netip.AddrPort) {
	if ap.IsValid() {
		n := setFor(base, ap.Addr())
		e[n] = appendKey(e[n], addrPortKey(ap))
	}
}

func appendKey(keys [][]byte, k []byte) [][]byte {
	for _, have := range keys {
		if slices.Equal(have, k) {
			return keys
		}
	}
	return append(keys, k)
}

// dynamic is what the sets hold beyond the Config: the netmap's peers
// and the names Apply and Watch resolved.
type dynamic struct {
	peers       []Peer
	coordinator []netip.AddrPort // CoordinatorURL's addresses
	ntp         []netip.Addr     // NTPServers' names' addresses
	relays      []netip.AddrPort // a tailnet's relays, TCP like the coordinator's API (tailnet.go)
	relayURLs   []string         // the netmap's relays (relays.go)
	meshRelays  []netip.AddrPort // relayURLs' addresses, TCP like the coordinator's API
	pods        []podCgroup      // Config.PodCgroups' matches (pods.go)
}

// wantElems are the elements of every set, by set name (an empty set is
// listed too, so that syncing empties it).
func wantElems(cfg Config, d dynamic) elems {
	e := elems{}
	for _, def := range setDefs {
		e[def.name] = nil
	}
	for _, ap := range concatSlices(cfg.CoordinatorWireGuard, cfg.WireGuardExtra) {
		e.addAddrPort("wg_endpoints", ap)
	}
	for _, ap := range concatSlices(cfg.Coordinator, d.coordinator, d.relays, d.meshRelays) {
		e.addAddrPort("coordinator", ap)
	}
	for _, a := range concatSlices(cfg.AllowDNS) {
		e.addAddr("dns", a)
	}
	for _, a := range concatSlices(ntpAddrs(cfg.NTPServers), d.ntp) {
		e.addAddr("ntp", a)
	}
	for _, ap := range cfg.ExtraPorts {
		e.addAddrPort("extra_ports", ap)
	}
	for _, ap := range cfg.Upstreams {
		e.addAddrPort("upstreams", ap)
		e.addAddr("upstream_addrs", ap.Addr())
	}
	for _, ap := range cfg.Forward {
		e.addAddrPort("forward", ap)
	}
	for _, p := range cfg.InferencePorts {
		e[setInference] = appendKey(e[setInference], portKey(p))
	}
	for _, p := range d.peers {
		for _, a := range p.Addresses {
			e.addAddr("mesh_peers", a)
		}
		for _, ap := range p.Endpoints {
			e.addAddrPort("wg_endpoints", ap)
		}
	}
	return e
}

func concatSlices[T any](parts ...[]T) []T {
	var out []T
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// ntpAddrs are the NTPServers given as addresses.
func ntpAddrs(servers []string) []netip.Addr {
	var out []netip.Addr
	for _, s := range servers {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func toElements(keys [][]byte) []nftables.SetElement {
	out := make([]nftables.SetElement, len(keys))
	for i, k := range keys {
		out[i] = nftables.SetElement{Key: k}
	}
	return out
}

// diffKeys returns the keys of want missing from have, and those of
// have missing from want.
func diffKeys(have, want [][]byte) (add, del [][]byte) {
	for _, k := range want {
		if !containsKey(have, k) {
			add = append(add, k)
		}
	}
	for _, k := range have {
		if !containsKey(want, k) {
			del = append(del, k)
		}
	}
	return add, del
}

func containsKey(keys [][]byte, k []byte) bool {
	return slices.ContainsFunc(keys, func(h []byte) bool { return slices.Equal(h, k) })
}

// formatKey renders a set key as nft prints it.
func formatKey(k []byte) string {
	switch len(k) {
	case 2:
		return fmt.Sprint(binary.BigEndian.Uint16(k))
	case 4, 16:
		a, _ := netip.AddrFromSlice(k)
		return a.String()
	case 8, 20:
		a, _ := netip.AddrFromSlice(k[:len(k)-4])
		return fmt.Sprintf("%v . %d", a, binary.BigEndian.Uint16(k[len(k)-4:]))
	}
	return fmt.Sprintf("%x", k)
}
