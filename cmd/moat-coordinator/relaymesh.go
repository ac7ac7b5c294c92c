package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/relay"
)

// relayMeshOff is the --relay-mesh-url value that turns the mesh off.
const relayMeshOff = "none"

// checkRelayMeshURL refuses a --relay-mesh-url that is not a relay URL.
func checkRelayMeshURL(cmd *cobra.Command, v string) error {
	if v == "" || v == relayMeshOff {
		return nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.Path != relay.Path {
		return cli.Invalid(cmd, "relay-mesh-url", "%q: want http(s)://HOST:PORT%s, this replica's own address", v, relay.Path)
	}
	return nil
}

// relayMeshURL is where the other replicas reach this one's relay: the
// flag, or with PostgreSQL (several replicas) and no flag, this host's
// address at the --listen port. Empty: no mesh (SQLite, "none", or no
// address found, which it logs).
func (s *serveSettings) relayMeshURL(tls bool) (string, error) {
	switch {
	case s.relayMesh == relayMeshOff || (s.relayMesh == "" && s.store.database == ""):
		return "", nil
	case s.relayMesh != "":
		return s.relayMesh, nil
	}
	host, port, err := net.SplitHostPort(s.listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", s.listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if host = hostAddress(); host == "" {
			return "", fmt.Errorf("no address of this host to announce for the relay mesh; set --relay-mesh-url")
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + relay.Path, nil
}

// hostAddress returns this host's first IPv4 address that is not a
// loopback or link-local one (the first such IPv6 address if it has no
// IPv4), or "".
func hostAddress() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	var v6 string
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !n.IP.IsGlobalUnicast() {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP.String()
		}
		if v6 == "" {
			v6 = n.IP.String()
		}
	}
	return v6
}
