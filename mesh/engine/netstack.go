package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

const (
	nicID = 1
	// netstackBatch is how many packets one Read hands to wireguard-go,
	// which encrypts them in parallel and sends them with one sendmmsg.
	netstackBatch = 128
)

// netstack is the userspace backend: a gVisor TCP/IP stack whose only
// interface is the WireGuard device.
type netstack struct {
	ep     *linkEndpoint
	stack  *stack.Stack
	mtu    int
	events chan tun.Event
	flat   []byte // Read's scratch for flattening a GSO segment; one reader

	ctx    context.Context // cancelled by Close; unblocks Read
	cancel context.CancelFunc
	once   sync.Once
}

func newNetstack(mtu int) (*netstack, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	if err := tuneTCP(s); err != nil {
		s.Close()
		return nil, err
	}
	ep := newLinkEndpoint(mtu)
	if err := s.CreateNIC(nicID, ep); err != nil {
		s.Close()
		return nil, fmt.Errorf("netstack: create NIC: %v", err)
	}
	s.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	s.AddRoute(tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: nicID})
	ns := &netstack{ep: ep, stack: s, mtu: mtu, events: make(chan tun.Event, 1), flat: make([]byte, gsoMaxSize+header.IPv6MinimumSize)}
	ns.ctx, ns.cancel = context.WithCancel(context.Background())
	ns.events <- tun.EventUp
	return ns, nil
}

// tuneTCP sets the TCP options that matter for throughput over a tunnel:
// SACK, larger auto-tuned buffers, and no RACK (it mistakes reordering
// inside wireguard-go's parallel crypto for loss).
func tuneTCP(s *stack.Stack) error {
	opts := []tcpip.SettableTransportProtocolOption{
		ptr(tcpip.TCPSACKEnabled(true)),
		ptr(tcpip.TCPRecovery(0)),
		ptr(tcpip.TCPModerateReceiveBufferOption(true)),
		&tcpip.TCPReceiveBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultReceiveBufferSize, Max: 8 << 20},
		&tcpip.TCPSendBufferSizeRangeOption{Min: tcp.MinBufferSize, Default: tcp.DefaultSendBufferSize, Max: 6 << 20},
	}
	for _, o := range opts {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			return fmt.Errorf("netstack: set TCP option %T: %v", o, err)
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (ns *netstack) File() *os.File           { return nil }
func (ns *netstack) MTU() (int, error)        { return ns.mtu, nil }
func (ns *netstack) Name() (string, error)    { return "netstack", nil }
func (ns *netstack) Events() <-chan tun.Event { return ns.events }
func (ns *netstack) BatchSize() int           { return netstackBatch }

// Read hands wireguard-go the packets the stack wants to send: it blocks
// for the first and then takes whatever else is queued, splitting GSO
// segments, up to len(bufs) packets.
func (ns *netstack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	pkt := ns.ep.next(ns.ctx)
	if pkt == nil {
		return 0, os.ErrClosed
	}
	n := 0
	for pkt != nil && n < len(bufs) {
		k, err := ns.emit(pkt, bufs[n:], sizes[n:], offset)
		if errors.Is(err, errNoRoom) && n > 0 {
			ns.ep.unread(pkt) // next Read starts with it
			break
		}
		pkt.DecRef()
		n += k
		if n < len(bufs) {
			pkt = ns.ep.poll()
		}
	}
	return n, nil
}

// emit writes pkt into bufs as one or more wire packets and returns how
// many. A packet that cannot be written is dropped (TCP retransmits).
func (ns *netstack) emit(pkt *stack.PacketBuffer, bufs [][]byte, sizes []int, offset int) (int, error) {
	whole := pkt.Size()
	if g := pkt.GSOOptions; g.Type == stack.GSOTCPv4 || g.Type == stack.GSOTCPv6 {
		if segments(pkt, whole) > len(bufs) {
			return 0, errNoRoom
		}
		in := ns.flat[:copyPacket(ns.flat, pkt)]
		return splitTCP(in, g, bufs, sizes, offset)
	}
	if whole > len(bufs[0])-offset {
		return 0, nil
	}
	sizes[0] = copyPacket(bufs[0][offset:], pkt)
	return 1, nil
}

func copyPacket(dst []byte, pkt *stack.PacketBuffer) int {
	n := 0
	for _, s := range pkt.AsSlices() {
		n += copy(dst[n:], s)
	}
	return n
}

// Write delivers decrypted packets from peers to the stack.
func (ns *netstack) Write(bufs [][]byte, offset int) (int, error) {
	ns.ep.inject(bufs, offset)
	return len(bufs), nil
}

// Close stops the stack. wireguard-go calls it from device.Close.
func (ns *netstack) Close() error {
	ns.once.Do(func() {
		ns.cancel()
		ns.stack.RemoveNIC(nicID)
		ns.ep.Close()
		ns.stack.Close()
		close(ns.events)
	})
	return nil
}

// wait blocks until the stack's own goroutines have stopped.
func (ns *netstack) wait() { ns.stack.Wait() }

// setAddrs removes the addresses that went and adds the new ones; an
// address in both keeps its connections.
func (ns *netstack) setAddrs(old, new []netip.Addr) error {
	for _, a := range old {
		if !slices.Contains(new, a) {
			ns.stack.RemoveAddress(nicID, tcpip.AddrFromSlice(a.AsSlice()))
		}
	}
	for _, a := range new {
		if slices.Contains(old, a) {
			continue
		}
		pa := tcpip.ProtocolAddress{Protocol: protoOf(a), AddressWithPrefix: tcpip.AddrFromSlice(a.AsSlice()).WithPrefix()}
		if err := ns.stack.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("add address %s: %v", a, err)
		}
	}
	return nil
}

