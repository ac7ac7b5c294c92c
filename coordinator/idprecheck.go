package coordinator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/store"
)

// Without SCIM, the coordinator can still notice people the identity
// provider no longer knows: with Config.IdPRecheck set, it keeps the
// refresh token of each person's latest sign-in (sealed) and, every
// IdPRecheck, uses it (the OAuth refresh grant). The IdP refusing the
// grant (invalid_grant: the person was deleted or disabled, or the grant
// revoked) disables the person as a SCIM deactivation does: devices out
// of the mesh at once, UI sessions ended, refused at sign-in until an
// admin enables them. Fresh claims (the refresh's ID token, else
// userinfo) replace the person's IdP groups, and claims that no longer
// pass the admission rules disable them too. Anything else going wrong
// (network, 5xx, a token that does not verify) changes nothing: it is
// logged and counted, and the person is tried again at the next round.
// One replica runs the rounds (the leader of "idp-recheck").

// recheckActor is who re-check changes are recorded as in the admin trail.
const recheckActor = "idp-recheck"

// recheckTick is how often the job looks for people due a re-check.
const recheckTick = time.Minute

// grantAD binds a sealed refresh token to its person.
func grantAD(userID string) []byte { return []byte("idp-refresh:" + userID) }

// keepGrant stores the refresh token of userID's sign-in, sealed, when
// re-checks are on. A failure is logged: the sign-in goes on.
func (s *Server) keepGrant(ctx context.Context, userID, refresh string) {
	if s.cfg.IdPRecheck <= 0 || refresh == "" {
		return
	}
	if err := s.store.SetIdPGrant(ctx, userID, s.box.Seal([]byte(refresh), grantAD(userID)), s.cfg.Now()); err != nil {
		s.log.Error("keep the sign-in's refresh token; the person is not re-checked until they sign in again", "user", userID, "err", err)
	}
}

// startRecheck starts re-checking people while this replica leads
// "idp-recheck"; nil when re-checks are off.
func (s *Server) startRecheck() *leaderJob {
	if s.cfg.IdPRecheck <= 0 {
		return nil
	}
	return s.startLeaderJob("idp-recheck", min(s.cfg.IdPRecheck, recheckTick), s.recheckDue)
}

// recheckDue re-checks everyone whose last re-check is IdPRecheck old.
func (s *Server) recheckDue(ctx context.Context) {
	s.recheckRound(ctx, s.cfg.Now().Add(-s.cfg.IdPRecheck))
}

// recheckRound re-checks everyone last re-checked at or before due.
func (s *Server) recheckRound(ctx context.Context, due time.Time) {
	grants, err := s.store.IdPGrants(ctx)
	if err != nil {
		s.log.Error("IdP re-check: list people", "err", err)
		return
	}
	for _, g := range grants {
		if ctx.Err() != nil {
			return
		}
		if g.Checked.After(due) {
			continue
		}
		result := s.recheck(ctx, g)
		s.mx.rechecks.WithLabelValues(result).Inc()
	}
}

// recheck asks the IdP about the person of g and acts on the answer. It
// returns the outcome (store.IdPCheck…).
func (s *Server) recheck(ctx context.Context, g *store.IdPGrant) string {
	u, err := s.store.User(ctx, g.UserID)
	if errors.Is(err, store.ErrNotFound) || err == nil && u.Disabled {
		_ = s.store.DeleteIdPGrant(ctx, g.UserID) // nobody to re-check; a sign-in stores a new one
		return store.IdPCheckOK
	}
	if err != nil {
		return s.recheckFailed(ctx, g, "load the person", err)
	}
	rt, err := s.box.Open(g.Refresh, grantAD(u.ID))
	if err != nil {
		return s.recheckFailed(ctx, g, "unseal the refresh token", err)
	}
	fresh, err := s.auth.refresh(ctx, string(rt))
	if idpRefused(err) {
		return s.recheckGone(ctx, u, "the identity provider refused the person's refresh token (invalid_grant)")
	}
	var next []byte
	if fresh != nil && fresh.token != "" {
		next = s.box.Seal([]byte(fresh.token), grantAD(u.ID))
	}
	if err != nil {
		s.recordCheck(ctx, u.ID, store.IdPCheckError, g.Refresh, next)
		return s.recheckFailed(ctx, nil, "ask the identity provider", err)
	}
	if fresh.claims != nil {
		if msg := s.freshClaimsRefusal(u, fresh.claims); msg != "" {
			return s.recheckGone(ctx, u, msg)
		}
		if err := s.recheckGroups(ctx, u, fresh.claims.Groups); err != nil {
			s.log.Error("IdP re-check: update groups", "user", u.ID, "err", err)
		}
	}
	s.recordCheck(ctx, u.ID, store.IdPCheckOK, g.Refresh, next)
	return store.IdPCheckOK
}

