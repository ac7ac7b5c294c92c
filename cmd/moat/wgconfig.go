package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// wgConfig signs a fresh key in as a stock-WireGuard device and renders
// its configuration from its first netmap. The sign-in instructions go to
// w; the private key only into the returned configuration.
func wgConfig(ctx context.Context, cfg loginConfig, name string, w io.Writer) (string, error) {
	if cfg.coordinator == "" {
		prev, err := cfg.dir.LoadLogin()
		if err != nil {
			return "", fmt.Errorf("which coordinator? pass --coordinator URL")
		}
		cfg.coordinator, cfg.fingerprint = prev.Coordinator, prev.Fingerprint
	}
	priv, err := key.NewPrivate()
	if err != nil {
		return "", err
	}
	c, err := control.New(control.Config{URL: cfg.coordinator, Fingerprint: cfg.fingerprint})
	if err != nil {
		return "", err
	}
	req := wire.LoginRequest{Key: priv.Public(), Hostname: name, OS: "wireguard", Kind: wire.KindWGConfig}
	if err := req.Validate(); err != nil {
		return "", fmt.Errorf("--name: %w", err)
	}
	start, err := c.StartLogin(ctx, req)
	if err != nil {
		return "", err
	}
	showURL(w, start)
	if cfg.openBrowser {
		openBrowser(start.AuthURL)
	}
	res, err := waitLogin(ctx, c, start, w)
	if err != nil {
		return "", err
	}
	nm, err := firstNetMap(ctx, c.WithCredential(res.Credential))
	if err != nil {
		return "", err
	}
	return renderWGQuick(priv, nm), nil
}

func firstNetMap(ctx context.Context, c *control.Client) (*wire.NetMap, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var got *wire.NetMap
	err := c.Stream(ctx, 0, func(nm *wire.NetMap) error {
		got = nm
		return errGotOne
	})
	if got == nil {
		return nil, fmt.Errorf("no netmap from the coordinator: %w", err)
	}
	return got, nil
}

// renderWGQuick writes the wg-quick(8) configuration of a netmap.
func renderWGQuick(priv key.Private, nm *wire.NetMap) string {
	var b strings.Builder
	id := nm.Self.Identity
	fmt.Fprintf(&b, "# moat: %s on %q", who(id), id.DeviceName)
	if !id.Expiry.IsZero() {
		fmt.Fprintf(&b, ", valid until %s; then run `moat wg-config` again", id.Expiry.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "\n[Interface]\nPrivateKey = %s\nAddress = %s\n", priv.Text(), prefixes(nm.Self.Addresses))
	for _, p := range nm.Peers {
		fmt.Fprintf(&b, "\n# %s", p.Identity.DeviceName)
		if len(p.Models) > 0 {
			fmt.Fprintf(&b, " — models: %s", strings.Join(p.Models, ", "))
		}
		fmt.Fprintf(&b, "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", p.Key, prefixes(p.Addresses))
		if len(p.Endpoints) > 0 {
			fmt.Fprintf(&b, "Endpoint = %s\n", p.Endpoints[0])
		}
		if p.KeepAlive > 0 {
			fmt.Fprintf(&b, "PersistentKeepalive = %d\n", p.KeepAlive)
		}
	}
	return b.String()
}

func prefixes(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = netip.PrefixFrom(a, a.BitLen()).String()
	}
	return strings.Join(parts, ", ")
}
