package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// cmdWGConfig: moat wg-config — a wg-quick configuration for the official
// WireGuard apps, for devices where moat cannot run. It makes a fresh key
// pair, signs it in as a device of its own (recorded by the coordinator,
// expiring like any device), and prints the configuration (and a QR code
// for phone apps). The configuration is a snapshot: make a new one when it
// expires or the nodes change.
func cmdWGConfig(args []string, stdout, stderr io.Writer) int {
	fs, dirFlag := newFlagSet("wg-config", stderr)
	cfg := loginConfig{openBrowser: true}
	fs.StringVar(&cfg.coordinator, "coordinator", "", "coordinator URL (default: the one from the last login)")
	fs.StringVar(&cfg.fingerprint, "coordinator-fingerprint", "", "SHA-256 of a self-signed coordinator certificate, in hex")
	name := fs.String("name", "wireguard-app", "the device name shown to admins")
	qr := fs.Bool("qr", false, "also print the configuration as a QR code (on stderr) for a phone's WireGuard app")
	noBrowser := fs.Bool("no-browser", false, "only print the sign-in URL; do not open a browser")
	if fs.Parse(args) != nil {
		return 2
	}
	cfg.openBrowser = !*noBrowser
	return runWith(stderr, "wg-config", dirFlag, func(ctx context.Context, dir client.Dir) error {
		cfg.dir = dir
		conf, err := wgConfig(ctx, cfg, *name, stderr)
		if err != nil {
			return err
		}
		fmt.Fprint(stdout, conf)
		if *qr {
			if q, err := qrcode.New(conf, qrcode.Low); err == nil {
				fmt.Fprintf(stderr, "\n%s\n", q.ToSmallString(false))
			}
		}
		return nil
	})
}

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
	start, err := c.StartLogin(ctx, wire.LoginRequest{Key: priv.Public(), Hostname: name, OS: "wireguard", Kind: wire.KindWGConfig})
	if err != nil {
		return "", err
	}
	showURL(w, start.AuthURL)
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
