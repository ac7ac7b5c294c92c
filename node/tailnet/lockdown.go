package tailnet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"

	"tailscale.com/tailcfg"

	"github.com/moatmesh/moat/node/lockdown"
)

// defaultControlURL is Tailscale's control server, the lockdown's
// "coordinator" when Config.ControlURL is empty.
const defaultControlURL = "https://controlplane.tailscale.com"

// applyLockdown applies the configured lockdown before the node joins the
// tailnet (fail closed: the node does not start without it): the control
// server is its coordinator, tsnet's UDP port its WireGuard port. The
// relays, STUN servers and peers follow the netmap (lockdownPaths).
func (n *Node) applyLockdown(ctx context.Context) error {
	if n.cfg.Lockdown == nil {
		n.log.Warn("LOCKDOWN OFF: every process on this host may send anywhere, and nothing stops a model server or a generated script from sending prompts out; start with --lockdown host")
		return nil
	}
	cfg := *n.cfg.Lockdown
	if cfg.CoordinatorURL == "" && len(cfg.Coordinator) == 0 {
		cfg.CoordinatorURL = n.cfg.ControlURL
		if cfg.CoordinatorURL == "" {
			cfg.CoordinatorURL = defaultControlURL
		}
	}
	if c := n.cfg.Coordinator; c != nil {
		// The moat coordinator, reached like the control server; its
		// addresses are those of now (a node restart takes new ones).
		addrs, err := resolveURL(ctx, n.coord.Control().URL(""))
		if err != nil {
			return fmt.Errorf("lockdown could not be applied, so this node will not serve models: the coordinator: %w", err)
		}
		cfg.Coordinator = append(slices.Clone(cfg.Coordinator), addrs...)
	}
	if len(cfg.CoordinatorUIDs) == 0 {
		cfg.CoordinatorUIDs = []uint32{uint32(os.Geteuid())}
	}
	cfg.WireGuardPort, cfg.GuardPort = n.cfg.ListenPort, n.cfg.GuardPort
	if len(cfg.InferencePorts) == 0 {
		var urls []string
		for _, m := range n.cfg.Models {
			urls = append(urls, m.Upstream.URL)
		}
		ports, err := lockdown.InferencePorts(urls...)
		if err != nil {
			return fmt.Errorf("lockdown could not be applied, so this node will not serve models: %w", err)
		}
		cfg.InferencePorts = ports
	}
	l, err := lockdown.ApplyContext(ctx, cfg)
	if err != nil {
		return fmt.Errorf("lockdown could not be applied, so this node will not serve models: %w", err)
	}
	n.lock = l
	n.log.Info("lockdown applied", "scope", l.Config().Scope, "control", cfg.CoordinatorURL, "wireguard_port", cfg.WireGuardPort)
	watchCtx, cancel := context.WithCancel(context.Background())
	n.stopWatch = cancel
	n.watchWG.Go(func() { l.Watch(watchCtx, n.onLockdownEvent) })
	n.OnChange(n.updateLockdown)
	return nil
}

// resolveURL returns the addresses of an http(s) URL's host, with its
// port (default: the scheme's).
func resolveURL(ctx context.Context, raw string) ([]netip.AddrPort, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not a URL with a host", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("%q: bad port", raw)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return nil, err
	}
	out := make([]netip.AddrPort, 0, len(ips))
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(p)))
	}
	return out, nil
}

// onLockdownEvent logs e and keeps the models stopped while the lockdown
// is not in force.
func (n *Node) onLockdownEvent(e lockdown.Event) {
	n.local.HoldModels(n.lock.Healthy())
	switch e.Kind {
	case lockdown.EventLost:
		n.log.Error("lockdown lost; restoring it", "reason", e.Reason)
	case lockdown.EventFailed:
		n.log.Error("lockdown NOT in force: re-applying it failed; every model answers 503 until it is back", "reason", e.Reason)
	case lockdown.EventRestored:
		n.log.Warn("lockdown restored", "took", e.Took, "reason", e.Reason)
	default:
		n.log.Info("lockdown "+string(e.Kind), "reason", e.Reason)
	}
}

// updateLockdown gives the lockdown the netmap's relays, STUN servers and
// peers' endpoints.
func (n *Node) updateLockdown(ctx context.Context) {
	dm, err := n.lc.CurrentDERPMap(ctx)
	if err != nil {
		n.log.Warn("lockdown: no DERP map; relays keep their last allowance", "err", err)
		return
	}
	p := relayPaths(dm)
	n.mu.Lock()
	for _, eps := range n.mu.endpoints {
		p.Peers = append(p.Peers, lockdown.Peer{Endpoints: eps})
	}
	n.mu.Unlock()
	if err := n.lock.SetTailnetPaths(p); err != nil {
		n.log.Error("lockdown: tailnet paths not updated", "err", err)
	}
}

// relayPaths are the DERP map's relays (HTTPS, TCP) and STUN servers
// (UDP), by address: a node whose address is a name or "none" is skipped
// (the lockdown allows addresses, and Tailscale's and Headscale's maps
// give them).
func relayPaths(dm *tailcfg.DERPMap) lockdown.TailnetPaths {
	var p lockdown.TailnetPaths
	if dm == nil {
		return p
	}
	for _, r := range dm.Regions {
		if r == nil {
			continue
		}
		for _, d := range r.Nodes {
			for _, s := range []string{d.IPv4, d.IPv6} {
				a, err := netip.ParseAddr(s)
				if err != nil {
					continue
				}
				p.Relays = append(p.Relays, netip.AddrPortFrom(a, uint16(portOr(d.DERPPort, 443))))
				if d.STUNPort >= 0 {
					p.STUN = append(p.STUN, netip.AddrPortFrom(a, uint16(portOr(d.STUNPort, 3478))))
				}
			}
		}
	}
	return p
}

// portOr is port, or def when port is 0 (the DERP map's "default").
func portOr(port, def int) int {
	if port == 0 {
		return def
	}
	return port
}
