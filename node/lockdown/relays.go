package lockdown

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// SetRelays allows TCP to the relays over HTTPS a moat node's netmap
// names (wire.NetMap.Relays, "https://HOST[:PORT]/derp"), as the
// coordinator's API is allowed: to CoordinatorUIDs' sockets only, since
// any process that reached a relay could carry data out through it. Host
// names are resolved now and again at every Resolve (Watch's
// ResolveInterval); a relay whose name does not resolve is left out and
// named in the error, the others allowed. What the previous call allowed
// and this one does not is gone, in one batch. The coordinator's own
// relay needs no entry: it is the coordinator's API address.
//
// The same URLs again change nothing (Resolve follows their addresses).
func (l *Lockdown) SetRelays(ctx context.Context, urls []string) error {
	l.mu.Lock()
	same := slices.Equal(urls, l.dyn.relayURLs) && l.dyn.relayURLs != nil
	l.mu.Unlock()
	if same {
		return nil
	}
	urls = append([]string{}, urls...) // not nil: set
	addrs, err := resolveRelays(ctx, l.cfg, urls)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dyn.relayURLs, l.dyn.meshRelays = urls, addrs
	if serr := l.syncLocked(); serr != nil {
		return fmt.Errorf("lockdown: update relays: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("lockdown: %w", err)
	}
	return nil
}

// Relays are the relay addresses SetRelays allowed last.
func (l *Lockdown) Relays() []netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.dyn.meshRelays)
}

// resolveRelays is the addresses of the relays at urls (with each URL's
// port, 443 by default); the error names those that did not resolve.
func resolveRelays(ctx context.Context, cfg Config, urls []string) ([]netip.AddrPort, error) {
	lookup := cfg.Lookup
	if lookup == nil {
		lookup = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	var out []netip.AddrPort
	var errs []error
	for _, u := range urls {
		host, port, err := splitUpstream(u)
		if err != nil {
			errs = append(errs, fmt.Errorf("relay %q: %w", u, err))
			continue
		}
		addrs, err := resolveHost(ctx, lookup, host)
		if err != nil {
			errs = append(errs, fmt.Errorf("resolve the relay %q: %w", host, err))
			continue
		}
		for _, a := range addrs {
			out = append(out, netip.AddrPortFrom(a, port))
		}
	}
	return out, errors.Join(errs...)
}
