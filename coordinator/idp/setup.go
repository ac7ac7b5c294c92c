package idp

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
)

// The setup page: GET /setup?token=… shows a form with a new TOTP secret
// (carried sealed in the form until confirmed, so nothing is stored
// before the person finishes); POST /setup sets the password and the
// secret and spends the token.

const csrfSetup = "setup"

var errSetupLink = &userError{http.StatusGone, "This setup link is invalid, already used or expired. Ask an admin for a new one."}

// setupUser returns the user whose live setup token is token.
func (p *Provider) setupUser(r *http.Request, token string) (*store.IdPUser, []byte, error) {
	if token == "" {
		return nil, nil, errSetupLink
	}
	hash := setupHash(token)
	u, err := p.users.IdPUserBySetupHash(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, errSetupLink
	}
	if err != nil {
		p.log.Error("idp: look up setup token", "err", err)
		return nil, nil, errInternal
	}
	if !p.now().Before(u.SetupExpiry) || subtle.ConstantTimeCompare(u.SetupHash, hash) != 1 {
		return nil, nil, errSetupLink
	}
	return u, hash, nil
}

// enrollAD binds a sealed, unconfirmed secret to one user and setup token.
func enrollAD(userID string, hash []byte) []byte {
	return []byte("idp-setup\x00" + userID + "\x00" + hex.EncodeToString(hash))
}

func (p *Provider) setupPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	u, hash, err := p.setupUser(r, token)
	if err != nil {
		p.message(w, http.StatusGone, "Setup link not valid", userMessage(err))
		return
	}
	e, err := mfa.NewSecret(p.cfg.Name, u.Email)
	if err != nil {
		p.log.Error("idp: new totp secret", "err", err)
		p.message(w, http.StatusInternalServerError, "Error", errInternal.msg)
		return
	}
	cookie := p.ensureCookie(w, r)
	v := &view{
		Title: "Set up your account", Email: u.Email, Token: token,
		CSRF:   p.csrfToken(csrfSetup, hex.EncodeToString(hash), cookie),
		Enroll: base64.RawURLEncoding.EncodeToString(p.cfg.Box.Seal([]byte(e.Secret), enrollAD(u.ID, hash))),
		Secret: e.Secret, QR: templateURL(e.QR),
	}
	p.passkeySetup(r.Context(), u, hash, v)
	p.render(w, http.StatusOK, "setup", v)
}

func (p *Provider) setupSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad form", "The form could not be read. Open the setup link again.")
		return
	}
	token := r.PostFormValue("token")
	u, hash, err := p.setupUser(r, token)
	if err != nil {
		p.message(w, http.StatusGone, "Setup link not valid", userMessage(err))
		return
	}
	if !p.csrfOK(r, csrfSetup, hex.EncodeToString(hash)) {
		p.message(w, http.StatusForbidden, "Form expired",
			"The form's security check failed (it is stale, or was not sent from this page). Open the setup link again.")
		return
	}
	sealed, _ := base64.RawURLEncoding.DecodeString(r.PostFormValue("enroll"))
	secret, err := p.cfg.Box.Open(sealed, enrollAD(u.ID, hash))
	if err != nil {
		p.message(w, http.StatusBadRequest, "Form expired", "The setup form is stale. Open the setup link again.")
		return
	}
	password, answer := r.PostFormValue("password"), r.PostFormValue("answer")
	step, errs := p.checkSetupForm(u, password, r.PostFormValue("confirm"), string(secret), r.PostFormValue("code"), answer == "")
	if errs != nil {
		p.renderSetupErrors(w, r, u, string(secret), errs)
		return
	}
	var key *store.Passkey
	if answer != "" {
		if key, err = p.setupPasskey(r, u, hash, answer); err != nil {
			p.renderSetupErrors(w, r, u, string(secret), map[string]string{"passkey": userMessage(err)})
			return
		}
		secret = nil // the passkey instead of the app
	}
	if err := p.completeSetup(r, u.ID, hash, password, secret, step, key); err != nil {
		p.message(w, statusOf(err), "Setup failed", userMessage(err))
		return
	}
	p.log.Info("idp: account set up", "user_id", u.ID, "passkey", key != nil)
	what := "authenticator app"
	if key != nil {
		what = "passkey"
	}
	p.message(w, http.StatusOK, "Account ready",
		"Your password and "+what+" are set. Go back to the application and sign in.")
}

