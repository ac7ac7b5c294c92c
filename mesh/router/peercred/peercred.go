// Package peercred finds the operating-system user behind a local
// connection, so that the local model endpoint can serve the programs of
// the person who runs it without a token and refuse other users of a
// shared machine.
//
// On Linux, LoopbackUID asks the kernel (NETLINK_SOCK_DIAG, one exact
// lookup by the connection's addresses and ports) which uid owns the
// socket at the other end of a loopback TCP connection. Elsewhere it
// returns ErrUnsupported and callers fall back to a token.
package peercred

import (
	"errors"
	"net/netip"
)

// ErrUnsupported means this system cannot tell who owns a connection.
var ErrUnsupported = errors.New("peercred: finding a connection's user is not supported on this system")

// ErrNotFound means no live socket has the peer's address: the
// connection closed, or it does not come from this machine.
var ErrNotFound = errors.New("peercred: no live socket at the peer's address")

// LoopbackUID returns the uid that owns the peer's end of the TCP
// connection whose own end is local and whose peer is remote. Both must
// be loopback addresses: only then is the peer a socket on this machine
// (and in this network namespace).
func LoopbackUID(local, remote netip.AddrPort) (uint32, error) {
	local, remote = unmap(local), unmap(remote)
	if !local.Addr().IsLoopback() || !remote.Addr().IsLoopback() {
		return 0, errors.New("peercred: not a loopback connection")
	}
	if local.Addr().Is4() != remote.Addr().Is4() {
		return 0, errors.New("peercred: mixed address families")
	}
	return loopbackUID(local, remote)
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
