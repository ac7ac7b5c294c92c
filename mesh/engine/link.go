package engine

import (
	"context"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/stack/gro"
)

const (
	// linkQueueLen bounds the packets the stack may queue for WireGuard;
	// past it the stack sees ErrNoBufferSpace and TCP backs off.
	linkQueueLen = 1024
	// gsoMaxSize is the largest TCP segment the stack hands us to split.
	gsoMaxSize = 65535
)

// linkEndpoint connects the gVisor stack to wireguard-go.
//
// Outbound, the stack writes TCP segments of up to 64 KiB (host GSO) into
// a queue that the device's single reader drains in batches, splitting
// them into MTU-sized packets (see gso.go). Inbound, a batch of decrypted
// packets is coalesced per TCP flow (GRO) before it enters the stack. Both
// cut the stack's per-packet work by an order of magnitude.
type linkEndpoint struct {
	mtu   uint32
	ready chan struct{} // signalled (cap 1) when q becomes non-empty

	mu struct {
		sync.Mutex
		q          []*stack.PacketBuffer
		closed     bool
		dispatcher stack.NetworkDispatcher
	}

	gros sync.Pool // of *gro.GRO; Write may be called by several peers at once
}

func newLinkEndpoint(mtu int) *linkEndpoint {
	ep := &linkEndpoint{mtu: uint32(mtu), ready: make(chan struct{}, 1)}
	ep.gros.New = func() any {
		g := new(gro.GRO)
		g.Init(true)
		return g
	}
	return ep
}

// WritePackets queues the stack's outbound packets for wireguard-go.
func (ep *linkEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.mu.closed {
		return 0, &tcpip.ErrClosedForSend{}
	}
	n := 0
	for _, pkt := range pkts.AsSlice() {
		if len(ep.mu.q) >= linkQueueLen {
			break
		}
		ep.mu.q = append(ep.mu.q, pkt.IncRef())
		n++
	}
	if n > 0 {
		select {
		case ep.ready <- struct{}{}:
		default:
		}
	}
	if n == 0 {
		return 0, &tcpip.ErrNoBufferSpace{}
	}
	return n, nil
}

// next blocks until a packet is queued and returns it, or nil once ctx is
// done or the endpoint is closed. The caller owns the reference.
func (ep *linkEndpoint) next(ctx context.Context) *stack.PacketBuffer {
	for {
		if pkt := ep.poll(); pkt != nil {
			return pkt
		}
		select {
		case <-ep.ready:
		case <-ctx.Done():
			return nil
		}
	}
}

// poll returns the next queued packet without blocking, or nil.
func (ep *linkEndpoint) poll() *stack.PacketBuffer {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if len(ep.mu.q) == 0 || ep.mu.closed {
		return nil
	}
	pkt := ep.mu.q[0]
	ep.mu.q[0] = nil
	ep.mu.q = ep.mu.q[1:]
	if len(ep.mu.q) == 0 {
		ep.mu.q = ep.mu.q[:0:0] // let the backing array go
	}
	return pkt
}

// unread puts pkt back at the head of the queue.
func (ep *linkEndpoint) unread(pkt *stack.PacketBuffer) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.mu.closed {
		pkt.DecRef()
		return
	}
	ep.mu.q = append([]*stack.PacketBuffer{pkt}, ep.mu.q...)
}

// inject delivers a batch of decrypted packets to the stack, coalescing
// segments of the same TCP flow. WireGuard has authenticated every byte
// (ChaCha20-Poly1305), so checksums are not verified again — the kernel's
// WireGuard marks such packets CHECKSUM_UNNECESSARY for the same reason.
func (ep *linkEndpoint) inject(bufs [][]byte, offset int) {
	ep.mu.Lock()
	d := ep.mu.dispatcher
	ep.mu.Unlock()
	if d == nil {
		return
	}
	g := ep.gros.Get().(*gro.GRO)
	g.Dispatcher = d
	for _, b := range bufs {
		p := b[offset:]
		if len(p) == 0 {
			continue
		}
		var proto tcpip.NetworkProtocolNumber
		switch header.IPVersion(p) {
		case header.IPv4Version:
			proto = header.IPv4ProtocolNumber
		case header.IPv6Version:
			proto = header.IPv6ProtocolNumber
		default:
			continue
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p)})
		pkt.NetworkProtocolNumber = proto
		pkt.RXChecksumValidated = true
		g.Enqueue(pkt)
		pkt.DecRef()
	}
	g.Flush()
	g.Dispatcher = nil
	ep.gros.Put(g)
}

// Close drops queued packets; Read returns no more.
func (ep *linkEndpoint) Close() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.mu.closed = true
	for _, pkt := range ep.mu.q {
		pkt.DecRef()
	}
	ep.mu.q = nil
	ep.mu.dispatcher = nil
}

// Attach implements stack.LinkEndpoint.
func (ep *linkEndpoint) Attach(d stack.NetworkDispatcher) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	ep.mu.dispatcher = d
}

// IsAttached implements stack.LinkEndpoint.
func (ep *linkEndpoint) IsAttached() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.mu.dispatcher != nil
}

func (ep *linkEndpoint) MTU() uint32                             { return ep.mtu }
func (ep *linkEndpoint) SetMTU(uint32)                           {}
func (ep *linkEndpoint) MaxHeaderLength() uint16                 { return 0 }
func (ep *linkEndpoint) LinkAddress() tcpip.LinkAddress          { return "" }
func (ep *linkEndpoint) SetLinkAddress(tcpip.LinkAddress)        {}
func (ep *linkEndpoint) Wait()                                   {}
func (ep *linkEndpoint) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }
func (ep *linkEndpoint) AddHeader(*stack.PacketBuffer)           {}
func (ep *linkEndpoint) ParseHeader(*stack.PacketBuffer) bool    { return true }
func (ep *linkEndpoint) SetOnCloseAction(func())                 {}
func (ep *linkEndpoint) GSOMaxSize() uint32                      { return gsoMaxSize }
func (ep *linkEndpoint) SupportedGSO() stack.SupportedGSO        { return stack.HostGSOSupported }

// Capabilities implements stack.LinkEndpoint: inbound checksums need no
// check (see inject).
func (ep *linkEndpoint) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

var _ stack.GSOEndpoint = (*linkEndpoint)(nil)
var _ stack.LinkEndpoint = (*linkEndpoint)(nil)
