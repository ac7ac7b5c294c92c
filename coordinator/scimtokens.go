package coordinator

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/scim"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/policy"
)

// The admin API manages SCIM tokens as `moat-coordinator scim-tokens`
// does: GET, POST and DELETE /api/v1/admin/scim-tokens[/:id].

// scimTokenInfo is a SCIM token as listed (never its secret).
type scimTokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedBy string    `json:"createdBy"`
	Created   time.Time `json:"created"`
	Expiry    time.Time `json:"expiry,omitzero"`
	Token     string    `json:"token,omitempty"` // only when just made
}

func (s *Server) scimTokenRoutes(g *gin.RouterGroup) {
	g.GET("/scim-tokens", s.listSCIMTokens)
	g.POST("/scim-tokens", s.createSCIMToken)
	g.DELETE("/scim-tokens/:id", s.revokeSCIMToken)
}

func (s *Server) listSCIMTokens(c *gin.Context) {
	ts, err := s.store.SCIMTokens(c.Request.Context())
	if err != nil {
		s.internal(c, "list SCIM tokens", err)
		return
	}
	out := make([]scimTokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, newSCIMTokenInfo(t))
	}
	c.JSON(http.StatusOK, gin.H{"tokens": out})
}

func newSCIMTokenInfo(t *store.SCIMToken) scimTokenInfo {
	return scimTokenInfo{ID: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, Created: t.Created, Expiry: t.Expiry}
}

// createSCIMToken makes a token: POST {"name": "entra", "expiry": "365d"}
// (default a year). The answer carries the token, shown only now.
func (s *Server) createSCIMToken(c *gin.Context) {
	var req struct {
		Name   string `json:"name"`
		Expiry string `json:"expiry"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	if req.Name == "" || len(req.Name) > 100 {
		apiError(c, http.StatusBadRequest, "bad_request", "name: say which IdP the token is for, up to 100 characters")
		return
	}
	var ttl time.Duration
	if req.Expiry != "" {
		d, err := policy.ParseDuration(req.Expiry)
		if err != nil || d <= 0 {
			apiError(c, http.StatusBadRequest, "bad_request", `expiry: want a duration like "365d"`)
			return
		}
		ttl = time.Duration(d)
	}
	tok, err := scim.CreateToken(c.Request.Context(), s.store, req.Name, apiActor(c), ttl)
	if err != nil {
		s.internal(c, "create SCIM token", err)
		return
	}
	info, err := s.scimTokenOf(c, tok)
	if err != nil {
		s.internal(c, "read the SCIM token back", err)
		return
	}
	info.Token = tok
	c.JSON(http.StatusCreated, info)
}

// scimTokenOf finds the stored record of token tok.
func (s *Server) scimTokenOf(c *gin.Context, tok string) (scimTokenInfo, error) {
	sum := sha256.Sum256([]byte(tok))
	ts, err := s.store.SCIMTokens(c.Request.Context())
	for _, t := range ts {
		if bytes.Equal(t.Hash, sum[:]) {
			return newSCIMTokenInfo(t), nil
		}
	}
	if err == nil {
		err = store.ErrNotFound
	}
	return scimTokenInfo{}, err
}

func (s *Server) revokeSCIMToken(c *gin.Context) {
	err := scim.RevokeToken(c.Request.Context(), s.store, c.Param("id"), apiActor(c))
	if errors.Is(err, store.ErrNotFound) {
		apiError(c, http.StatusNotFound, "not_found", "no such SCIM token")
		return
	}
	if err != nil {
		s.internal(c, "revoke SCIM token", err)
		return
	}
	c.Status(http.StatusNoContent)
}
