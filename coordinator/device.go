package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

const ctxDevice = "moat.device"

// deviceAuth admits requests that carry a live device credential and puts
// the device in the context. Revoked, expired and unknown credentials, and
// devices of disabled people, get 401 with what to do.
func (s *Server) deviceAuth(c *gin.Context) {
	tok := bearer(c.Request)
	if tok == "" {
		apiError(c, http.StatusUnauthorized, "no_credential", "send the device credential as a bearer token; run `moat login`")
		return
	}
	d, refusal, err := s.credentialOf(c.Request.Context(), hashSecret(tok))
	if errors.Is(err, store.ErrNotFound) {
		s.refuse("bad_credential")
		apiError(c, http.StatusUnauthorized, "bad_credential", "this device credential is not known; run `moat login` (or re-join the node)")
		return
	}
	if err != nil {
		s.internal(c, "check credential", err)
		return
	}
	if refusal != "" {
		s.refuse("credential_expired")
		apiError(c, http.StatusUnauthorized, "credential_expired", refusal)
		return
	}
	if msg := s.deadDevice(c.Request.Context(), d); msg != "" {
		s.refuse("dead_device")
		apiError(c, http.StatusUnauthorized, "device_not_live", msg)
		return
	}
	s.noteSoftware(c.Request.Context(), d, c.Request)
	c.Set(ctxDevice, d)
	c.Next()
}

// deadDevice says why d may not use the coordinator, or "" when it may
// (store.Device.Liveness decides).
func (s *Server) deadDevice(ctx context.Context, d *store.Device) string {
	var owner *store.User
	if d.Kind != store.KindNode {
		owner, _ = s.store.User(ctx, d.UserID) // not found or failing: refused as disabled
	}
	switch d.Liveness(owner, s.cfg.Now()) {
	case store.DeviceLive:
		return ""
	case store.DeviceRevoked:
		return "this device was revoked; run `moat login` to sign it in again"
	case store.DeviceExpired:
		return "this device's key expired at " + d.Expiry.UTC().Format(time.RFC3339) + "; run `moat login`"
	}
	return "the person this device belongs to is disabled in moat; ask an admin"
}

// netmapStream holds the device's netmap stream: GET /api/v1/netmap
// (NDJSON; see netmap.Fanout.Serve). With ?seq=N, the current netmap is
// not sent again when its Seq is N (a client resuming after a
// reconnect). The stream ends when the device leaves the mesh (revoked,
// expired, disabled) or its credential changes (a new sign-in); its next
// request then says why.
func (s *Server) netmapStream(c *gin.Context) {
	d := device(c)
	since, _ := strconv.ParseUint(c.Query("seq"), 10, 64)
	credHash := hashSecret(bearer(c.Request))
	s.netmaps.Serve(c.Writer, c.Request, d.ID, since, func(ctx context.Context) bool {
		return s.stillValid(ctx, d.ID, credHash)
	})
}

// stillValid reports whether device id still exists, is live, and still
// has the credential whose hash is credHash (a node's previous one
// during a rotation's overlap included).
func (s *Server) stillValid(ctx context.Context, id string, credHash []byte) bool {
	d, err := s.store.Device(ctx, id)
	return err == nil && s.credentialLive(ctx, d, credHash) && s.deadDevice(ctx, d) == ""
}

func device(c *gin.Context) *store.Device { return c.MustGet(ctxDevice).(*store.Device) }

