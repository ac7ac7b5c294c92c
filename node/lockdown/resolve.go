package lockdown

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// lookupTimeout bounds each resolution of a name.
const lookupTimeout = 5 * time.Second

// resolveNames resolves CoordinatorURL's host (with the URL's port) and
// the NTPServers given as names. A name that does not resolve is an
// error: a node that cannot reach its coordinator cannot be trusted to
// serve.
func resolveNames(ctx context.Context, cfg Config) (coord []netip.AddrPort, ntp []netip.Addr, err error) {
	lookup := cfg.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	if cfg.CoordinatorURL != "" {
		host, port, err := splitUpstream(cfg.CoordinatorURL)
		if err != nil {
			return nil, nil, fmt.Errorf("coordinator URL %q: %w", cfg.CoordinatorURL, err)
		}
		addrs, err := resolveHost(ctx, lookup, host)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve the coordinator %q: %w", host, err)
		}
		for _, a := range addrs {
			coord = append(coord, netip.AddrPortFrom(a, port))
		}
	}
	for _, n := range cfg.NTPServers {
		if isAddr(n) {
			continue // in the sets from the Config
		}
		addrs, err := resolveHost(ctx, lookup, n)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve the NTP server %q: %w", n, err)
		}
		ntp = append(ntp, addrs...)
	}
	return coord, ntp, nil
}

func resolveHost(ctx context.Context, lookup func(context.Context, string) ([]netip.Addr, error), host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a.Unmap()}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	addrs, err := lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	out := make([]netip.Addr, len(addrs))
	for i, a := range addrs {
		out[i] = a.Unmap().WithZone("")
	}
	return out, nil
}

// Resolve resolves CoordinatorURL and NTPServers again and, when the
// answers changed, updates the sets in one batch. It reports whether
// they changed. Watch calls it every ResolveInterval; call it yourself
// when the coordinator's address is known to have moved.
func (l *Lockdown) Resolve(ctx context.Context) (bool, error) {
	coord, ntp, err := resolveNames(ctx, l.cfg)
	if err != nil {
		return false, fmt.Errorf("lockdown: %w", err)
	}
	l.mu.Lock()
	urls, prev := l.dyn.relayURLs, l.dyn.meshRelays
	l.mu.Unlock()
	relays, rerr := resolveRelays(ctx, l.cfg, urls)
	if rerr != nil {
		// Some did not resolve now: keep what they resolved to last,
		// and take what the others resolve to now.
		relays = unionAddrPorts(prev, relays)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Equal(urls, l.dyn.relayURLs) { // SetRelays ran meanwhile
		relays = l.dyn.meshRelays
	}
	if sameSet(coord, l.dyn.coordinator) && sameSet(ntp, l.dyn.ntp) && sameSet(relays, l.dyn.meshRelays) {
		return false, nil
	}
	l.dyn.coordinator, l.dyn.ntp, l.dyn.meshRelays = coord, ntp, relays
	if err := l.syncLocked(); err != nil {
		return true, fmt.Errorf("lockdown: update resolved addresses: %w", err)
	}
	return true, nil
}

func sameSet[T interface {
	comparable
	Compare(T) int
}](a, b []T) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y T) int { return x.Compare(y) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.EqualFunc(slices.Compact(a), slices.Compact(b), func(x, y T) bool { return x.Compare(y) == 0 })
}

// unionAddrPorts is a and those of b not in a.
func unionAddrPorts(a, b []netip.AddrPort) []netip.AddrPort {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
