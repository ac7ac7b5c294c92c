package guard

import (
	"net/netip"

	"github.com/moatmesh/moat/mesh/wire"
)

// What node/mcpguard shares with the guard about callers: it identifies
// them the same way.

// PeerAddr returns the mesh address of a connection's remote address
// ("ip:port" as the engine's listener reports it).
func PeerAddr(remoteAddr string) (netip.Addr, bool) {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}, false
	}
	return ap.Addr().Unmap(), true
}

// Who names a caller in messages: the person's login, else the device.
func Who(id *wire.Identity) string {
	switch {
	case id.Login != "":
		return id.Login
	case id.DeviceName != "":
		return id.DeviceName
	}
	return string(id.DeviceID)
}

// LimitKey is whose limits a peer's requests count against: the person
// for people's devices, the device for tagged callers.
func LimitKey(p *wire.Peer) string {
	switch {
	case p.Identity.UserID != "":
		return "user:" + p.Identity.UserID
	case p.Identity.DeviceID != "":
		return "device:" + string(p.Identity.DeviceID)
	}
	return "key:" + p.Key.String()
}
