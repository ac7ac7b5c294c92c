//go:build !linux

package engine

import (
	"errors"
	"net/netip"
)

type kernelTUN struct{ backend }

func newTUN(string, int, []netip.Prefix) (*kernelTUN, error) {
	return nil, errors.New("the TUN backend is only built for Linux; use the netstack backend")
}
