package coordinator

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/ui"
)

// reportPaths keeps how a member reaches its peers (POST /api/v1/paths),
// for the nodes and devices pages. It is shown, never trusted: nothing
// is decided from it.
func (s *Server) reportPaths(c *gin.Context) {
	d := device(c)
	var req wire.PathReport
	if !decode(c, limitSmall, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	raw, err := json.Marshal(req)
	if err != nil {
		s.internal(c, "encode paths", err)
		return
	}
	if err := s.store.SetPaths(c.Request.Context(), d.ID, raw, s.cfg.Now()); err != nil {
		s.internal(c, "keep paths", err)
		return
	}
	c.Status(http.StatusNoContent)
}

// memberPaths returns each member's last path report for the pages, by
// device id, with peers named by their hostnames (ds: every device).
func (b uiBackend) memberPaths(ctx context.Context, ds []*store.Device) (map[string][]ui.Path, error) {
	reports, err := b.s.store.Paths(ctx)
	if err != nil {
		return nil, b.fail("read path reports", err)
	}
	name := make(map[string]string, len(ds))
	for _, d := range ds {
		name[d.PublicKey] = d.Hostname
	}
	out := make(map[string][]ui.Path, len(reports))
	for id, r := range reports {
		var rep wire.PathReport
		if json.Unmarshal(r.Report, &rep) != nil {
			continue // kept by this coordinator from a valid report: cannot happen
		}
		for _, p := range rep.Paths {
			peer := name[p.Peer.String()]
			if peer == "" {
				continue // a peer since removed
			}
			up := ui.Path{Peer: peer, Path: p.Path, Relay: p.Relay, Handshake: p.LastHandshake, Reported: r.Reported}
			if p.Endpoint.IsValid() {
				up.Endpoint = p.Endpoint.String()
			}
			out[id] = append(out[id], up)
		}
	}
	return out, nil
}
