package main

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/node/lockdown/kubepods"
)

// defaultLockdown is the lockdown of `join` and `run` when none is given.
const defaultLockdown = "host"

// none, given to --lockdown-dns or --lockdown-ntp, allows no server at all.
const none = "none"

// lockdownSettings are the lockdown's flags, all named --lockdown-*.
type lockdownSettings struct {
	scope                      string
	dns, ntp, allow, upstreams []string
	dhcp                       string
	serviceUser, serviceCgroup string
	podCgroups, podAllow       []string
	podSelector, podNode       string
}

func (ls *lockdownSettings) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&ls.scope, "lockdown", defaultLockdown, "nftables lockdown: host (the whole machine may reach only the coordinator, the mesh and what the --lockdown-* flags allow), service (only the model server's user or cgroup is held to loopback) or off; needs CAP_NET_ADMIN")
	fs.StringSliceVar(&ls.dns, "lockdown-dns", nil, "resolvers the host may query, `ADDR`s, or none (default: the system's, from /etc/resolv.conf or systemd-resolved)")
	fs.StringSliceVar(&ls.ntp, "lockdown-ntp", nil, "time servers the host may reach, names or addresses, or none (default: chrony's, timesyncd's or ntpd's)")
	fs.StringSliceVar(&ls.allow, "lockdown-allow", nil, "more destinations the host may reach: `CIDR` (any port) or ADDR:PORT (TCP and UDP), e.g. a package mirror")
	fs.StringVar(&ls.dhcp, "lockdown-dhcp", "auto", "let the host renew a DHCP lease: auto (when it holds one), on or off")
	fs.StringSliceVar(&ls.upstreams, "lockdown-upstream", nil, "inference servers in containers the host may reach, `ADDR:PORT` (their own traffic is dropped)")
	fs.StringVar(&ls.serviceUser, "lockdown-service-user", "", "the model server's user (name or uid), held to loopback; needed by --lockdown service unless --lockdown-service-cgroup is given")
	fs.StringVar(&ls.serviceCgroup, "lockdown-service-cgroup", "", "the model server's cgroup v2 path, e.g. system.slice/ollama.service, held to loopback")
	fs.StringSliceVar(&ls.podCgroups, "lockdown-pod-cgroup", nil, "cgroup v2 path `PATTERN`s (glob per level, below the cgroup2 mount) of inference pods sharing the host's network, held to loopback and --lockdown-pod-allow; new matches are held as soon as their cgroup is made (Kubernetes node mode: docs/install.md)")
	fs.StringVar(&ls.podSelector, "lockdown-pod-selector", "", "hold the pods on this Kubernetes node with these `LABELS` (a label selector, e.g. moat.dev/lockdown=inference) like --lockdown-pod-cgroup's, found through the API server with the pod's service account (list and watch pods); they must use the host's network")
	fs.StringVar(&ls.podNode, "lockdown-pod-node", "", "this Kubernetes node's `NAME` for --lockdown-pod-selector (the DaemonSet passes spec.nodeName)")
	fs.StringSliceVar(&ls.podAllow, "lockdown-pod-allow", nil, "destinations the --lockdown-pod-cgroup pods may reach besides loopback: `CIDR` (any port) or ADDR:PORT (TCP and UDP), e.g. a model mirror")
}

// config builds the lockdown's configuration; nil when it is off. The
// node fills in the coordinator, its own uid and the inference ports.
func (ls *lockdownSettings) config(cmd *cobra.Command) (*lockdown.Config, error) {
	var cfg lockdown.Config
	switch ls.scope {
	case "off":
		return nil, nil
	case "", "host", "service": // empty: the default (an env file's MOAT_LOCKDOWN="")
		cfg.Scope = lockdown.Scope(cmp.Or(ls.scope, defaultLockdown))
	default:
		return nil, cli.Invalid(cmd, "lockdown", "%q: want off, host or service", ls.scope)
	}
	var err error
	if cfg.AllowDNS, err = ls.resolvers(cmd); err != nil {
		return nil, err
	}
	if cfg.NTPServers, err = ls.timeServers(cmd); err != nil {
		return nil, err
	}
	if cfg.Extra, cfg.ExtraPorts, err = parseAllow(ls.allow); err != nil {
		return nil, cli.Invalid(cmd, "lockdown-allow", "%v", err)
	}
	if cfg.Upstreams, err = parseAddrPorts(ls.upstreams); err != nil {
		return nil, cli.Invalid(cmd, "lockdown-upstream", "%v", err)
	}
	switch ls.dhcp {
	case "auto", "":
		cfg.AllowDHCP = lockdown.UsesDHCP()
	case "on", "off":
		cfg.AllowDHCP = ls.dhcp == "on"
	default:
		return nil, cli.Invalid(cmd, "lockdown-dhcp", "%q: want auto, on or off", ls.dhcp)
	}
	if ls.serviceUser != "" {
		if cfg.ServiceUID, err = lockdown.ServiceUser(ls.serviceUser); err != nil {
			return nil, cli.Invalid(cmd, "lockdown-service-user", "%v", err)
		}
		if cfg.ServiceUID == 0 {
			return nil, cli.Invalid(cmd, "lockdown-service-user", "%q is root; run the model server as a user of its own", ls.serviceUser)
		}
	}
	cfg.ServiceCgroup = strings.Trim(ls.serviceCgroup, "/")
	if err := ls.pods(cmd, &cfg); err != nil {
		return nil, err
	}
	if cfg.Scope == lockdown.ScopeService && cfg.ServiceUID == 0 && cfg.ServiceCgroup == "" && len(cfg.PodCgroups) == 0 && cfg.PodSource == nil {
		return nil, cli.Invalid(cmd, "lockdown", "service scope needs --lockdown-service-user, --lockdown-service-cgroup, --lockdown-pod-cgroup or --lockdown-pod-selector: the model server's own user, systemd unit or pods")
	}
	return &cfg, nil
}

