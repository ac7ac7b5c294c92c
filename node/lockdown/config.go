package lockdown

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/moatmesh/moat/policy"
)

// Scope says how much of the machine the lockdown covers.
type Scope string

const (
	// ScopeHost locks down the whole machine: every process may send only
	// to loopback, the coordinator, mesh peers and what Config allows.
	ScopeHost Scope = "host"
	// ScopeService restricts only the inference server's processes
	// (Config.ServiceUID or Config.ServiceCgroup), which may then talk to
	// nothing but loopback. The rest of the machine is left alone.
	ScopeService Scope = "service"
)

// Default values of the Config fields whose zero value means "default".
const (
	DefaultMeshInterface = "moat0"
	DefaultWireGuardPort = 51820
	DefaultGuardPort     = 443
	DefaultInferencePort = 11434
	DefaultLogRate       = 10
)

// Config is everything the lockdown needs to know about the node. The
// node builds it from its own configuration and from the netmap; it is
// read once by Apply. Every field says what its zero value means.
type Config struct {
	// Scope is ScopeHost (the zero value) or ScopeService.
	Scope Scope

	// MeshInterface is the name of the WireGuard interface carrying mesh
	// traffic. Empty means DefaultMeshInterface ("moat0"). The interface
	// need not exist yet: rules match it by name.
	MeshInterface string

	// WireGuardPort is the local UDP port WireGuard listens on; it is open
	// for input, and outbound underlay UDP must come from it. 0 means
	// DefaultWireGuardPort (51820).
	WireGuardPort uint16

	// GuardPort is the TCP port of the guard on the mesh addresses, open
	// on MeshInterface to allowed peers only. 0 means DefaultGuardPort (443).
	GuardPort uint16

	// InferencePorts are the TCP ports of the local inference servers;
	// they are dropped on every interface but loopback, in both scopes.
	// Empty means []uint16{DefaultInferencePort} (11434, ollama's).
	InferencePorts []uint16

	// Coordinator lists the coordinator's API addresses (TCP). Empty means
	// the node cannot reach its coordinator except through Extra.
	Coordinator []netip.AddrPort

	// CoordinatorWireGuard lists the coordinator's WireGuard underlay
	// endpoints (UDP) when it is a mesh member. They stay in the endpoint
	// sets whatever UpdatePeers is given. Empty means none.
	CoordinatorWireGuard []netip.AddrPort

	// AllowDNS lists the resolvers the node may query (UDP and TCP port
	// 53). Empty means no DNS at all: name every host by address.
	AllowDNS []netip.Addr

	// Extra lists destination networks the admin allows for any protocol
	// and port (a package mirror, a time server). Empty means none.
	Extra []netip.Prefix

	// ExtraPorts lists single destinations (TCP and UDP to that address
	// and port) the admin allows. Empty means none.
	ExtraPorts []netip.AddrPort

	// AllowDHCP lets the host renew its address by DHCPv4 (UDP 68→67)
	// and DHCPv6 (UDP 546→547). False (the default) means static
	// addressing is assumed.
	AllowDHCP bool

	// ServiceUID is the user id the inference server runs as. Its
	// packets may leave only through loopback, in either scope. 0 means
	// no uid is matched (the inference server must not run as root).
	ServiceUID uint32

	// ServiceCgroup is the inference server's cgroup v2 path relative to
	// the cgroup2 mount, e.g. "system.slice/ollama.service"; its packets
	// are restricted like ServiceUID's (socket cgroupv2). The cgroup must
	// exist when Apply runs. Empty means no cgroup is matched.
	ServiceCgroup string

	// NetworkGrants open ports on MeshInterface to the given peer mesh
	// prefixes (TCP and UDP), for grants such as "tag:gpu:22"; pass the
	// node's compiled policy.NodeRules.Filter. A source must also be a
	// current peer's mesh address. Empty means only GuardPort is open.
	NetworkGrants []policy.FilterRule

	// LogRate is how many dropped packets per minute and per category are
	// logged to the kernel log (prefix "moat drop <category>: ").
	// 0 means DefaultLogRate (10); negative disables logging.
	LogRate int
}

// Peer is one mesh peer as the lockdown sees it: the addresses it has on
// the mesh and the underlay endpoints its WireGuard packets come from.
type Peer struct {
	Addresses []netip.Addr
	Endpoints []netip.AddrPort
}

// withDefaults returns c with defaults filled in, or an error saying
// which field is wrong.
func (c Config) withDefaults() (Config, error) {
	if c.Scope == "" {
		c.Scope = ScopeHost
	}
	if c.MeshInterface == "" {
		c.MeshInterface = DefaultMeshInterface
	}
	if c.WireGuardPort == 0 {
		c.WireGuardPort = DefaultWireGuardPort
	}
	if c.GuardPort == 0 {
		c.GuardPort = DefaultGuardPort
	}
	if len(c.InferencePorts) == 0 {
		c.InferencePorts = []uint16{DefaultInferencePort}
	}
	if c.LogRate == 0 {
		c.LogRate = DefaultLogRate
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	switch c.Scope {
	case ScopeHost:
	case ScopeService:
		if c.ServiceUID == 0 && c.ServiceCgroup == "" {
			errs = append(errs, errors.New(`scope "service" needs ServiceUID or ServiceCgroup: run the inference server as its own user`))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown scope %q: want %q or %q", c.Scope, ScopeHost, ScopeService))
	}
	if len(c.MeshInterface) >= 16 || strings.ContainsAny(c.MeshInterface, "/ \x00") {
		errs = append(errs, fmt.Errorf("mesh interface %q is not a valid interface name", c.MeshInterface))
	}
	for _, p := range c.InferencePorts {
		if p == 0 || p == c.GuardPort {
			errs = append(errs, fmt.Errorf("inference port %d must be nonzero and differ from the guard port", p))
		}
	}
	errs = append(errs, checkAddrPorts("coordinator", c.Coordinator)...)
	errs = append(errs, checkAddrPorts("coordinator wireguard endpoint", c.CoordinatorWireGuard)...)
	errs = append(errs, checkAddrPorts("extra destination", c.ExtraPorts)...)
	for _, a := range c.AllowDNS {
		if !a.IsValid() || a.Zone() != "" {
			errs = append(errs, fmt.Errorf("resolver %v is not a plain IP address", a))
		}
	}
	for _, p := range c.Extra {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("extra network %v is not valid", p))
		}
	}
	for _, g := range c.NetworkGrants {
		for _, r := range g.Ports {
			if r.First > r.Last {
				errs = append(errs, fmt.Errorf("network grant port range %d-%d is empty", r.First, r.Last))
			}
		}
	}
	return errors.Join(errs...)
}

func checkAddrPorts(what string, aps []netip.AddrPort) []error {
	var errs []error
	for _, ap := range aps {
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().Zone() != "" {
			errs = append(errs, fmt.Errorf("%s %v needs an IP address without zone and a nonzero port", what, ap))
		}
	}
	return errs
}
