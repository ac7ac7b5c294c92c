package idp

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
)

// Passkeys at the embedded IdP: a person registers one on the setup page
// (beside or instead of an authenticator app) and uses it as the second
// step of signing in (POST /login/passkey), which then reports amr "hwk"
// or "swk" instead of "otp". A new setup link (an admin's reset) replaces
// the person's passkeys with what they register then.

func person(u *store.IdPUser) *passkey.Person {
	return &passkey.Person{ID: u.ID, Name: u.Email, DisplayName: cmp.Or(u.Name, u.Email)}
}

// hasPasskey reports whether u has a passkey here.
func (p *Provider) hasPasskey(ctx context.Context, u *store.IdPUser) bool {
	if p.passkeys == nil {
		return false
	}
	has, err := p.passkeys.Has(ctx, u.ID)
	if err != nil {
		p.log.Error("idp: look up passkeys", "user_id", u.ID, "err", err)
	}
	return has
}

// setUp reports whether u finished setting up: a password and a second
// factor.
func (p *Provider) setUp(ctx context.Context, u *store.IdPUser) bool {
	return u.PasswordHash != "" && (u.TOTPSecret != nil || p.hasPasskey(ctx, u))
}

// passkeyLogin adds to v the passkey sign-in of the second step when u
// has a passkey.
func (p *Provider) passkeyLogin(ctx context.Context, a *authRequest, u *store.IdPUser, v *view) error {
	if !p.hasPasskey(ctx, u) {
		return nil
	}
	cer, err := p.passkeys.BeginLogin(ctx, person(u), "idp-login:"+a.id)
	if err != nil {
		return err
	}
	v.Passkey, v.PasskeyMode = &cer, "login"
	return nil
}

// passkeySubmit checks the passkey of the second step: POST /login/passkey.
func (p *Provider) passkeySubmit(w http.ResponseWriter, r *http.Request) {
	a := p.postedRequest(w, r)
	if a == nil {
		return
	}
	if a.pwUser == "" || p.passkeys == nil {
		http.Redirect(w, r, p.prefix+"/login?authRequestID="+url.QueryEscape(a.id), http.StatusSeeOther)
		return
	}
	method, err := p.checkPasskey(r.Context(), p.backoffKeys(r, stepCode, a.pwEmail), a, r.PostFormValue("ceremony"), r.PostFormValue("answer"))
	if err != nil {
		p.renderTOTP(w, r, a, statusOf(err), err)
		return
	}
	p.finish(w, r, a, method)
}

// checkPasskey verifies the passkey answer of sign-in a, unless the
// sign-in must wait (backoff.go), and returns its method.
func (p *Provider) checkPasskey(ctx context.Context, keys []backoffKey, a *authRequest, id, answer string) (string, error) {
	wait, err := p.attempt(ctx, keys)
	if err != nil {
		return "", err
	}
	u, err := p.users.IdPUser(ctx, a.pwUser)
	if err != nil {
		p.log.Error("idp: look up user", "user_id", a.pwUser, "err", err)
		return "", errInternal
	}
	method, err := p.passkeys.FinishLogin(ctx, person(u), "idp-login:"+a.id, id, answer)
	for _, e := range []error{passkey.ErrExpired, passkey.ErrRefused, passkey.ErrCloned, passkey.ErrNoPasskeys, passkey.ErrUnverified} {
		if errors.Is(err, e) {
			return "", p.failed(wait, "passkey refused", &userError{http.StatusUnauthorized, "That did not work: " + e.Error() + "."})
		}
	}
	if err != nil {
		p.log.Error("idp: check passkey", "user_id", u.ID, "err", err)
		return "", errInternal
	}
	p.succeeded(ctx, keys)
	return method, nil
}

// passkeySetup adds to v a passkey registration for the setup page of u,
// bound to the setup token's hash.
func (p *Provider) passkeySetup(ctx context.Context, u *store.IdPUser, hash []byte, v *view) {
	if p.passkeys == nil {
		return
	}
	cer, err := p.passkeys.BeginRegistration(ctx, person(u), setupPurpose(hash))
	if err != nil {
		p.log.Error("idp: start passkey registration", "user_id", u.ID, "err", err)
		return // the app still works
	}
	v.Passkey, v.PasskeyMode = &cer, "register"
}

func setupPurpose(hash []byte) string { return "idp-setup:" + string(enrollAD("", hash)) }
