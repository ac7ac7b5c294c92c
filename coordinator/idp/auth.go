package idp

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"sync"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
)

// dummyHash is verified against when there is no real hash to check, so
// that an unknown email costs as much time as a wrong password.
var dummyHash = sync.OnceValue(func() string { return hashPassword("moat-dummy-password", hashParams) })

func normalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// validEmail reports whether s is a bare address (no display name).
func validEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && len(s) <= 254
}

// checkPassword verifies email and password, unless the sign-in must
// wait (see backoff.go; keys are its counts). Every check counts towards
// the backoff before it is made; success does not clear it (only a complete sign-in does), so
// that knowing the password does not buy more code guesses. Unknown
// accounts cost the same work and get the same answers as known ones.
func (p *Provider) checkPassword(ctx context.Context, keys []backoffKey, email, password string) (*store.IdPUser, error) {
	wait, err := p.attempt(ctx, keys)
	if err != nil {
		return nil, err
	}
	if len(password) > maxPasswordLen {
		return nil, p.failed(wait, "oversized password", errBadLogin) // not even hashed
	}
	u, err := p.users.IdPUserByEmail(ctx, email)
	switch {
	case errors.Is(err, store.ErrNotFound):
		u = nil
	case err != nil:
		p.log.Error("idp: look up user", "err", err)
		return nil, errInternal
	}
	phc := dummyHash()
	if u != nil && p.setUp(ctx, u) {
		phc = u.PasswordHash
	}
	var ok bool
	var verr error
	if err := p.hashing(ctx, func() { ok, verr = VerifyPassword(phc, password) }); err != nil {
		return nil, err
	}
	switch {
	case verr != nil:
		p.log.Error("idp: stored password hash unusable", "user_id", u.ID, "err", verr)
		return nil, errInternal
	case u == nil || phc != u.PasswordHash:
		return nil, p.failed(wait, "unknown account or not set up", errBadLogin)
	case !ok:
		return nil, p.failed(wait, "wrong password", errBadLogin)
	}
	return u, nil
}

// checkCode verifies a TOTP code for user id, unless the sign-in must
// wait, and on success records its step (so that it cannot be used
// again, on any replica).
func (p *Provider) checkCode(ctx context.Context, keys []backoffKey, id, code string) error {
	wait, err := p.attempt(ctx, keys)
	if err != nil {
		return err
	}
	u, err := p.users.IdPUser(ctx, id)
	if err != nil {
		p.log.Error("idp: look up user", "user_id", id, "err", err)
		return errInternal
	}
	if u.TOTPSecret == nil { // a passkey-only account
		return p.failed(wait, "no authenticator app", errBadCode)
	}
	secret, err := p.cfg.Box.Open(u.TOTPSecret, []byte(u.ID))
	if err != nil {
		p.log.Error("idp: open totp secret", "user_id", u.ID, "err", err)
		return errInternal
	}
	step, err := mfa.Verify(string(secret), code, u.TOTPLastStep, p.now())
	switch {
	case errors.Is(err, mfa.ErrReplayed):
		return p.failed(wait, "replayed code", errReplayed)
	case errors.Is(err, mfa.ErrBadCode):
		return p.failed(wait, "wrong code", errBadCode)
	case err != nil:
		p.log.Error("idp: verify code", "user_id", u.ID, "err", err)
		return errInternal
	}
	err = p.users.ClaimIdPTOTPStep(ctx, u.ID, step)
	if errors.Is(err, store.ErrConflict) { // a parallel request used this code first
		return p.failed(wait, "replayed code", errReplayed)
	}
	if err != nil {
		p.log.Error("idp: record sign-in", "user_id", u.ID, "err", err)
		return errInternal
	}
	p.succeeded(ctx, keys)
	return nil
}
