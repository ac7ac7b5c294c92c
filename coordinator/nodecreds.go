package coordinator

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// Node credentials expire (Config.NodeCredentialTTL) and rotate without
// downtime: two thirds into its credential's lifetime a node asks for the
// next one (POST /api/v1/node/credential), saves it and uses it; the
// credential it asked with keeps working for credOverlap, so that its
// requests in flight (the netmap stream, an audit batch, a lease) finish.
// The WireGuard key is not rotated: it is the node's identity in its
// peers' netmaps, and changing it means joining again.
//
// Apart from that, a node may expire (Config.NodeTTL, or an admin's
// setting per node): an expired node leaves every netmap and is refused,
// like an expired person's device.

// credOverlap is how long a node's previous credential works after a
// rotation.
const credOverlap = 10 * time.Minute

// credentialOf finds the device a credential (by its hash) belongs to:
// a device's current credential, or a node's previous one during its
// overlap. It returns why the credential is refused ("" when it is not)
// with the device.
func (s *Server) credentialOf(ctx context.Context, hash []byte) (*store.Device, string, error) {
	now := s.cfg.Now()
	d, err := s.store.DeviceByCredHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		nc, nerr := s.store.NodeCredential(ctx, hash)
		if nerr != nil || !nc.Live(now) {
			return nil, "", err // unknown, or an overlap that ended: not known
		}
		d, err = s.store.Device(ctx, nc.DeviceID)
		return d, "", err
	}
	if err != nil || d.Kind != store.KindNode {
		return d, "", err
	}
	nc, err := s.store.NodeCredential(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, "", nil // joined before credentials expired
	case err != nil:
		return nil, "", err
	case !nc.Live(now):
		return d, "this node's credential expired at " + nc.Expires.UTC().Format(time.RFC3339) + "; join the node again with a new enrollment key", nil
	}
	return d, "", nil
}

// credentialLive reports whether hash is still a live credential of
// device d: its current one, or a previous one in its overlap.
func (s *Server) credentialLive(ctx context.Context, d *store.Device, hash []byte) bool {
	if d.Kind != store.KindNode {
		return hmac.Equal(d.CredHash, hash)
	}
	nc, err := s.store.NodeCredential(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return hmac.Equal(d.CredHash, hash) // joined before credentials expired
	}
	return err == nil && nc.DeviceID == d.ID && nc.Live(s.cfg.Now())
}

// newNodeCredential makes a credential for node id issued at now.
func (s *Server) newNodeCredential(id string, now time.Time) (string, *store.NodeCredential) {
	cred, hash := newSecret(prefixDeviceCred)
	return cred, &store.NodeCredential{Hash: hash, DeviceID: id, Issued: now, Expires: now.Add(s.cfg.NodeCredentialTTL)}
}

// renewNodeCredential gives a node its next credential: POST
// /api/v1/node/credential (a node's credential, current or in overlap).
func (s *Server) renewNodeCredential(c *gin.Context) {
	d := device(c)
	if d.Kind != store.KindNode {
		apiError(c, http.StatusForbidden, "not_a_node", "only nodes rotate their credential; a person's device signs in again")
		return
	}
	now := s.cfg.Now()
	cred, nc := s.newNodeCredential(d.ID, now)
	if err := s.store.RotateNodeCredential(c.Request.Context(), d.ID, nc, now, now.Add(credOverlap)); err != nil {
		s.internal(c, "rotate the node's credential", err)
		return
	}
	s.log.Info("node credential rotated", "node", d.ID, "expires", nc.Expires)
	c.JSON(http.StatusOK, wire.NodeCredential{Credential: wire.Secret(cred), Issued: nc.Issued, Expiry: nc.Expires})
}

// nodeExpiry is the body of PUT /api/v1/admin/devices/:id/expiry.
type nodeExpiry struct {
	// Expiry is when the node leaves the mesh; null or absent: never.
	Expiry *time.Time `json:"expiry"`
}

// setNodeExpiry sets when a node expires: PUT
// /api/v1/admin/devices/:id/expiry {"expiry": "2027-01-31T00:00:00Z"}
// (or null: never). A time already past takes it out at once. People's
// devices expire with their sign-in and are refused here.
func (s *Server) setNodeExpiry(c *gin.Context) {
	var req nodeExpiry
	if !decode(c, limitSmall, &req) {
		return
	}
	d, err := s.store.Device(c.Request.Context(), c.Param("id"))
	if s.notFound(c, err, "device") {
		return
	}
	if d.Kind != store.KindNode {
		apiError(c, http.StatusConflict, "not_a_node", "a person's device expires with their sign-in (--device-ttl); revoke or expire it instead")
		return
	}
	_, err = s.changeDeviceAs(c.Request.Context(), apiActor(c), d.ID, "node.expiry", func(d *store.Device, _ time.Time) {
		d.Expiry = time.Time{}
		if req.Expiry != nil {
			d.Expiry = req.Expiry.UTC()
		}
	})
	if s.notFound(c, err, "device") {
		return
	}
	c.Status(http.StatusNoContent)
}
