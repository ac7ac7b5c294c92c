package lockdown

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/moatmesh/moat/policy"
)

// Scope says how much of the machine the lockdown covers.
type Scope string

const (
	// ScopeHost locks down the whole machine: every process may send only
	// to loopback, the coordinator, mesh peers and what Config allows.
	ScopeHost Scope = "host"
	// ScopeService restricts only the inference server's processes
	// (Config.ServiceUID, Config.ServiceCgroup or Config.PodCgroups),
	// which may then talk to nothing but loopback. The rest of the
	// machine is left alone: on a Kubernetes node, the kubelet, the CNI
	// and image pulls.
	ScopeService Scope = "service"
)

// Default values of the Config fields whose zero value means "default".
const (
	DefaultMeshInterface = "moat0"
	DefaultWireGuardPort = 51820
	DefaultGuardPort     = 443
	DefaultInferencePort = 11434
	DefaultLogRate       = 10

	DefaultWatchInterval   = time.Second
	DefaultResolveInterval = 5 * time.Minute
)

// Config is everything the lockdown needs to know about the node. The
// node builds it from its own configuration and from the netmap; it is
// read once by Apply. Every field says what its zero value means.
type Config struct {
	// Scope is ScopeHost (the zero value) or ScopeService.
	Scope Scope

	// MeshInterface is the name of the WireGuard interface carrying mesh
	// traffic. Empty means DefaultMeshInterface ("moat0"). The interface
	// need not exist yet: rules match it by name until it exists and by
	// its index from then on (Watch re-applies when it appears, so a
	// renamed interface cannot take its place).
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

	// CoordinatorURL is the coordinator's API URL (https://host:port).
	// Apply resolves its host (an address is taken as is) and adds the
	// addresses with the URL's port to Coordinator's; Watch resolves it
	// again every ResolveInterval and updates the sets when the answer
	// changes. Empty means only Coordinator is allowed.
	CoordinatorURL string

	// CoordinatorUIDs, when not empty, are the only local users whose
	// sockets may open connections to the coordinator's API (per-uid
	// rules; the node's own service user, and 0 if it runs as root).
	// Empty means any local user may.
	CoordinatorUIDs []uint32

	// AllowDNS lists the resolvers the node may query (UDP and TCP port
	// 53). Empty means no DNS at all. The command layer defaults it to
	// SystemResolvers(): /etc/resolv.conf, or systemd-resolved's
	// upstream servers when that file names only a loopback stub.
	AllowDNS []netip.Addr

	// NTPServers are the time servers the node may reach (UDP port 123),
	// as addresses or host names; names are resolved like CoordinatorURL.
	// Empty means no NTP. The command layer defaults it to
	// SystemNTPServers() (chrony, systemd-timesyncd, ntpd configuration).
	NTPServers []string

	// Extra lists destination networks the admin allows for any protocol
	// and port (a package mirror, a time server). Empty means none.
	Extra []netip.Prefix

	// ExtraPorts lists single destinations (TCP and UDP to that address
	// and port) the admin allows. Empty means none.
	ExtraPorts []netip.AddrPort

	// AllowDHCP lets the host renew its address by DHCPv4 (UDP 68→67,
	// also from a packet socket as broadcast) and DHCPv6 (UDP 546→547 to
	// link-local and multicast addresses). False (the default) means
	// static addressing; the command layer defaults it to UsesDHCP().
	AllowDHCP bool

	// WireGuardExtra lists more underlay endpoints (UDP) the WireGuard
	// port may send to besides the peers' and the coordinator's: STUN
	// servers and relays. Empty means none.
	WireGuardExtra []netip.AddrPort

	// MeshEgress lists what local processes may open on the mesh: new
	// connections (TCP and UDP) to current peers inside Dst on Ports, as
	// the policy grants this node. Replies to the guard's and the
	// grants' inbound connections need no entry. Empty means the node
	// opens nothing on the mesh.
	MeshEgress []MeshRule

	// Upstreams are inference servers in containers (vLLM or TGI under
	// Docker): the host may open TCP connections to these addresses and
	// ports; everything the containers at these addresses send on their
	// own is dropped, and nothing from elsewhere may reach them. Empty
	// means none.
	Upstreams []netip.AddrPort

	// Forward lists the destinations (TCP and UDP to that address and
	// port) that forwarded traffic, from containers or namespaces behind
	// the node, may reach in host scope; all other forwarded traffic is
	// dropped. Upstreams' own traffic is dropped even to these. Empty
	// means nothing is forwarded.
	Forward []netip.AddrPort

	// ServiceUID is the user id the inference server runs as. Its
	// packets may leave only through loopback, in either scope. 0 means
	// no uid is matched (the inference server must not run as root).
	ServiceUID uint32

	// ServiceCgroup is the inference server's cgroup v2 path relative to
	// the cgroup2 mount, e.g. "system.slice/ollama.service"; its packets
	// are restricted like ServiceUID's (socket cgroupv2). The cgroup must
	// exist when Apply runs. Empty means no cgroup is matched.
	ServiceCgroup string

	// PodCgroups are cgroup v2 path patterns (relative to the cgroup2
	// mount; path.Match syntax within each level), e.g.
	// "kubepods.slice/*/kubepods-*-pod1f0c*.slice": every cgroup they
	// match, with everything below it, is held like ServiceCgroup
	// (loopback only, besides PodAllow and PodAllowPorts), in either
	// scope. Apply holds the matches of the moment (none is no error:
	// the pods may start later); Watch holds new ones as soon as they
	// are created (inotify on the directories they appear in, and a new
	// match every WatchInterval) and drops gone ones, re-applying the
	// tables each time. Only sockets in this network namespace are
	// matched: the pods must share the host's (hostNetwork). Empty means
	// none.
	PodCgroups []string

	// PodSource, when set, names more pods to hold as they come and go
	// (the Kubernetes API's pods on this node with a label, see
	// package kubepods): Watch runs it until ctx ends, and every update
	// it gives replaces the patterns held besides PodCgroups. Until its
	// first update, and whenever it fails, the lockdown is not Healthy
	// (the pods it would name are not known). Nil means none.
	PodSource PodSource `json:"-"`

	// PodAllow lists networks PodCgroups' processes may reach on any
	// port besides loopback (a model mirror, the cluster's DNS). Empty
	// means none.
	PodAllow []netip.Prefix

	// PodAllowPorts lists addresses and ports (TCP and UDP)
	// PodCgroups' processes may reach besides loopback. Empty means
	// none.
	PodAllowPorts []netip.AddrPort

	// MCPEgress confines the node's stdio MCP servers, each to the
	// destinations its policy entry declares (see MCPEgress). Default:
	// none.
	MCPEgress []MCPEgress

	// NetworkGrants open ports on MeshInterface to the given peer mesh
	// prefixes (TCP and UDP), for grants such as "tag:gpu:22"; pass the
	// node's compiled policy.NodeRules.Filter. A source must also be a
	// current peer's mesh address. Empty means only GuardPort is open.
	NetworkGrants []policy.FilterRule

	// WatchInterval is how often Watch reads the table and the interfaces
	// back besides reacting to nftables change notifications. 0 means
	// DefaultWatchInterval (1s).
	WatchInterval time.Duration `json:",omitempty"`

	// ResolveInterval is how often Watch resolves CoordinatorURL's host
	// and NTPServers' names again. 0 means DefaultResolveInterval (5m).
	ResolveInterval time.Duration `json:",omitempty"`

	// Lookup resolves a host name. Nil means net.DefaultResolver.
	Lookup func(ctx context.Context, host string) ([]netip.Addr, error) `json:"-"`

	// LogRate is how many dropped packets per minute and per category are
	// logged to the kernel log (prefix "moat drop <category>: ").
	// 0 means DefaultLogRate (10); negative disables logging.
	LogRate int
}

