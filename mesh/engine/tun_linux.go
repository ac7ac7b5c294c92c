package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// kernelTUN is the TUN backend: a kernel interface that wireguard-go reads
// and writes (with GSO/GRO offload where the kernel offers it), configured
// through netlink. Dial and Listen use the host's own sockets.
type kernelTUN struct {
	tun.Device
	link   netlink.Link
	writer *warmWriter
}

func newTUN(name string, mtu int, routes []netip.Prefix) (*kernelTUN, error) {
	dev, err := tun.CreateTUN(name, mtu)
	if err != nil {
		return nil, fmt.Errorf("create TUN %s (needs root or CAP_NET_ADMIN): %w", name, err)
	}
	real, err := dev.Name()
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("TUN name: %w", err)
	}
	link, err := netlink.LinkByName(real)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("find link %s: %w", real, err)
	}
	t := &kernelTUN{Device: dev, link: link, writer: newWarmWriter()}
	if err := netlink.LinkSetUp(link); err != nil {
		dev.Close()
		return nil, fmt.Errorf("set %s up: %w", real, err)
	}
	for _, r := range routes {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: ipNet(r), Scope: netlink.SCOPE_LINK}
		if err := netlink.RouteReplace(route); err != nil {
			dev.Close()
			return nil, fmt.Errorf("route %s via %s: %w", r, real, err)
		}
	}
	return t, nil
}

// Write implements tun.Device: the device's GRO, each run it coalesces
// started in a warm buffer (tunwarm_linux.go).
func (t *kernelTUN) Write(bufs [][]byte, offset int) (int, error) {
	return t.writer.write(t.Device, bufs, offset)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func (t *kernelTUN) setAddrs(old, new []netip.Addr) error {
	for _, a := range old {
		_ = netlink.AddrDel(t.link, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen()))})
	}
	for _, a := range new {
		addr := &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen()))}
		if a.Is6() {
			addr.Flags = 0x80 | 0x02 // IFA_F_PERMANENT | IFA_F_NODAD: usable at once
		}
		if err := netlink.AddrReplace(t.link, addr); err != nil {
			return fmt.Errorf("add address %s: %w", a, err)
		}
	}
	return nil
}

func (t *kernelTUN) dial(ctx context.Context, network string, dst netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{KeepAliveConfig: meshKeepalive, Control: userTimeout} // keepalive.go
	return d.DialContext(ctx, network, dst.String())
}

// userTimeout sets TCP_USER_TIMEOUT on a socket being dialled.
func userTimeout(network, _ string, c syscall.RawConn) error {
	if !strings.HasPrefix(network, "tcp") {
		return nil
	}
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(meshUserTimeout.Milliseconds()))
	})
	return errors.Join(err, serr)
}

func (t *kernelTUN) listen(network string, local netip.AddrPort) (net.Listener, error) {
	return net.Listen(network, local.String())
}