// enroll joins a node with an enrollment key: POST /api/v1/enroll. A
// node that enrolls again with its key (same WireGuard key) is updated in
// place and keeps its addresses.
func (s *Server) enroll(c *gin.Context) {
	var req wire.EnrollRequest
	if !decode(c, limitSmall, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	now := s.cfg.Now()
	authHash := hashSecret(string(req.AuthKey))
	// First the enrollment key, without using it: a caller without a
	// usable key learns nothing, not even who holds a WireGuard key.
	if !s.enrollKeyOK(c, s.store.CheckEnrollKey(c.Request.Context(), authHash, now)) {
		return
	}
	// A live device already holding this key is refused before the
	// enrollment key is spent. Enrollment keys prove nothing about who
	// holds the WireGuard private key, and every caller learns a node's
	// public key from its netmap: re-enrolling in place would let anyone
	// with any key take the node over.
	if d, err := s.store.DeviceByKey(c.Request.Context(), req.Key.String()); err == nil && !d.Revoked {
		s.refuse("key_in_use")
		apiError(c, http.StatusConflict, "key_in_use", "this WireGuard key already belongs to "+d.ID+"; a joined node keeps its credential in its state dir — revoke the old one first to join again with this key")
		return
	}
	ek, err := s.store.UseEnrollKey(c.Request.Context(), authHash, now) // checks again, atomically
	if !s.enrollKeyOK(c, err) {
		return
	}
	id := newID("n_")
	cred, nc := s.newNodeCredential(id, now)
	d, err := s.reusableDevice(c.Request.Context(), req.Key.String())
	switch {
	case err != nil:
	case d == nil:
		d = &store.Device{ID: id, Kind: store.KindNode, PublicKey: req.Key.String(), Created: now}
		if s.cfg.NodeTTL > 0 {
			d.Expiry = now.Add(s.cfg.NodeTTL)
		}
		s.applyAd(d, req, ek.Tags, nc.Hash, now)
		if err = s.store.CreateDevice(c.Request.Context(), d); err == nil {
			err = s.store.AddNodeCredential(c.Request.Context(), nc)
		}
	default: // became live since the check above: a concurrent enrollment won
		apiError(c, http.StatusConflict, "key_in_use", "this WireGuard key was just enrolled by another request")
		return
	}
	if err != nil {
		s.internal(c, "record node", err)
		return
	}
	s.log.Info("node enrolled", "node", d.ID, "hostname", d.Hostname, "tags", d.Tags, "key", ek.ID)
	s.changed()
	c.JSON(http.StatusOK, wire.EnrollResult{Credential: wire.Secret(cred), DeviceID: wire.DeviceID(d.ID), Addresses: netmap.Addresses(d), Tags: d.Tags,
		CredentialIssued: nc.Issued, CredentialExpiry: nc.Expires})
}

// enrollKeyOK answers a failed check or use of an enrollment key (err)
// and reports whether to go on.
func (s *Server) enrollKeyOK(c *gin.Context, err error) bool {
	switch {
	case errors.Is(err, store.ErrExhausted) || errors.Is(err, store.ErrNotFound):
		s.refuse("bad_enroll_key")
		apiError(c, http.StatusUnauthorized, "bad_enroll_key", "the enrollment key is unknown, used up, revoked or expired; ask an admin for a new one")
		return false
	case err != nil:
		s.internal(c, "use enrollment key", err)
		return false
	}
	return true
}

func (s *Server) applyAd(d *store.Device, req wire.EnrollRequest, tags []string, credHash []byte, now time.Time) {
	d.Hostname, d.Endpoints, d.Models, d.Tags = req.Hostname, req.Endpoints, req.Models, slices.Clone(tags)
	d.CredHash, d.LastSeen = credHash, now
}

// advertise updates what a node serves and where it can be reached:
// POST /api/v1/node (device credential of a node).
func (s *Server) advertise(c *gin.Context) {
	d := device(c)
	if d.Kind != store.KindNode {
		apiError(c, http.StatusForbidden, "not_a_node", "only nodes advertise models")
		return
	}
	var req struct {
		Endpoints []netip.AddrPort `json:"endpoints"`
		Models    []wire.ModelAd   `json:"models"`
		Status    json.RawMessage  `json:"status,omitempty"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	k, _ := key.ParsePublic(d.PublicKey)
	ad := wire.EnrollRequest{Key: k, Hostname: d.Hostname, Endpoints: req.Endpoints, Models: req.Models}
	if err := ad.Validate(); err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	changed := !slices.Equal(d.Endpoints, req.Endpoints) || !slices.Equal(d.Models, req.Models)
	d.Endpoints, d.Models, d.LastSeen = req.Endpoints, req.Models, s.cfg.Now()
	if len(req.Status) > 0 {
		d.NodeStatus = req.Status
	}
	if err := s.store.UpdateDevice(c.Request.Context(), d); err != nil {
		s.internal(c, "update node", err)
		return
	}
	if changed {
		s.changed()
	}
	c.Status(http.StatusNoContent)
}

// logout revokes the caller's own credential: POST /api/v1/logout.
func (s *Server) logout(c *gin.Context) {
	d := device(c)
	d.Revoked = true
	if err := s.store.UpdateDevice(c.Request.Context(), d); err != nil {
		s.internal(c, "revoke device", err)
		return
	}
	s.netmaps.Drop(d.ID)
	s.changed()
	s.recordAs(c.Request.Context(), orNode(d), actionDeviceOut, d.ID, d.Hostname)
	c.Status(http.StatusNoContent)
}
