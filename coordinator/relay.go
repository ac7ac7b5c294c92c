package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/relay"
	"github.com/moatmesh/moat/mesh/wire"
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

// reportEndpoints takes where a device's WireGuard socket may be reached
// (POST /api/v1/endpoints): its interface addresses, the public address
// STUN saw and any `moat --endpoint`. Its peers' netmaps carry them, so
// that nodes can answer it directly and both can punch through NATs.
func (s *Server) reportEndpoints(c *gin.Context) {
	d := device(c)
	var req struct {
		Endpoints []netip.AddrPort `json:"endpoints"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	if len(req.Endpoints) > wire.MaxEndpoints {
		apiError(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("%d endpoints, over the limit of %d", len(req.Endpoints), wire.MaxEndpoints))
		return
	}
	for _, ep := range req.Endpoints {
		if !ep.IsValid() || ep.Port() == 0 {
			apiError(c, http.StatusBadRequest, "bad_request", fmt.Sprintf("endpoint %q is not an address with a port", ep))
			return
		}
	}
	if !slices.Equal(d.Endpoints, req.Endpoints) {
		d.Endpoints = req.Endpoints
		if err := s.store.UpdateDevice(c.Request.Context(), d); err != nil {
			s.internal(c, "update endpoints", err)
			return
		}
		s.changed()
	}
	c.Status(http.StatusNoContent)
}
