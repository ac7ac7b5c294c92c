package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
)

// Admin API tokens: made by the CLI (`moat-coordinator tokens create`),
// stored hashed, expiring (DefaultAPITokenExpiry unless told), listed and
// revoked by the CLI and the admin API; making and revoking one is in the
// admin trail.

// DefaultAPITokenExpiry is how long an admin API token lives when its
// maker does not say.
const DefaultAPITokenExpiry = 90 * 24 * time.Hour

// APITokenStore is where CreateAPIToken and RevokeAPIToken keep tokens
// and the admin trail.
type APITokenStore interface {
	CreateAPIToken(ctx context.Context, t *store.APIToken) error
	DeleteAPIToken(ctx context.Context, id string) error
	LogAdminAction(ctx context.Context, a *store.AdminAction) error
}

// CreateAPIToken makes an admin API token named name on behalf of
// createdBy, stores its hash, records "token.create" in the admin trail
// and returns the token (shown once). It expires after expiry; 0 means
// DefaultAPITokenExpiry.
func CreateAPIToken(ctx context.Context, st APITokenStore, name, createdBy string, expiry time.Duration) (string, error) {
	if expiry <= 0 {
		expiry = DefaultAPITokenExpiry
	}
	tok, hash := newSecret(prefixAPIToken)
	now := time.Now()
	t := &store.APIToken{ID: newID("at_"), Hash: hash, Name: name, CreatedBy: createdBy, Created: now, Expiry: now.Add(expiry)}
	if err := st.CreateAPIToken(ctx, t); err != nil {
		return "", fmt.Errorf("store token: %w", err)
	}
	detail := fmt.Sprintf("%s, expires %s", name, t.Expiry.UTC().Format(time.RFC3339))
	if err := st.LogAdminAction(ctx, &store.AdminAction{Time: now, Actor: createdBy, Action: "token.create", Target: t.ID, Detail: detail}); err != nil {
		return "", fmt.Errorf("admin trail: %w", err)
	}
	return tok, nil
}

// RevokeAPIToken deletes token id on behalf of actor and records
// "token.revoke" in the admin trail. An unknown id is store.ErrNotFound.
func RevokeAPIToken(ctx context.Context, st APITokenStore, id, actor string) error {
	if err := st.DeleteAPIToken(ctx, id); err != nil {
		return err
	}
	if err := st.LogAdminAction(ctx, &store.AdminAction{Time: time.Now(), Actor: actor, Action: "token.revoke", Target: id}); err != nil {
		return fmt.Errorf("admin trail: %w", err)
	}
	return nil
}

// tokenInfo is one admin API token as the admin API lists it; the secret
// is never stored.
type tokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	CreatedBy string     `json:"created_by"`
	Created   time.Time  `json:"created"`
	Expiry    *time.Time `json:"expiry,omitempty"`
}

type tokenList struct {
	Tokens []tokenInfo `json:"tokens"`
}

// listTokens answers GET /api/v1/admin/tokens.
func (s *Server) listTokens(c *gin.Context) {
	ts, err := s.store.APITokens(c.Request.Context())
	if err != nil {
		s.internal(c, "list API tokens", err)
		return
	}
	out := tokenList{Tokens: make([]tokenInfo, 0, len(ts))}
	for _, t := range ts {
		info := tokenInfo{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created}
		if !t.Expiry.IsZero() {
			info.Expiry = &t.Expiry
		}
		out.Tokens = append(out.Tokens, info)
	}
	c.JSON(http.StatusOK, out)
}

// revokeToken answers DELETE /api/v1/admin/tokens/:id; a token may
// revoke itself.
func (s *Server) revokeToken(c *gin.Context) {
	err := RevokeAPIToken(c.Request.Context(), s.store, c.Param("id"), apiActor(c))
	if errors.Is(err, store.ErrNotFound) {
		apiError(c, http.StatusNotFound, "not_found", "no API token "+c.Param("id"))
		return
	}
	if err != nil {
		s.internal(c, "revoke API token", err)
		return
	}
	c.Status(http.StatusNoContent)
}