// MeshRule allows new connections over the mesh to the current peers
// inside Dst, on Ports (TCP and UDP).
type MeshRule struct {
	Dst   []netip.Prefix
	Ports []policy.PortRange
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
	if c.WatchInterval <= 0 {
		c.WatchInterval = DefaultWatchInterval
	}
	if c.ResolveInterval <= 0 {
		c.ResolveInterval = DefaultResolveInterval
	}
	return c, c.validate()
}

func (c Config) validate() error {
	var errs []error
	switch c.Scope {
	case ScopeHost:
	case ScopeService:
		if c.ServiceUID == 0 && c.ServiceCgroup == "" && len(c.PodCgroups) == 0 && c.PodSource == nil {
			errs = append(errs, errors.New(`scope "service" needs ServiceUID, ServiceCgroup, PodCgroups or PodSource: run the inference server as its own user`))
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
	errs = append(errs, checkAddrPorts("wireguard extra endpoint", c.WireGuardExtra)...)
	errs = append(errs, checkAddrPorts("upstream", c.Upstreams)...)
	errs = append(errs, checkAddrPorts("forward destination", c.Forward)...)
	errs = append(errs, checkMCPEgress(c.MCPEgress)...)
	errs = append(errs, checkPodCgroups(c)...)
	if c.CoordinatorURL != "" {
		if _, _, err := splitUpstream(c.CoordinatorURL); err != nil {
			errs = append(errs, fmt.Errorf("coordinator URL %q: %w", c.CoordinatorURL, err))
		}
	}
	for _, n := range c.NTPServers {
		if n == "" || strings.ContainsAny(n, " /:") && !isAddr(n) {
			errs = append(errs, fmt.Errorf("NTP server %q is not a host name or address", n))
		}
	}
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
		errs = append(errs, checkRanges("network grant", g.Ports)...)
	}
	for _, m := range c.MeshEgress {
		errs = append(errs, checkRanges("mesh egress", m.Ports)...)
		for _, p := range m.Dst {
			if !p.IsValid() {
				errs = append(errs, fmt.Errorf("mesh egress destination %v is not valid", p))
			}
		}
	}
	return errors.Join(errs...)
}

func checkRanges(what string, rs []policy.PortRange) []error {
	var errs []error
	for _, r := range rs {
		if r.First > r.Last {
			errs = append(errs, fmt.Errorf("%s port range %d-%d is empty", what, r.First, r.Last))
		}
	}
	return errs
}

func isAddr(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
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
