package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/netmap"
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
//
// Every replica's relay holds the same mesh key, made once and kept
// sealed in the secrets table, so that relays of one cluster forward to
// each other (relaymesh.go) without an operator setting a key.
func (s *Server) newRelay(ctx context.Context) (*relay.Server, error) {
	mk, err := s.secretSetting(ctx, relayMeshSecret)
	if err != nil {
		return nil, fmt.Errorf("relay mesh key: %w", err)
	}
	cfg := relay.ServerConfig{Admit: s.relayAdmits, Logger: s.log}
	copy(cfg.MeshKey[:], mk)
	return relay.NewServer(cfg)
}

// relayMeshSecret names the relays' mesh key in the secrets table.
const relayMeshSecret = "relay-mesh-key"

// retainRelay cuts off the relay every member not live in snap (revoked,
// expired, removed, its person disabled): DERP checks admission only at
// connect. It runs after each netmap recompute, which every change on
// any replica causes, and at least every netmap.DefaultResync.
func (s *Server) retainRelay(ctx context.Context, snap *netmap.Snapshot) {
	live := make(map[string]bool, len(snap.Devices))
	for _, d := range snap.Devices {
		if snap.Live(d) {
			live[d.PublicKey] = true
		}
	}
	s.relay.Retain(ctx, func(k key.Public) bool { return live[k.String()] })
}

// relayAdmits reports whether k is the key of a live member.
func (s *Server) relayAdmits(ctx context.Context, k key.Public) bool {
	d, err := s.store.DeviceByKey(ctx, k.String())
	if err != nil {
		return false // unknown, or the store failing: fail closed
	}
	return s.deadDevice(ctx, d) == ""
}

// CheckRelayURL refuses a relay URL that is not https://HOST[:PORT]/derp
// (Config.Relays, `serve --relay`, `relay --relay-url`).
func CheckRelayURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" || u.Hostname() == "" || u.Path != relay.Path ||
		u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: want https://HOST[:PORT]%s", v, relay.Path)
	}
	if strings.HasSuffix(u.Host, ":") {
		return fmt.Errorf("%q: an empty port; want https://HOST[:PORT]%s", v, relay.Path)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port %q is not a TCP port", v, p)
		}
	}
	return nil
}

// netmapRelays are the relays every netmap names (wire.NetMap.Relays):
// Config.Relays, then this coordinator's own as the fallback; none when
// Config.Relays is empty (members then use the coordinator's own).
func (s *Server) netmapRelays() []wire.Relay {
	if len(s.cfg.Relays) == 0 {
		return nil
	}
	out := make([]wire.Relay, 0, len(s.cfg.Relays)+1)
	for _, r := range s.cfg.Relays {
		out = append(out, wire.Relay{URL: r})
	}
	return append(out, wire.Relay{URL: strings.TrimSuffix(s.cfg.PublicURL, "/") + relay.Path})
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
