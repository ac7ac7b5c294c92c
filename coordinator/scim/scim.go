// Package scim serves SCIM 2.0 provisioning (RFC 7643, RFC 7644) under
// /scim/v2: an identity provider's provisioning agent (Entra ID, Okta,
// …) creates, changes, deactivates and deletes people and groups here.
//
// The protocol (routing, schemas, filter and PATCH parsing, validation,
// errors) is github.com/elimity-com/scim; this package stores what it is
// sent (coordinator/store's scim_* tables), applies PATCH operations the
// way Entra ID and Okta send them, and tells the coordinator which SCIM
// users changed, through Config.Changed, so that it can disable people and
// carry their groups into the policy. Every request needs a SCIM bearer
// token ("moat_scim_…", see CreateToken), stored hashed.
package scim

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"
	"time"

	scimlib "github.com/elimity-com/scim"
	"github.com/elimity-com/scim/optional"
	"github.com/elimity-com/scim/schema"

	"github.com/moatmesh/moat/coordinator/store"
)

// Prefix is where the SCIM endpoints are mounted.
const Prefix = "/scim/v2"

// Config is what New needs.
type Config struct {
	// Store keeps tokens, users and groups. Required.
	Store *store.DB
	// Changed is called after SCIM users change (created, replaced,
	// patched, deleted, or their group memberships). An error fails the
	// request with 500, so the IdP retries. Required.
	Changed func(ctx context.Context, c Change) error
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives refusals and internal errors; nil discards.
	Log *slog.Logger
}

// New returns the SCIM handler; mount it at Prefix without stripping.
func New(cfg Config) (http.Handler, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	// Entra ID has sent booleans as strings ("False"); the library parses
	// them only with this (process-wide) switch.
	schema.SetAllowStringValues(true)
	users := &userHandler{cfg: cfg}
	groups := &groupHandler{cfg: cfg}
	srv, err := scimlib.NewServer(&scimlib.ServerArgs{
		ServiceProviderConfig: &scimlib.ServiceProviderConfig{
			SupportFiltering: true,
			SupportPatch:     true,
			AuthenticationSchemes: []scimlib.AuthenticationScheme{{
				Type: scimlib.AuthenticationTypeOauthBearerToken, Name: "Bearer token",
				Description: "A SCIM token made with `moat-coordinator scim-tokens create`.", Primary: true,
			}},
		},
		ResourceTypes: []scimlib.ResourceType{{
			ID: optional.NewString("User"), Name: "User", Endpoint: "/Users",
			Description: optional.NewString("People"), Schema: schema.CoreUserSchema(),
			SchemaExtensions: []scimlib.SchemaExtension{{Schema: schema.ExtensionEnterpriseUser()}},
			Handler:          users,
		}, {
			ID: optional.NewString("Group"), Name: "Group", Endpoint: "/Groups",
			Description: optional.NewString("Groups, named idp:<displayName> in the policy"),
			Schema:      schema.CoreGroupSchema(), Handler: groups,
		}},
	})
	if err != nil {
		return nil, err
	}
	a := &auth{cfg: cfg}
	return http.StripPrefix("/scim", a.wrap(srv)), nil
}

// Change says which SCIM users changed.
type Change struct {
	// Users are the SCIM ids of the users that changed.
	Users []string
	// Reactivated are those among Users whose active went from false to
	// true in this request: only they may be enabled again.
	Reactivated []string
}

// auth admits requests carrying a live SCIM token.
type auth struct{ cfg Config }

func (a *auth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.admit(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="moat SCIM"`)
			w.Header().Set("Content-Type", "application/scim+json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"401","detail":"send a SCIM token (moat-coordinator scim-tokens create) as a bearer token"}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// admit looks the token up by its hash and compares the stored hash in
// constant time; an unknown or expired token is refused.
func (a *auth) admit(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !strings.HasPrefix(tok, TokenPrefix) {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	t, err := a.cfg.Store.SCIMTokenByHash(r.Context(), sum[:])
	if err != nil {
		a.cfg.Log.Warn("SCIM request refused", "reason", "unknown token")
		return false
	}
	if subtle.ConstantTimeCompare(t.Hash, sum[:]) != 1 {
		return false
	}
	if !t.Expiry.IsZero() && !a.cfg.Now().Before(t.Expiry) {
		a.cfg.Log.Warn("SCIM request refused", "reason", "expired token", "token", t.ID)
		return false
	}
	return true
}
