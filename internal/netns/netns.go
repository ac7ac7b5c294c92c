// Package netns makes throwaway network namespaces joined by veth pairs,
// for the tests and benchmarks that need a real kernel network: TUN
// devices, nftables, several hosts on one machine. It drives iproute2's
// `ip`, so what it does can be repeated by hand.
package netns

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
)

// Unavailable says why namespaces cannot be made here, or "" if they can.
func Unavailable() string {
	if os.Geteuid() != 0 {
		return "needs root for network namespaces (run `sudo make test`; CI runs as root)"
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "needs iproute2's `ip` (apt-get install iproute2)"
	}
	return ""
}

// NS is a named network namespace with its loopback up.
type NS struct{ Name string }

var seq atomic.Int64

// New creates a namespace whose name starts with prefix and is unique to
// this process.
func New(prefix string) (*NS, error) {
	n := &NS{Name: fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))}
	if err := ip("netns", "add", n.Name); err != nil {
		return nil, err
	}
	if err := n.IP("link", "set", "lo", "up"); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Close deletes the namespace and every interface in it.
func (n *NS) Close() error { return ip("netns", "del", n.Name) }

// IP runs `ip ARGS` inside the namespace.
func (n *NS) IP(args ...string) error {
	return ip(append([]string{"-n", n.Name}, args...)...)
}

// Command returns a command that runs inside the namespace.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Veth joins a and b with a veth pair named ifa/ifb, gives each end its
// address and brings both up.
func Veth(a *NS, ifa string, addrA netip.Prefix, b *NS, ifb string, addrB netip.Prefix) error {
	tmpA, tmpB := fmt.Sprintf("mv%d-%d", os.Getpid(), seq.Add(1)), fmt.Sprintf("mv%d-%d", os.Getpid(), seq.Add(1))
	steps := [][]string{
		{"link", "add", tmpA, "type", "veth", "peer", "name", tmpB},
		{"link", "set", tmpA, "netns", a.Name, "name", ifa},
		{"link", "set", tmpB, "netns", b.Name, "name", ifb},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			ip("link", "del", tmpA)
			return err
		}
	}
	for _, end := range []struct {
		ns   *NS
		dev  string
		addr netip.Prefix
	}{{a, ifa, addrA}, {b, ifb, addrB}} {
		if err := end.ns.IP("addr", "add", end.addr.String(), "dev", end.dev); err != nil {
			return err
		}
		if err := end.ns.IP("link", "set", end.dev, "up"); err != nil {
			return err
		}
	}
	return nil
}

func ip(args ...string) error {
	var out bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}
