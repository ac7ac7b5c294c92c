package lockdown

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
)

// ifaces is what the rules need to know about the network interfaces:
// loopback and the mesh interface by index (names can be changed by
// anyone with CAP_NET_ADMIN), and the devices whose egress the packet
// filter hooks.
type ifaces struct {
	lo      int      // index of the loopback interface (1 in every namespace)
	loName  string   // its name, to report a rename
	mesh    int      // index of the mesh interface, 0 while it does not exist
	hooked  []string // devices the packet filter hooks, sorted
	skipped []string // devices it cannot hook, "name (why)", sorted
}

func (a ifaces) equal(b ifaces) bool {
	return a.lo == b.lo && a.loName == b.loName && a.mesh == b.mesh &&
		slices.Equal(a.hooked, b.hooked) && slices.Equal(a.skipped, b.skipped)
}

// diff says in words how b differs from a, for an event.
func (a ifaces) diff(b ifaces) string {
	var out []string
	if a.loName != b.loName {
		out = append(out, fmt.Sprintf("loopback (index %d) renamed %s -> %s", b.lo, a.loName, b.loName))
	}
	if a.mesh != b.mesh {
		out = append(out, fmt.Sprintf("mesh interface index %d -> %d", a.mesh, b.mesh))
	}
	for _, d := range b.hooked {
		if !slices.Contains(a.hooked, d) {
			out = append(out, "new device "+d)
		}
	}
	for _, d := range a.hooked {
		if !slices.Contains(b.hooked, d) {
			out = append(out, "device "+d+" gone or renamed")
		}
	}
	if len(out) == 0 && !slices.Equal(a.skipped, b.skipped) {
		out = append(out, "unhooked devices now "+strings.Join(b.skipped, ", "))
	}
	return strings.Join(out, "; ")
}

// readIfaces lists the interfaces of this network namespace.
func readIfaces(mesh string) (ifaces, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return ifaces{}, fmt.Errorf("list interfaces: %w", err)
	}
	out := ifaces{lo: 1}
	lower := map[int]bool{} // indexes that are the parent of another link
	for _, l := range links {
		switch l.Type() {
		case "vlan", "macvlan", "macvtap", "ipvlan", "ipvtap":
			lower[l.Attrs().ParentIndex] = true
		}
	}
	for _, l := range links {
		a := l.Attrs()
		switch {
		case a.Flags&net.FlagLoopback != 0:
			out.lo, out.loName = a.Index, a.Name
			continue
		case a.Name == mesh:
			out.mesh = a.Index
		}
		switch {
		case a.MasterIndex != 0:
			out.skipped = append(out.skipped, a.Name+" (enslaved: its master is hooked)")
		case lower[a.Index]:
			out.skipped = append(out.skipped, a.Name+" (lower device of a vlan or macvlan)")
		default:
			out.hooked = append(out.hooked, a.Name)
		}
	}
	slices.Sort(out.hooked)
	slices.Sort(out.skipped)
	return out, nil
}
