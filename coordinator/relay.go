package coordinator

import (
	"context"
	"strings"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
)

// newRelay makes the coordinator's relay over HTTPS: members whose
// WireGuard key belongs to a live device or node (store.Device.Liveness)
// may connect; every other key is refused. It is served on the
// coordinator's own listener and TLS, beside the gin routes, because a
// relay connection is a hijacked stream that lives for hours and must not
// count as a request in flight.
func (s *Server) newRelay() (*relay.Server, error) {
	return relay.NewServer(s.relayAdmits, s.log)
}

// relayAdmits reports whether k is the key of a live member.
func (s *Server) relayAdmits(ctx context.Context, k key.Public) bool {
	d, err := s.store.DeviceByKey(ctx, k.String())
	if err != nil {
		return false // unknown, or the store failing: fail closed
	}
	return s.deadDevice(ctx, d) == ""
}

// isRelayPath reports whether path is the relay's (relay.Path and what
// DERP serves under it, such as its probe).
func isRelayPath(path string) bool {
	return path == relay.Path || strings.HasPrefix(path, relay.Path+"/")
}
