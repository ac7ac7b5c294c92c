package lockdown

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// probe tries one exchange with addr and returns nil only if it got the
// expected answer: "hi" over TCP, its own datagram back over UDP, an echo
// reply over ICMP. src, if not empty, is the local address (TCP/UDP
// host:port) to send from.
func probe(kind, addr, src string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	switch kind {
	case "tcp", "udp":
		d := net.Dialer{Deadline: deadline}
		if src != "" {
			ap, err := netip.ParseAddrPort(src)
			if err != nil {
				return err
			}
			if kind == "tcp" {
				d.LocalAddr = net.TCPAddrFromAddrPort(ap)
			} else {
				d.LocalAddr = net.UDPAddrFromAddrPort(ap)
			}
		}
		c, err := d.Dial(kind, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(deadline)
		return exchange(kind, c)
	case "icmp":
		return ping(netip.MustParseAddr(addr), deadline)
	}
	return fmt.Errorf("unknown probe %q", kind)
}

func exchange(kind string, c net.Conn) error {
	if kind == "tcp" {
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		if line != "hi\n" {
			return fmt.Errorf("got %q", line)
		}
		return nil
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 16)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if string(buf[:n]) != "ping" {
		return fmt.Errorf("got %q", buf[:n])
	}
	return nil
}

// ping sends one ICMP echo over an unprivileged ping socket (the test
// widens net.ipv4.ping_group_range in the namespace) and waits for the
// reply.
func ping(dst netip.Addr, deadline time.Time) error {
	network, typ, proto := "udp4", icmp.Type(ipv4.ICMPTypeEcho), 1
	if dst.Is6() {
		network, typ, proto = "udp6", ipv6.ICMPTypeEchoRequest, 58
	}
	c, err := icmp.ListenPacket(network, "")
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: os.Getpid() & 0xffff, Seq: 1, Data: []byte("moat")}}
	b, _ := msg.Marshal(nil)
	if _, err := c.WriteTo(b, &net.UDPAddr{IP: dst.AsSlice()}); err != nil {
		return err
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			return err
		}
		if m.Type == ipv4.ICMPTypeEchoReply || m.Type == ipv6.ICMPTypeEchoReply {
			return nil
		}
		if m.Type != typ {
			return errors.New("icmp: got " + fmt.Sprint(m.Type))
		}
	}
}
