package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/policy"
)

const ctxActor = "moat.actor"

// adminAuth admits admin API requests carrying a live API token
// ("moat_at_…"). Tokens are stored hashed; the actor is recorded with
// every change.
func (s *Server) adminAuth(c *gin.Context) {
	tok := bearer(c.Request)
	if !strings.HasPrefix(tok, prefixAPIToken) {
		if tok != "" {
			s.refuse("bad_api_token")
			s.recordRefusal(c.Request, credAPIToken, "not an admin API token")
		}
		apiError(c, http.StatusUnauthorized, "no_token", "send an admin API token as a bearer token (moat-coordinator tokens create)")
		return
	}
	t, err := s.store.APITokenByHash(c.Request.Context(), hashSecret(tok))
	if err != nil || (!t.Expiry.IsZero() && !s.cfg.Now().Before(t.Expiry)) {
		s.refuse("bad_api_token")
		s.recordRefusal(c.Request, credAPIToken, "unknown or expired")
		apiError(c, http.StatusUnauthorized, "bad_token", "this API token is unknown or expired; make a new one")
		return
	}
	c.Set(ctxActor, "token:"+t.ID)
	c.Next()
}

// apiActor is who makes an admin API request ("token:<id>").
func apiActor(c *gin.Context) string {
	actor, _ := c.Get(ctxActor)
	return fmt.Sprint(actor)
}

// recordAs writes an admin action of actor (a user id or "token:<id>")
// to the trail.
func (s *Server) recordAs(ctx context.Context, actor, action, target, detail string) {
	a := &store.AdminAction{Time: s.cfg.Now(), Actor: actor, Action: action, Target: target, Detail: detail}
	s.log.Info("admin action", "action", action, "actor", actor, "target", target, "detail", detail, logRequestID, requestID(ctx))
	if err := s.store.LogAdminAction(ctx, a); err != nil {
		s.log.Error("admin trail", "action", action, "err", err)
	}
}

func (s *Server) adminRoutes(g *gin.RouterGroup) {
	g.Use(s.adminAuth)
	g.GET("/users", s.listUsers)
	g.POST("/users/:id/disable", s.setUserDisabled(true))
	g.POST("/users/:id/enable", s.setUserDisabled(false))
	s.personDataRoutes(g) // export, erase (persondata.go)
	g.GET("/devices", s.listDevices)
	g.POST("/devices/:id/revoke", s.changeDevice("device.revoke", revokeDevice))
	g.POST("/devices/:id/expire", s.changeDevice("device.expire", expireDevice))
	g.PUT("/devices/:id/expiry", s.setNodeExpiry)
	g.GET("/enroll-keys", s.listEnrollKeys)
	g.POST("/enroll-keys", s.createEnrollKey)
	g.DELETE("/enroll-keys/:id", s.revokeEnrollKey)
	g.GET("/policy", s.getPolicy)
	g.POST("/policy/validate", s.validatePolicy)
	g.PUT("/policy", s.savePolicy)
	g.GET("/policy/history", s.policyHistory)
	g.POST("/policy/rollback/:id", s.rollbackPolicy)
	g.GET("/actions", s.listActions)
	g.GET("/audit", s.listAudit)
	g.GET("/usage", s.adminUsage)
	g.GET("/tokens", s.listTokens)
	g.DELETE("/tokens/:id", s.revokeToken)
	s.scimTokenRoutes(g) // scimtokens.go
}