// checkSetupForm returns the step of a valid code (when withCode), or
// errors by field.
func (p *Provider) checkSetupForm(u *store.IdPUser, password, confirm, secret, code string, withCode bool) (int64, map[string]string) {
	errs := map[string]string{}
	if err := CheckPassword(password, u.Email); err != nil {
		errs["password"] = "Choose another password: " + err.Error() + "."
	} else if subtle.ConstantTimeCompare([]byte(password), []byte(confirm)) != 1 {
		errs["confirm"] = "The two passwords differ."
	}
	var step int64
	var err error
	if withCode {
		step, err = mfa.Verify(secret, code, 0, p.now())
	}
	if err != nil {
		errs["code"] = "That code is not valid. Check that the app shows " + p.cfg.Name + " and enter its current code."
	}
	if len(errs) > 0 {
		return 0, errs
	}
	return step, nil
}

func (p *Provider) renderSetupErrors(w http.ResponseWriter, r *http.Request, u *store.IdPUser, secret string, errs map[string]string) {
	e, err := mfa.EnrollmentFor(p.cfg.Name, u.Email, secret)
	if err != nil {
		p.message(w, http.StatusInternalServerError, "Error", errInternal.msg)
		return
	}
	v := &view{
		Title: "Set up your account", Email: u.Email, Token: r.PostFormValue("token"),
		CSRF: r.PostFormValue("csrf"), Enroll: r.PostFormValue("enroll"),
		Secret: e.Secret, QR: templateURL(e.QR), Errors: errs,
	}
	p.passkeySetup(r.Context(), u, setupHash(r.PostFormValue("token")), v)
	p.render(w, http.StatusBadRequest, "setup", v)
}

// completeSetup stores the password and TOTP secret (nil: none) and
// spends the token in one statement that succeeds only while the token
// is still live: of two posts of one link, on any replicas, one wins.
// Then the person's passkeys are replaced by key (nil: none), so that a
// new setup link (an admin's reset) also retires lost passkeys.
func (p *Provider) completeSetup(r *http.Request, id string, hash []byte, password string, secret []byte, step int64, key *store.Passkey) error {
	var phc string
	if err := p.hashing(r.Context(), func() { phc = HashPassword(password) }); err != nil {
		return err
	}
	var sealed []byte
	if secret != nil {
		sealed = p.cfg.Box.Seal(secret, []byte(id))
	}
	err := p.users.CompleteIdPSetup(r.Context(), id, hash, p.now(), phc, sealed, step)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return errSetupLink
	case err != nil:
		p.log.Error("idp: complete setup", "user_id", id, "err", err)
		return errInternal
	}
	if err := p.replacePasskeys(r.Context(), id, key); err != nil {
		p.log.Error("idp: replace passkeys", "user_id", id, "err", err)
		return errInternal // fails closed: without its passkey the account cannot sign in
	}
	return nil
}

// replacePasskeys removes the passkeys of user id and stores key.
func (p *Provider) replacePasskeys(ctx context.Context, id string, key *store.Passkey) error {
	if err := p.pkStore.DeletePasskeys(ctx, id); err != nil {
		return err
	}
	if key == nil {
		return nil
	}
	return p.passkeys.Save(ctx, key)
}

// setupPasskey verifies the passkey registered on u's setup page.
func (p *Provider) setupPasskey(r *http.Request, u *store.IdPUser, hash []byte, answer string) (*store.Passkey, error) {
	if p.passkeys == nil {
		return nil, &userError{http.StatusBadRequest, "Passkeys are off here (the address is an IP address). Use an authenticator app."}
	}
	key, _, err := p.passkeys.VerifyRegistration(r.Context(), person(u), setupPurpose(hash), r.PostFormValue("ceremony"), answer, r.PostFormValue("name"))
	for _, e := range []error{passkey.ErrExpired, passkey.ErrRefused, passkey.ErrUnverified} {
		if errors.Is(err, e) {
			return nil, &userError{http.StatusBadRequest, "The passkey was not registered: " + e.Error() + "."}
		}
	}
	if err != nil {
		p.log.Error("idp: register passkey", "user_id", u.ID, "err", err)
		return nil, errInternal
	}
	return key, nil
}
