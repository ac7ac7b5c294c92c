package lockdown

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The escape tests' agent commands: attempts to get data out (each
// carries the marker), a capture that counts the frames carrying it,
// and a running Watch.

const marker = "moatleak"

func escapeDo(ld *Lockdown, verb string, f []string) (string, error) {
	switch verb {
	case "send": // send ADDR: one UDP datagram with the marker, no answer awaited
		return attempt(sendUDP(f[0], marker))
	case "barrier": // barrier ADDR NAME: a datagram the capture waits for
		return "ok", sendUDP(f[0], f[1])
	case "rawudp": // rawudp SRC DST: an IPv4 UDP packet built by hand
		return attempt(rawUDP(netip.MustParseAddrPort(f[0]), netip.MustParseAddrPort(f[1])))
	case "nd": // nd TYPE DST IFACE: ICMPv6 ND with hop limit 255 and the marker in an option
		typ, _ := strconv.Atoi(f[0])
		return attempt(sendND(byte(typ), netip.MustParseAddr(f[1]), f[2]))
	case "packet": // packet IFACE ETHERTYPE BYPASS: a frame from an AF_PACKET socket
		et, _ := strconv.ParseUint(f[1], 0, 16)
		return attempt(sendFrame(f[0], uint16(et), f[2] == "bypass"))
	case "capture":
		return "ok", startCapture(f[0])
	case "leaks": // leaks BARRIER: frames with the marker once BARRIER was seen
		return leaks(f[0])
	case "watch":
		startWatch(ld)
		return "ok", nil
	case "unwatch":
		watched.stop()
		<-watched.done
		return "ok", nil
	case "events":
		return watchEvents(), nil
	case "healthyat":
		watched.Lock()
		defer watched.Unlock()
		return strings.Join(watched.healthyAt, " "), nil
	case "atloss":
		watched.Lock()
		defer watched.Unlock()
		return strings.Join(watched.atLoss, "; "), nil
	case "packetfilter":
		hooked, skipped, err := ld.PacketFilter()
		return fmt.Sprintf("hooked %v skipped %v", hooked, skipped), err
	case "healthy":
		ok, why := ld.Healthy()
		return fmt.Sprintf("%v %s", ok, why), nil
	}
	return "", fmt.Errorf("unknown command %q", verb)
}

// attempt is the answer to an escape attempt: a send the lockdown
// refused (EPERM from a netfilter drop, ENOBUFS from a netdev drop) is what should happen, and the
// capture decides; other errors mean the attempt was not made.
func attempt(err error) (string, error) {
	if err == nil || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOBUFS) {
		return "ok", nil
	}
	return "", err
}

func sendUDP(addr, payload string) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(payload))
	return err
}

func rawUDP(src, dst netip.AddrPort) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_RAW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	payload := []byte(marker)
	pkt := make([]byte, 28, 28+len(payload))
	pkt[0], pkt[8], pkt[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(pkt[2:], uint16(28+len(payload)))
	copy(pkt[12:16], src.Addr().AsSlice())
	copy(pkt[16:20], dst.Addr().AsSlice())
	binary.BigEndian.PutUint16(pkt[20:], src.Port())
	binary.BigEndian.PutUint16(pkt[22:], dst.Port())
	binary.BigEndian.PutUint16(pkt[24:], uint16(8+len(payload)))
	pkt = append(pkt, payload...)
	return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.Addr().As4()})
}

func sendND(typ byte, dst netip.Addr, iface string) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW, unix.IPPROTO_ICMPV6)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, o := range []int{unix.IPV6_MULTICAST_HOPS, unix.IPV6_UNICAST_HOPS} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, o, 255); err != nil {
			return err
		}
	}
	msg := make([]byte, 24) // type, code, checksum (the kernel's), reserved, target
	msg[0] = typ
	copy(msg[8:], dst.AsSlice())
	opt := append([]byte{200, 2}, []byte(marker+"-payload")...) // an unknown option: 16 bytes
	msg = append(msg, opt...)
	return unix.Sendto(fd, msg, 0, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(ifi.Index)})
}