// idpRefused reports whether err is the IdP refusing the grant itself
// (RFC 6749 5.2 invalid_grant), as opposed to failing to answer.
func idpRefused(err error) bool {
	var re *oauth2.RetrieveError
	return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
}

// freshClaimsRefusal is why claims from a re-check no longer admit u
// ("" when they do).
func (s *Server) freshClaimsRefusal(u *store.User, c *claims) string {
	if c.Subject != u.Subject {
		return fmt.Sprintf("the identity provider answered for another subject (%q)", c.Subject)
	}
	if c.Email == "" {
		c.Email = u.Email // userinfo without the email scope: unchanged
	}
	if err := s.auth.admit(c); err != nil {
		return "no longer admitted: " + err.Error()
	}
	return ""
}

// recheckGone disables u, whom the IdP no longer knows or admits.
func (s *Server) recheckGone(ctx context.Context, u *store.User, why string) string {
	s.log.Warn("IdP re-check: disabling a person the identity provider no longer knows", "user", u.ID, "email", u.Email, "reason", why)
	if err := s.disableNow(ctx, recheckActor, u); err != nil {
		s.log.Error("IdP re-check: disable", "user", u.ID, "err", err)
		return store.IdPCheckError
	}
	s.recordAs(ctx, recheckActor, "user.idp-gone", u.ID, why)
	_ = s.store.DeleteIdPGrant(ctx, u.ID) // spent; the next sign-in stores a new one
	s.changed()
	return store.IdPCheckGone
}

// recheckGroups replaces u's IdP groups by groups, unless SCIM
// provisions u (SCIM's groups win).
func (s *Server) recheckGroups(ctx context.Context, u *store.User, groups []string) error {
	if slices.Equal(groups, u.Groups) {
		return nil
	}
	sus, err := s.store.SCIMUsersByEmail(ctx, u.Email)
	if err != nil || len(sus) > 0 {
		return err
	}
	if err := s.setGroups(ctx, recheckActor, u.ID, groups); err != nil {
		return err
	}
	s.changed()
	return nil
}

// recheckFailed logs a re-check that could not be made (never with the
// token) and records it for g's person when g is given.
func (s *Server) recheckFailed(ctx context.Context, g *store.IdPGrant, op string, err error) string {
	s.log.Warn("IdP re-check failed; the person keeps their access and is tried again", "op", op, "err", err)
	if g != nil {
		s.recordCheck(ctx, g.UserID, store.IdPCheckError, g.Refresh, nil)
	}
	return store.IdPCheckError
}

func (s *Server) recordCheck(ctx context.Context, userID, result string, prev, next []byte) {
	if err := s.store.RecordIdPCheck(ctx, userID, s.cfg.Now(), result, prev, next); err != nil {
		s.log.Error("IdP re-check: record", "user", userID, "err", err)
	}
}

// refreshed is what the IdP says of a person at a re-check.
type refreshed struct {
	claims *claims // nil when neither an ID token nor userinfo said
	token  string  // the rotated refresh token; "" when it was kept
}

// refresh uses refresh token rt (the refresh grant) and reads the fresh
// claims: the answer's ID token, or else userinfo. A token that was
// rotated is returned even with an error, so that it is not lost.
func (a *authenticator) refresh(ctx context.Context, rt string) (*refreshed, error) {
	p, err := a.provider(ctx)
	if err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, a.client)
	tok, err := a.oauth2(p).TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	if err != nil {
		return nil, err
	}
	out := &refreshed{}
	if tok.RefreshToken != rt {
		out.token = tok.RefreshToken
	}
	if raw, ok := tok.Extra("id_token").(string); ok {
		out.claims, _, err = a.verifyToken(ctx, raw)
		return out, err
	}
	info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		a.s.log.Info("IdP re-check: no ID token and no userinfo; groups unchanged", "err", err)
		return out, nil
	}
	out.claims = a.userinfoClaims(info)
	return out, nil
}

// userinfoClaims reads claims from a userinfo answer.
func (a *authenticator) userinfoClaims(info *oidc.UserInfo) *claims {
	c := &claims{Subject: info.Subject, Email: info.Email}
	var all map[string]any
	if err := info.Claims(&all); err == nil {
		if v, ok := all["email_verified"].(bool); ok {
			c.EmailVerified = &v
		}
		a.readExtra(c, all)
	}
	return c
}
