package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// The sock_diag exact lookup (linux/inet_diag.h): an inet_diag_req_v2
// whose id names one socket, answered by one inet_diag_msg or an error.
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	reqLen           = unix.NLMSG_HDRLEN + 56
	sockIDLen        = 48
	msgUIDOffset     = 4 + sockIDLen + 12 // family, state, timer, retrans; id; expires, rqueue, wqueue
	tcpTimeWait      = 6
	tcpListen        = 10
	tcpNewSynRecv    = 12
)

// loopbackUID looks up the socket whose own end is the peer (remote) and
// whose far end is us (local).
func loopbackUID(local, remote netip.AddrPort) (uint32, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, fmt.Errorf("peercred: netlink: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: 1}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("peercred: netlink: %w", err)
	}
	id := sockID(remote, local)
	if err := unix.Sendto(fd, request(remote.Addr().Is4(), id), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("peercred: sock_diag request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return 0, fmt.Errorf("peercred: sock_diag answer: %w", err)
	}
	return parseAnswer(buf[:n], remote, local)
}

// sockID is an inet_diag_sockid for the socket bound to src and
// connected to dst: ports and addresses in network order, any interface,
// no cookie.
func sockID(src, dst netip.AddrPort) []byte {
	b := make([]byte, sockIDLen)
	binary.BigEndian.PutUint16(b[0:], src.Port())
	binary.BigEndian.PutUint16(b[2:], dst.Port())
	copy(b[4:20], addrBytes(src.Addr()))
	copy(b[20:36], addrBytes(dst.Addr()))
	binary.NativeEndian.PutUint32(b[40:], ^uint32(0)) // INET_DIAG_NOCOOKIE
	binary.NativeEndian.PutUint32(b[44:], ^uint32(0))
	return b
}

func addrBytes(a netip.Addr) []byte {
	if a.Is4() {
		v := a.As4()
		return v[:]
	}
	v := a.As16()
	return v[:]
}

// request is the netlink message asking for the one TCP socket id.
func request(v4 bool, id []byte) []byte {
	b := make([]byte, reqLen)
	binary.NativeEndian.PutUint32(b[0:], reqLen)
	binary.NativeEndian.PutUint16(b[4:], sockDiagByFamily)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST)
	b[16] = unix.AF_INET6
	if v4 {
		b[16] = unix.AF_INET
	}
	b[17] = unix.IPPROTO_TCP
	binary.NativeEndian.PutUint32(b[20:], ^uint32(0)) // every state; the answer's is checked
	copy(b[24:], id)
	return b
}

// parseAnswer reads the uid from the kernel's answer, refusing anything
// but a connected socket bound to src and connected to dst.
func parseAnswer(b []byte, src, dst netip.AddrPort) (uint32, error) {
	if len(b) < unix.NLMSG_HDRLEN {
		return 0, errors.New("peercred: short sock_diag answer")
	}
	switch typ := binary.NativeEndian.Uint16(b[4:]); typ {
	case unix.NLMSG_ERROR:
		if len(b) >= unix.NLMSG_HDRLEN+4 {
			if errno := unix.Errno(-int32(binary.NativeEndian.Uint32(b[unix.NLMSG_HDRLEN:]))); errno == unix.ENOENT {
				return 0, ErrNotFound
			} else if errno != 0 {
				return 0, fmt.Errorf("peercred: sock_diag: %w", errno)
			}
		}
		return 0, ErrNotFound
	case sockDiagByFamily:
	default:
		return 0, fmt.Errorf("peercred: unexpected netlink message type %d", typ)
	}
	msg := b[unix.NLMSG_HDRLEN:]
	if len(msg) < msgUIDOffset+4 {
		return 0, errors.New("peercred: short inet_diag_msg")
	}
	if state := msg[1]; state == tcpListen || state == tcpTimeWait || state == tcpNewSynRecv {
		return 0, ErrNotFound
	}
	if gotSrc, gotDst := answerID(msg); gotSrc != src || gotDst != dst {
		return 0, fmt.Errorf("peercred: sock_diag answered for another socket (%s → %s)", gotSrc, gotDst)
	}
	return binary.NativeEndian.Uint32(msg[msgUIDOffset:]), nil
}

// answerID reads the two ends of the socket an inet_diag_msg describes,
// IPv4-mapped addresses unmapped.
func answerID(msg []byte) (src, dst netip.AddrPort) {
	id := msg[4 : 4+sockIDLen]
	addr := func(b []byte) netip.Addr {
		if msg[0] == unix.AF_INET {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		return netip.AddrFrom16([16]byte(b[:16])).Unmap()
	}
	src = netip.AddrPortFrom(addr(id[4:20]), binary.BigEndian.Uint16(id[0:]))
	dst = netip.AddrPortFrom(addr(id[20:36]), binary.BigEndian.Uint16(id[2:]))
	return src, dst
}
