package idp

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/moatmesh/moat/coordinator/store"
)

// Refresh tokens let a relying party re-check a person later: a client
// that asks for the offline_access scope gets one with its first tokens.
// Each lives refreshTTL from its issue and is spent when used (rotation:
// the answer carries the next one). A refresh of a user who no longer
// exists is refused with invalid_grant, so a relying party learns that
// the person is gone; a store failure is answered 503
// (temporarily_unavailable), never invalid_grant.
const (
	refreshTTL       = 30 * 24 * time.Hour
	maxRefreshTokens = 100_000
)

// refreshRequest is a live refresh token as op.RefreshTokenRequest.
type refreshRequest struct {
	t      *store.IdPRefreshToken
	scopes []string
}

func (r *refreshRequest) GetAMR() []string            { return r.t.AMR }
func (r *refreshRequest) GetAudience() []string       { return []string{r.t.ClientID} }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.t.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.t.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.t.Subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// grantOrigin is what a new refresh token carries over from the request
// it is issued for: a finished sign-in or an earlier refresh token.
type grantOrigin interface {
	GetAMR() []string
	GetAuthTime() time.Time
	GetClientID() string
}

// CreateAccessAndRefreshTokens issues an access token and a refresh
// token, spending current (a refresh token being used) first: of two
// uses of one token, only one gets new tokens.
func (s opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	if current != "" {
		err := s.p.state.st.TakeIdPRefreshToken(ctx, keyHash(current), s.now())
		if errors.Is(err, store.ErrNotFound) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was already used")
		}
		if err != nil {
			return "", "", time.Time{}, oidc.ErrServerError().WithDescription("the refresh token could not be checked; try again")
		}
	}
	access, exp, err := s.CreateAccessToken(ctx, req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	o, ok := req.(grantOrigin)
	if !ok {
		return "", "", time.Time{}, oidc.ErrUnsupportedGrantType()
	}
	refresh := randomID()
	t := &store.IdPRefreshToken{Hash: keyHash(refresh), Subject: req.GetSubject(), ClientID: o.GetClientID(),
		Scopes: slices.Clone(req.GetScopes()), AMR: o.GetAMR(), AuthTime: o.GetAuthTime(), Expires: s.now().Add(refreshTTL)}
	if err := capped(s.p.state.st.CreateIdPRefreshToken(ctx, t, s.now(), maxRefreshTokens)); err != nil {
		return "", "", time.Time{}, oidc.ErrServerError().WithDescription("%s", err.Error())
	}
	return access, refresh, exp, nil
}

// TokenRequestByRefreshToken returns the live refresh token tok of a user
// who still exists. op answers every error here with invalid_grant, so a
// store failure is also flagged for tokenGuard, which answers 503.
func (s opStorage) TokenRequestByRefreshToken(ctx context.Context, tok string) (op.RefreshTokenRequest, error) {
	t, err := s.p.state.st.IdPRefreshToken(ctx, keyHash(tok), s.now())
	if err == nil {
		_, err = s.p.users.IdPUser(ctx, t.Subject)
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			markUnavailable(ctx)
		}
		return nil, op.ErrInvalidRefreshToken
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

// GetRefreshTokenInfo serves revocation: the user and the token's id.
func (s opStorage) GetRefreshTokenInfo(ctx context.Context, _ string, tok string) (string, string, error) {
	t, err := s.p.state.st.IdPRefreshToken(ctx, keyHash(tok), s.now())
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return t.Subject, tok, nil
}

type unavailableKey struct{}

// markUnavailable flags the token request of ctx as failed by the store.
func markUnavailable(ctx context.Context) {
	if f, ok := ctx.Value(unavailableKey{}).(*atomic.Bool); ok {
		f.Store(true)
	}
}

// tokenGuard answers a token request 503 when the store failed it (see
// TokenRequestByRefreshToken), in place of what op would answer.
func tokenGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		failed := new(atomic.Bool)
		next.ServeHTTP(&unavailableWriter{ResponseWriter: w, failed: failed},
			r.WithContext(context.WithValue(r.Context(), unavailableKey{}, failed)))
	})
}

// unavailableWriter passes the answer through unless failed is set by
// the time it starts, when it writes 503 instead and drops the rest.
type unavailableWriter struct {
	http.ResponseWriter
	failed   *atomic.Bool
	replaced bool
}

func (w *unavailableWriter) WriteHeader(code int) {
	if !w.failed.Load() {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if !w.replaced {
		w.replaced = true
		w.Header().Set("Content-Type", "application/json")
		w.ResponseWriter.WriteHeader(http.StatusServiceUnavailable)
		w.ResponseWriter.Write([]byte(`{"error":"temporarily_unavailable","error_description":"the provider's store failed; try again"}`))
	}
}

func (w *unavailableWriter) Write(b []byte) (int, error) {
	if !w.failed.Load() {
		return w.ResponseWriter.Write(b)
	}
	w.WriteHeader(0)
	return len(b), nil
}