func protoOf(a netip.Addr) tcpip.NetworkProtocolNumber {
	if a.Is4() {
		return ipv4.ProtocolNumber
	}
	return ipv6.ProtocolNumber
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	fa := tcpip.FullAddress{NIC: nicID, Port: ap.Port()}
	if ap.Addr().IsValid() {
		fa.Addr = tcpip.AddrFromSlice(ap.Addr().AsSlice())
	}
	return fa
}

func (ns *netstack) dial(ctx context.Context, network string, dst netip.AddrPort) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
		return ns.dialTCP(ctx, dst)
	case "udp", "udp4", "udp6":
		raddr := fullAddr(dst)
		return gonet.DialUDP(ns.stack, nil, &raddr, protoOf(dst.Addr()))
	}
	return nil, fmt.Errorf("netstack: dial: network %q not supported", network)
}

func (ns *netstack) listen(network string, local netip.AddrPort) (net.Listener, error) {
	var wq waiter.Queue
	ep, err := ns.stack.NewEndpoint(tcp.ProtocolNumber, protoOf(local.Addr()), &wq)
	if err != nil {
		return nil, fmt.Errorf("netstack: listen %s: %v", local, err)
	}
	// Accepted connections inherit the user timeout (not keepalive): an
	// answer streamed to a peer that vanished fails once it goes unacked.
	if err := setUserTimeout(ep); err != nil {
		ep.Close()
		return nil, err
	}
	if err := ep.Bind(fullAddr(local)); err != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: bind %s: %v", local, err)
	}
	if err := ep.Listen(listenBacklog); err != nil {
		ep.Close()
		return nil, fmt.Errorf("netstack: listen %s: %v", local, err)
	}
	return gonet.NewTCPListener(ns.stack, &wq, ep), nil
}

// listenBacklog is the accept queue of a listener (gonet's own value).
const listenBacklog = 4096

// dialTCP connects to dst with keepalive on (see keepalive.go): a peer
// that disappears mid-answer ends the connection with an error within
// meshKeepalive's bound instead of leaving the reader waiting forever.
func (ns *netstack) dialTCP(ctx context.Context, dst netip.AddrPort) (net.Conn, error) {
	var wq waiter.Queue
	ep, err := ns.stack.NewEndpoint(tcp.ProtocolNumber, protoOf(dst.Addr()), &wq)
	if err != nil {
		return nil, fmt.Errorf("netstack: dial %s: %v", dst, err)
	}
	if err := setKeepalive(ep); err != nil {
		ep.Close()
		return nil, err
	}
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr := ep.Connect(fullAddr(dst))
	if _, started := terr.(*tcpip.ErrConnectStarted); started {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, &net.OpError{Op: "connect", Net: "tcp", Addr: net.TCPAddrFromAddrPort(dst), Err: errors.New(terr.String())}
	}
	// Turned on once established: gVisor starts the keepalive timer when
	// the option is set or a segment arrives, and a connection whose peer
	// vanishes right after the handshake would otherwise never probe.
	ep.SocketOptions().SetKeepAlive(true)
	return gonet.NewTCPConn(&wq, ep), nil
}

// setKeepalive sets meshKeepalive's timing and the user timeout on a
// TCP endpoint (dialTCP turns keepalive on once connected).
func setKeepalive(ep tcpip.Endpoint) error {
	idle := tcpip.KeepaliveIdleOption(meshKeepalive.Idle)
	interval := tcpip.KeepaliveIntervalOption(meshKeepalive.Interval)
	if err := ep.SetSockOpt(&idle); err != nil {
		return fmt.Errorf("netstack: keepalive idle: %v", err)
	}
	if err := ep.SetSockOpt(&interval); err != nil {
		return fmt.Errorf("netstack: keepalive interval: %v", err)
	}
	if err := ep.SetSockOptInt(tcpip.KeepaliveCountOption, meshKeepalive.Count); err != nil {
		return fmt.Errorf("netstack: keepalive count: %v", err)
	}
	return setUserTimeout(ep)
}

// setUserTimeout bounds how long sent data may go unacknowledged.
func setUserTimeout(ep tcpip.Endpoint) error {
	ut := tcpip.TCPUserTimeoutOption(meshUserTimeout)
	if err := ep.SetSockOpt(&ut); err != nil {
		return fmt.Errorf("netstack: user timeout: %v", err)
	}
	return nil
}
