package netns

import (
	"fmt"
	"net/netip"
	"os"
)

// Bridge creates a bridge named name inside sw (a namespace acting as a
// switch), with multicast snooping off so IPv6 neighbour discovery
// always floods, and brings it up.
func Bridge(sw *NS, name string) error {
	if err := sw.IP("link", "add", name, "type", "bridge", "mcast_snooping", "0"); err != nil {
		return err
	}
	return sw.IP("link", "set", name, "up")
}

// Attach plugs host into the bridge br of sw with a veth pair: the host
// end is named ifname and gets addrs (IPv6 ones without duplicate address
// detection, so they are usable at once); the switch end has no address.
func Attach(host *NS, ifname string, addrs []netip.Prefix, sw *NS, br string) error {
	tmpH, tmpS := fmt.Sprintf("mb%d-%d", os.Getpid(), seq.Add(1)), fmt.Sprintf("mb%d-%d", os.Getpid(), seq.Add(1))
	steps := [][]string{
		{"link", "add", tmpH, "type", "veth", "peer", "name", tmpS},
		{"link", "set", tmpH, "netns", host.Name, "name", ifname},
		{"link", "set", tmpS, "netns", sw.Name},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			ip("link", "del", tmpH)
			return err
		}
	}
	if err := sw.IP("link", "set", tmpS, "master", br, "up"); err != nil {
		return err
	}
	if err := AddAddrs(host, ifname, addrs...); err != nil {
		return err
	}
	return host.IP("link", "set", ifname, "up")
}

// AddAddrs gives dev in n the addresses addrs; IPv6 ones skip duplicate
// address detection.
func AddAddrs(n *NS, dev string, addrs ...netip.Prefix) error {
	for _, a := range addrs {
		args := []string{"addr", "add", a.String(), "dev", dev}
		if a.Addr().Is6() {
			args = append(args, "nodad")
		}
		if err := n.IP(args...); err != nil {
			return err
		}
	}
	return nil
}
