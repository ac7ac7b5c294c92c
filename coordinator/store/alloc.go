package store

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
)

// Mesh addresses. Host number n (1 ≤ n < 2²²) is 100.64.0.0+n and
// fd7a:6d6f:6174::n. A counter in addr_alloc hands the numbers out in
// order, so an address is not reused — not even a deleted device's —
// until the counter wraps around the whole /10.
var (
	// MeshPrefix4 is the IPv4 prefix devices get addresses from.
	MeshPrefix4 = netip.MustParsePrefix("100.64.0.0/10")
	// MeshPrefix6 is the IPv6 prefix devices get addresses from.
	MeshPrefix6 = netip.MustParsePrefix("fd7a:6d6f:6174::/48")
)

// maxHost is one past the largest host number.
const maxHost = 1 << 22

// errAddrExhausted says every mesh address is in use.
var errAddrExhausted = errors.New("mesh address space exhausted")

// hostAddrs returns the addresses of host number n.
func hostAddrs(n uint32) (v4, v6 netip.Addr) {
	b4 := MeshPrefix4.Addr().As4()
	binary.BigEndian.PutUint32(b4[:], binary.BigEndian.Uint32(b4[:])+n)
	b6 := MeshPrefix6.Addr().As16()
	binary.BigEndian.PutUint32(b6[12:], n)
	return netip.AddrFrom4(b4), netip.AddrFrom16(b6)
}

// usableHost reports whether n avoids addresses ending in .0 or .255,
// which some software treats as network or broadcast addresses.
func usableHost(n uint32) bool {
	return n > 0 && n < maxHost && n%256 != 0 && n%256 != 255
}

// allocAddrs fills the invalid ones of *v4 and *v6 with the next host
// number whose addresses no device holds. c must be a transaction: the
// counter row stays locked until it ends.
func (s *DB) allocAddrs(ctx context.Context, c conn, v4, v6 *netip.Addr) error {
	for range maxHost {
		n, err := s.nextHost(ctx, c)
		if err != nil {
			return err
		}
		if !usableHost(n) {
			continue
		}
		a4, a6 := hostAddrs(n)
		// Only the addresses being allocated are checked (NULL matches nothing).
		if v4.IsValid() {
			a4 = netip.Addr{}
		}
		if v6.IsValid() {
			a6 = netip.Addr{}
		}
		var used int
		err = c.row(ctx, "SELECT COUNT(*) FROM devices WHERE ipv4 = ? OR ipv6 = ?",
			addrArg(a4), addrArg(a6)).Scan(&used)
		if err != nil {
			return err
		}
		if used == 0 {
			if a4.IsValid() {
				*v4 = a4
			}
			if a6.IsValid() {
				*v6 = a6
			}
			return nil
		}
	}
	return errAddrExhausted
}

// nextHost takes the counter's number and advances it, wrapping to 1.
func (s *DB) nextHost(ctx context.Context, c conn) (uint32, error) {
	var n int64
	err := c.row(ctx, `UPDATE addr_alloc SET next_host = CASE WHEN next_host + 1 >= ? THEN 1 ELSE next_host + 1 END
		WHERE id = 1 RETURNING next_host`, maxHost).Scan(&n)
	if err != nil {
		return 0, err
	}
	// n is the counter after the step; the number taken is the one before.
	if n == 1 {
		return maxHost - 1, nil
	}
	return uint32(n - 1), nil
}
