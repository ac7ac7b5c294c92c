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

// checkPassword verifies email and password. Failures count towards the
// lockout; success does not reset the count (only a complete sign-in
// does), so that knowing the password does not buy more code guesses.
func (p *Provider) checkPassword(ctx context.Context, email, password string) (*store.IdPUser, error) {
	found, err := p.users.IdPUserByEmail(ctx, email)
	if errors.Is(err, store.ErrNotFound) || len(password) > maxPasswordLen {
		p.verifyDummy(ctx, password)
		p.log.Info("idp: sign-in refused", "reason", "unknown account or oversized password")
		return nil, errBadLogin
	}
	if err != nil {
		p.log.Error("idp: look up user", "err", err)
		return nil, errInternal
	}
	defer p.lockUser(found.ID)()
	u, err := p.users.IdPUser(ctx, found.ID) // fresh, under the lock
	if err != nil {
		p.log.Error("idp: look up user", "user_id", found.ID, "err", err)
		return nil, errInternal
	}
	now := p.now()
	if p.cfg.Lockout.Check(u.LockedUntil, now) != nil {
		p.log.Info("idp: sign-in refused", "user_id", u.ID, "reason", "locked")
		return nil, locked(u.LockedUntil)
	}
	if u.PasswordHash == "" || u.TOTPSecret == nil {
		p.verifyDummy(ctx, password)
		p.log.Info("idp: sign-in refused", "user_id", u.ID, "reason", "account not set up")
		return nil, errBadLogin
	}
	var ok bool
	var verr error
	if err := p.hashing(ctx, func() { ok, verr = VerifyPassword(u.PasswordHash, password) }); err != nil {
		return nil, errInternal
	}
	if verr != nil {
		p.log.Error("idp: stored password hash unusable", "user_id", u.ID, "err", verr)
		return nil, errInternal
	}
	if !ok {
		return nil, p.fail(ctx, u, "wrong password", errBadLogin)
	}
	return u, nil
}

func (p *Provider) verifyDummy(ctx context.Context, password string) {
	if len(password) > maxPasswordLen {
		password = password[:maxPasswordLen]
	}
	_ = p.hashing(ctx, func() { VerifyPassword(dummyHash(), password) })
}

// fail counts one failure for u (whose lock the caller holds) and returns
// the error to show: the lockout when this failure locked the account,
// otherwise shown.
func (p *Provider) fail(ctx context.Context, u *store.IdPUser, reason string, shown error) error {
	now := p.now()
	u.Failures, u.LockedUntil = p.cfg.Lockout.Fail(u.Failures, now)
	if err := p.users.UpdateIdPUser(ctx, u); err != nil {
		p.log.Error("idp: record failed attempt", "user_id", u.ID, "err", err)
		return errInternal
	}
	p.log.Info("idp: sign-in refused", "user_id", u.ID, "reason", reason, "failures", u.Failures)
	if !u.LockedUntil.IsZero() {
		return locked(u.LockedUntil)
	}
	return shown
}

// checkCode verifies a TOTP code for user id and, on success, records its
// step (so it cannot be used again) and clears the failure count.
func (p *Provider) checkCode(ctx context.Context, id, code string) error {
	defer p.lockUser(id)()
	u, err := p.users.IdPUser(ctx, id)
	if err != nil {
		p.log.Error("idp: look up user", "user_id", id, "err", err)
		return errInternal
	}
	now := p.now()
	if p.cfg.Lockout.Check(u.LockedUntil, now) != nil {
		return locked(u.LockedUntil)
	}
	secret, err := p.cfg.Box.Open(u.TOTPSecret, []byte(u.ID))
	if err != nil {
		p.log.Error("idp: open totp secret", "user_id", u.ID, "err", err)
		return errInternal
	}
	step, err := mfa.Verify(string(secret), code, u.TOTPLastStep, now)
	switch {
	case errors.Is(err, mfa.ErrReplayed):
		return p.fail(ctx, u, "replayed code", errReplayed)
	case errors.Is(err, mfa.ErrBadCode):
		return p.fail(ctx, u, "wrong code", errBadCode)
	case err != nil:
		p.log.Error("idp: verify code", "user_id", u.ID, "err", err)
		return errInternal
	}
	u.TOTPLastStep = step
	u.Failures, u.LockedUntil = p.cfg.Lockout.Succeed()
	if err := p.users.UpdateIdPUser(ctx, u); err != nil {
		p.log.Error("idp: record sign-in", "user_id", u.ID, "err", err)
		return errInternal
	}
	return nil
}
