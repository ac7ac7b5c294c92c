//go:build !linux

package peercred

import "net/netip"

func loopbackUID(local, remote netip.AddrPort) (uint32, error) { return 0, ErrUnsupported }
