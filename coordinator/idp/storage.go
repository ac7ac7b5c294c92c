package idp

import (
	"context"
	"errors"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// opStorage is the provider as op.Storage: clients from Config, users
// from Users, protocol state in the store (State).
type opStorage struct{ p *Provider }

var (
	errNoClient      = errors.New("unknown client")
	errNotSupported  = errors.New("not supported by this provider")
	errUnknownToken  = errors.New("unknown or expired access token")
	errUnknownCode   = errors.New("unknown, used or expired authorization code")
	errClientSecret  = errors.New("wrong client secret")
	errPublicNoCreds = errors.New("public client has no secret")
)

func (s opStorage) now() time.Time { return s.p.now() }

// CreateAuthRequest refuses what op's own checks let through: a
// redirect_uri that is not registered exactly, a missing openid scope,
// and a missing or non-S256 PKCE challenge.
func (s opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	cl := s.p.clients[req.ClientID]
	if cl == nil {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("unknown client_id")
	}
	if !slices.Contains(cl.c.RedirectURIs, req.RedirectURI) {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client")
	}
	if !slices.Contains(req.Scopes, oidc.ScopeOpenID) {
		return nil, oidc.ErrInvalidScope().WithDescription("the openid scope is required")
	}
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	a := &authRequest{
		id:           randomID(),
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       req.Scopes,
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		challenge:    &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: oidc.CodeChallengeMethodS256},
		prompt:       req.Prompt,
		expires:      s.now().Add(requestTTL),
	}
	if err := s.p.state.addRequest(ctx, a, s.now()); err != nil {
		return nil, oidc.ErrServerError().WithDescription("%s", err.Error())
	}
	return a, nil
}

func (s opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	return s.p.state.request(ctx, id, s.now())
}

func (s opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	a, ok := s.p.state.takeCode(ctx, code, s.now())
	if !ok {
		return nil, errUnknownCode
	}
	return a, nil
}

func (s opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.p.state.saveCode(ctx, id, code, s.now())
}

func (s opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.p.state.deleteRequest(ctx, id)
}

func (s opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	t := accessToken{subject: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: s.now().Add(tokenTTL)}
	if o, ok := req.(grantOrigin); ok {
		t.clientID = o.GetClientID()
	}
	id := randomID()
	if err := s.p.state.addToken(ctx, id, t, s.now()); err != nil {
		return "", time.Time{}, oidc.ErrServerError().WithDescription("%s", err.Error())
	}
	return id, t.expires, nil
}

// TerminateSession has nothing to end: the provider keeps no sign-in
// session between sign-ins.
func (s opStorage) TerminateSession(context.Context, string, string) error { return nil }

func (s opStorage) RevokeToken(ctx context.Context, tokenOrID, _, clientID string) *oidc.Error {
	if t, ok := s.p.state.token(ctx, tokenOrID, s.now()); ok && t.clientID == clientID {
		if err := s.p.state.deleteToken(ctx, tokenOrID); err != nil {
			return oidc.ErrServerError().WithDescription("the token could not be revoked; try again")
		}
	}
	return nil
}

func (s opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	k, _, err := s.p.keys.keys(ctx)
	return k, err
}

func (s opStorage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	_, valid, err := s.p.keys.keys(ctx)
	out := make([]op.Key, len(valid))
	for i, k := range valid {
		out[i] = publicKey{k}
	}
	return out, err
}

func (s opStorage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	if cl := s.p.clients[id]; cl != nil {
		return cl, nil
	}
	return nil, errNoClient
}

func (s opStorage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	cl := s.p.clients[id]
	switch {
	case cl == nil:
		return errNoClient
	case cl.public():
		return errPublicNoCreds
	case !cl.secretOK(secret):
		return errClientSecret
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does
// the work.
func (s opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's user claims.
func (s opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.p.setUserinfo(ctx, info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken answers the userinfo endpoint.
func (s opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, ok := s.p.state.token(ctx, tokenID, s.now())
	if !ok || t.subject != subject {
		return errUnknownToken
	}
	return s.p.setUserinfo(ctx, info, subject, t.scopes)
}

func (s opStorage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return errNotSupported
}

func (s opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotSupported
}

func (s opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errNotSupported
}

func (s opStorage) Health(context.Context) error { return nil }