func (s *Server) listUsers(c *gin.Context) {
	us, err := s.store.Users(c.Request.Context())
	if err != nil {
		s.internal(c, "list users", err)
		return
	}
	out := userList{Users: make([]userInfo, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, newUserInfo(u))
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) setUserDisabled(disabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, err := s.setUserDisabledAs(c.Request.Context(), apiActor(c), c.Param("id"), disabled)
		if s.notFound(c, err, "user") {
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// setUserDisabledAs disables (or enables) user id on behalf of actor,
// records it in the admin trail and pushes the new netmaps: a disabled
// person's devices leave the mesh, their credentials are refused and
// their UI sessions are deleted (enabling them again brings none back).
func (s *Server) setUserDisabledAs(ctx context.Context, actor, id string, disabled bool) (*store.User, error) {
	u, err := s.store.User(ctx, id)
	if err != nil {
		return nil, err
	}
	u.Disabled = disabled
	if err := s.store.UpdateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("update user: %w", err)
	}
	if disabled {
		if err := s.store.DeleteUserUISessions(ctx, u.ID); err != nil {
			return nil, fmt.Errorf("end UI sessions: %w", err)
		}
	}
	s.recordAs(ctx, actor, map[bool]string{true: "user.disable", false: "user.enable"}[disabled], u.ID, u.Email)
	s.changed()
	return u, nil
}

// notFound answers 404 (or 500) for a failed lookup and reports whether
// it did.
func (s *Server) notFound(c *gin.Context, err error, what string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		apiError(c, http.StatusNotFound, "not_found", "no such "+what)
	default:
		s.internal(c, "load "+what, err)
	}
	return true
}

func (s *Server) listDevices(c *gin.Context) {
	ds, err := s.store.Devices(c.Request.Context())
	if err != nil {
		s.internal(c, "list devices", err)
		return
	}
	creds, err := s.store.CurrentNodeCredentials(c.Request.Context())
	if err != nil {
		s.internal(c, "list node credentials", err)
		return
	}
	kind := c.Query("kind")
	out := deviceList{Devices: make([]deviceInfo, 0, len(ds))}
	for _, d := range ds {
		if kind == "" || string(d.Kind) == kind {
			info := newDeviceInfo(d)
			if nc := creds[d.ID]; nc != nil {
				info.CredentialIssued, info.CredentialExpiry = nc.Issued, nc.Expires
			}
			out.Devices = append(out.Devices, info)
		}
	}
	c.JSON(http.StatusOK, out)
}

func (s *Server) changeDevice(action string, change func(*store.Device, time.Time)) gin.HandlerFunc {
	return func(c *gin.Context) {
		_, err := s.changeDeviceAs(c.Request.Context(), apiActor(c), c.Param("id"), action, change)
		if s.notFound(c, err, "device") {
			return
		}
		c.Status(http.StatusNoContent)
	}
}

// revokeDevice and expireDevice are the changes an admin makes to a device.
func revokeDevice(d *store.Device, _ time.Time)   { d.Revoked = true }
func expireDevice(d *store.Device, now time.Time) { d.Expiry = now }

// changeDeviceAs applies change to device id on behalf of actor, records
// action in the admin trail and pushes the new netmaps. A device that is
// revoked or expired by the change loses its stream at once.
func (s *Server) changeDeviceAs(ctx context.Context, actor, id, action string, change func(*store.Device, time.Time)) (*store.Device, error) {
	d, err := s.store.Device(ctx, id)
	if err != nil {
		return nil, err
	}
	change(d, s.cfg.Now())
	if err := s.store.UpdateDevice(ctx, d); err != nil {
		return nil, fmt.Errorf("update device: %w", err)
	}
	s.recordAs(ctx, actor, action, d.ID, d.Hostname)
	if d.Revoked || d.Expired(s.cfg.Now()) {
		s.netmaps.Drop(d.ID)
	}
	s.changed()
	return d, nil
}

func (s *Server) listEnrollKeys(c *gin.Context) {
	ks, err := s.store.EnrollKeys(c.Request.Context())
	if err != nil {
		s.internal(c, "list enrollment keys", err)
		return
	}
	out := enrollKeyList{Keys: make([]enrollKeyInfo, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, newEnrollKeyInfo(k))
	}
	c.JSON(http.StatusOK, out)
}

// createEnrollKey makes a key and shows its secret once:
// POST /api/v1/admin/enroll-keys {"tags":["tag:gpu"],"reusable":false,"expiry":"24h"}.
func (s *Server) createEnrollKey(c *gin.Context) {
	var req struct {
		Tags     []string `json:"tags"`
		Reusable bool     `json:"reusable"`
		Expiry   string   `json:"expiry"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	ttl := 24 * time.Hour
	if req.Expiry != "" {
		d, err := policy.ParseDuration(req.Expiry)
		if err != nil || d == 0 {
			apiError(c, http.StatusBadRequest, "bad_request", "expiry: want a duration from 1s to 90d, like \"24h\"")
			return
		}
		ttl = time.Duration(d)
	}
	k, secret, err := s.newEnrollKey(c.Request.Context(), apiActor(c), req.Tags, req.Reusable, ttl)
	var refusal *userError
	if errors.As(err, &refusal) {
		apiError(c, http.StatusBadRequest, "bad_request", refusal.msg)
		return
	}
	if err != nil {
		s.internal(c, "create enrollment key", err)
		return
	}
	c.JSON(http.StatusCreated, newEnrollKeyAnswer{ID: k.ID, Key: secret, Tags: k.Tags, Reusable: k.Reusable, Expiry: k.Expiry,
		Install: s.installCommand()})
}

// newEnrollKey makes an enrollment key on behalf of actor and records it
// in the admin trail. It returns the key and its secret, which is stored
// only hashed. Bad tags or a ttl outside 1s..90d are a *userError.
func (s *Server) newEnrollKey(ctx context.Context, actor string, tags []string, reusable bool, ttl time.Duration) (*store.EnrollKey, string, error) {
	if ttl < time.Second || ttl > 90*24*time.Hour {
		return nil, "", &userError{"expiry: want a duration from 1s to 90d, like \"24h\""}
	}
	if len(tags) == 0 || len(tags) > 32 {
		return nil, "", &userError{"tags: give 1 to 32 tags such as \"tag:gpu\"; nodes get their access from them"}
	}
	known := s.PolicyInForce(ctx).TagOwners // as saved on any replica
	for _, t := range tags {
		if !strings.HasPrefix(t, "tag:") || len(t) < 5 || len(t) > 64 || strings.ContainsAny(t, " \t\"\\") {
			return nil, "", &userError{fmt.Sprintf("tag %q: want tag:NAME", t)}
		}
		if _, ok := known[t]; !ok {
			return nil, "", &userError{fmt.Sprintf("tag %q is not in the policy's tagOwners: declare it there first (a node with an unknown tag would get no access)", t)}
		}
	}
	secret, hash := newSecret(prefixEnrollKey)
	k := &store.EnrollKey{ID: newID("ek_"), Hash: hash, Tags: tags, Reusable: reusable,
		Expiry: s.cfg.Now().Add(ttl), CreatedBy: actor, Created: s.cfg.Now()}
	if err := s.store.CreateEnrollKey(ctx, k); err != nil {
		return nil, "", fmt.Errorf("create enrollment key: %w", err)
	}
	s.recordAs(ctx, actor, "enrollkey.create", k.ID, strings.Join(k.Tags, ","))
	return k, secret, nil
}

// installCommand is the one line an admin runs on a GPU host; it asks
// for the enrollment key.
func (s *Server) installCommand() string {
	return installCommandLine(s.cfg)
}

func (s *Server) revokeEnrollKey(c *gin.Context) {
	if err := s.revokeEnrollKeyAs(c.Request.Context(), apiActor(c), c.Param("id")); s.notFound(c, err, "enrollment key") {
		return
	}
	c.Status(http.StatusNoContent)
}

// revokeEnrollKeyAs revokes enrollment key id on behalf of actor and
// records it in the admin trail. Nodes that joined with it stay.
func (s *Server) revokeEnrollKeyAs(ctx context.Context, actor, id string) error {
	if err := s.store.RevokeEnrollKey(ctx, id); err != nil {
		return err
	}
	s.recordAs(ctx, actor, "enrollkey.revoke", id, "")
	return nil
}

func (s *Server) listActions(c *gin.Context) {
	n, _ := strconv.Atoi(c.DefaultQuery("limit", "100"))
	as, err := s.store.AdminActions(c.Request.Context(), min(max(n, 1), 1000))
	if err != nil {
		s.internal(c, "list admin actions", err)
		return
	}
	c.JSON(http.StatusOK, actionList{Actions: as})
}