// pods fills in the pod scope (--lockdown-pod-*).
func (ls *lockdownSettings) pods(cmd *cobra.Command, cfg *lockdown.Config) error {
	var err error
	if cfg.PodAllow, cfg.PodAllowPorts, err = parseAllow(ls.podAllow); err != nil {
		return cli.Invalid(cmd, "lockdown-pod-allow", "%v", err)
	}
	if ls.podSelector != "" || ls.podNode != "" {
		src := &kubepods.Source{Selector: ls.podSelector, Node: ls.podNode}
		if err := src.Check(); err != nil {
			return cli.Invalid(cmd, "lockdown-pod-selector", "%v", err)
		}
		cfg.PodSource = src
	}
	if len(ls.podAllow) > 0 && len(ls.podCgroups) == 0 && cfg.PodSource == nil {
		return cli.Invalid(cmd, "lockdown-pod-allow", "allows the pods of --lockdown-pod-cgroup or --lockdown-pod-selector, and neither is given")
	}
	for _, p := range ls.podCgroups {
		if _, err := path.Match(p, ""); err != nil || strings.Trim(p, "/") == "" {
			return cli.Invalid(cmd, "lockdown-pod-cgroup", "%q is not a cgroup path pattern below the cgroup2 mount, e.g. kubepods.slice/*/kubepods-*-pod*.slice", p)
		}
		cfg.PodCgroups = append(cfg.PodCgroups, strings.Trim(p, "/"))
	}
	return nil
}

// resolvers are --lockdown-dns's addresses, or the system's.
func (ls *lockdownSettings) resolvers(cmd *cobra.Command) ([]netip.Addr, error) {
	if isNone(ls.dns) {
		return nil, nil
	}
	if len(ls.dns) == 0 {
		addrs, err := lockdown.SystemResolvers()
		if err != nil {
			return nil, cli.Invalid(cmd, "lockdown-dns", "%v; name the resolvers, or none", err)
		}
		return nonLoopback(addrs), nil
	}
	var out []netip.Addr
	for _, s := range ls.dns {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, cli.Invalid(cmd, "lockdown-dns", "%q is not an IP address", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// nonLoopback drops loopback resolvers (a local stub is reached over
// loopback anyway).
func nonLoopback(addrs []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for _, a := range addrs {
		if !a.IsLoopback() {
			out = append(out, a)
		}
	}
	return out
}

// timeServers are --lockdown-ntp's servers, or the system's.
func (ls *lockdownSettings) timeServers(cmd *cobra.Command) ([]string, error) {
	if isNone(ls.ntp) {
		return nil, nil
	}
	if len(ls.ntp) > 0 {
		return ls.ntp, nil
	}
	servers, err := lockdown.SystemNTPServers()
	if err != nil {
		return nil, cli.Invalid(cmd, "lockdown-ntp", "%v; name the time servers, or none", err)
	}
	return servers, nil
}

func isNone(v []string) bool { return len(v) == 1 && v[0] == none }

// parseAllow splits --lockdown-allow into networks and single
// destinations.
func parseAllow(vs []string) (nets []netip.Prefix, ports []netip.AddrPort, err error) {
	for _, v := range vs {
		if p, perr := netip.ParsePrefix(v); perr == nil {
			nets = append(nets, p.Masked())
			continue
		}
		ap, aerr := netip.ParseAddrPort(v)
		if aerr != nil {
			return nil, nil, fmt.Errorf("%q: want a network (CIDR, e.g. 192.0.2.0/24) or ADDR:PORT", v)
		}
		ports = append(ports, ap)
	}
	return nets, ports, nil
}

func parseAddrPorts(vs []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, v := range vs {
		ap, err := netip.ParseAddrPort(v)
		if err != nil {
			return nil, fmt.Errorf("%q: want ADDR:PORT, e.g. 172.17.0.2:8000", v)
		}
		out = append(out, ap)
	}
	return out, nil
}