// packetSocket opens an AF_PACKET socket for every protocol.
func packetSocket(iface string) (int, *net.Interface, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return -1, nil, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	return fd, ifi, err
}

func sendFrame(iface string, ethertype uint16, bypass bool) error {
	fd, ifi, err := packetSocket(iface)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if bypass {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_QDISC_BYPASS, 1); err != nil {
			return err
		}
	}
	frame := append(bytes.Repeat([]byte{0xff}, 6), ifi.HardwareAddr...)
	frame = binary.BigEndian.AppendUint16(frame, ethertype)
	frame = append(frame, make([]byte, 28)...) // an IPv4 or ARP header's worth
	frame = append(frame, []byte(marker)...)
	sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(ethertype), Halen: 6}
	copy(sa.Addr[:], bytes.Repeat([]byte{0xff}, 6))
	return unix.Sendto(fd, frame, 0, sa)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

var capture struct {
	sync.Mutex
	leaks    int
	barriers map[string]chan struct{} // closed when seen
}

// barrierLocked returns the channel of barrier name.
func barrierLocked(name string) chan struct{} {
	if capture.barriers == nil {
		capture.barriers = map[string]chan struct{}{}
	}
	ch, ok := capture.barriers[name]
	if !ok {
		ch = make(chan struct{})
		capture.barriers[name] = ch
	}
	return ch
}

// startCapture counts, on iface, the frames that carry the marker and
// notes the barriers ("moatbarrier-N") it sees.
func startCapture(iface string) error {
	fd, ifi, err := packetSocket(iface)
	if err != nil {
		return err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index, Protocol: htons(unix.ETH_P_ALL)}); err != nil {
		return err
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return
			}
			capture.Lock()
			if bytes.Contains(buf[:n], []byte(marker)) {
				capture.leaks++
			}
			if i := bytes.Index(buf[:n], []byte("moatbarrier-")); i >= 0 {
				ch := barrierLocked(string(buf[i:n]))
				select {
				case <-ch:
				default:
					close(ch)
				}
			}
			capture.Unlock()
		}
	}()
	return nil
}

// leaks waits for the barrier and returns how many frames carried the
// marker until then. Frames from one sender arrive in order, and the
// barrier is sent after the attempts.
func leaks(barrier string) (string, error) {
	capture.Lock()
	ch := barrierLocked(barrier)
	capture.Unlock()
	select {
	case <-ch:
	case <-time.After(3 * time.Second):
		return "", fmt.Errorf("barrier %s not seen within 3s", barrier)
	}
	capture.Lock()
	defer capture.Unlock()
	return strconv.Itoa(capture.leaks), nil
}

var watched struct {
	sync.Mutex
	events []Event
	stop   context.CancelFunc
	done   chan struct{}
	// atLoss is, for each loss reported, what held while it was being
	// reported: Healthy's answer and whether the table was still missing.
	atLoss []string
	// healthyAt is, for each event, Healthy's answer while it was being
	// reported ("kind=true"), as a node's guard would see it.
	healthyAt []string
}

func startWatch(ld *Lockdown) {
	ctx, cancel := context.WithCancel(context.Background())
	watched.stop, watched.done = cancel, make(chan struct{})
	go func() {
		defer close(watched.done)
		ld.Watch(ctx, func(e Event) {
			state := ""
			if e.Kind == EventLost {
				ok, _ := ld.Healthy()
				_, err := fingerprint()
				state = fmt.Sprintf("healthy=%v missing=%v", ok, errors.Is(err, ErrNotApplied))
			}
			ok, _ := ld.Healthy()
			watched.Lock()
			watched.healthyAt = append(watched.healthyAt, fmt.Sprintf("%s=%v", e.Kind, ok))
			watched.events = append(watched.events, e)
			if state != "" {
				watched.atLoss = append(watched.atLoss, state)
			}
			watched.Unlock()
		})
	}()
}

func watchEvents() string {
	watched.Lock()
	defer watched.Unlock()
	js, _ := json.Marshal(watched.events)
	return string(js)
}
