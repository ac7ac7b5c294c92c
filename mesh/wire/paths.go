package wire

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// PathReport is what a member reports about how it reaches its peers
// (POST /api/v1/paths), for admins to see on the coordinator's pages. The
// coordinator keeps the last report per member and decides nothing from
// it.
type PathReport struct {
	// Paths are the peers the member has been in contact with, most
	// recent handshake first, at most MaxPathReport.
	Paths []PeerPath `json:"paths"`
}

// MaxPathReport bounds PathReport.Paths: a node with many devices
// reports those it heard from last.
const MaxPathReport = 64

// PeerPath is how packets to one peer travel now.
type PeerPath struct {
	Peer key.Public `json:"peer"`
	// Path is PathDirect, PathRelay or PathNone.
	Path string `json:"path"`
	// Endpoint is the peer's UDP address the last path ping proved, for
	// PathDirect.
	Endpoint netip.AddrPort `json:"endpoint,omitzero"`
	// Relay is the URL of the relay the packets go through, for
	// PathRelay.
	Relay string `json:"relay,omitempty"`
	// RTTMillis is the direct path's last round trip.
	RTTMillis float64 `json:"rttMs,omitempty"`
	// LastHandshake is the peer's last WireGuard handshake; zero: none.
	LastHandshake time.Time `json:"lastHandshake,omitzero"`
}

// The values of PeerPath.Path.
const (
	PathDirect = "direct" // UDP to an address a path ping proved
	PathRelay  = "relay"  // through the relay over HTTPS
	PathNone   = "none"   // nothing proven and no relay connected
)

// Validate checks a path report.
func (r *PathReport) Validate() error {
	if len(r.Paths) > MaxPathReport {
		return fmt.Errorf("paths: %d, over the limit of %d", len(r.Paths), MaxPathReport)
	}
	for i, p := range r.Paths {
		if p.Peer.IsZero() {
			return fmt.Errorf("paths[%d].peer: missing", i)
		}
		switch p.Path {
		case PathDirect, PathRelay, PathNone:
		default:
			return fmt.Errorf("paths[%d].path: %q is not %q, %q or %q", i, p.Path, PathDirect, PathRelay, PathNone)
		}
		if p.Path == PathDirect && (!p.Endpoint.IsValid() || p.Endpoint.Port() == 0) {
			return fmt.Errorf("paths[%d].endpoint: a direct path needs an address with a port", i)
		}
		if len(p.Relay) > maxRelayURLLen {
			return fmt.Errorf("paths[%d].relay: longer than %d bytes", i, maxRelayURLLen)
		}
		if p.RTTMillis < 0 {
			return fmt.Errorf("paths[%d].rttMs: negative", i)
		}
	}
	return nil
}
