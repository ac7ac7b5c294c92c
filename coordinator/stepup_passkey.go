package coordinator

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
)

// Passkeys as the coordinator's own second factor (totp.go has the
// code): asked for when the IdP's amr does not prove MFA, or proves it
// without a phishing-resistant method while the person has a passkey
// here. A person with no factor yet may register a passkey (or enroll an
// app) during the sign-in; more passkeys, names and removal are on
// /account/passkeys once signed in (account_passkeys.go).

// newPasskeys is the relying party of the public URL, or nil (with a
// log line) when the URL names an IP address, where WebAuthn cannot work.
func (s *Server) newPasskeys() *passkey.RP {
	rp, err := passkey.New(s.cfg.PublicURL, "moat", s.store, s.cfg.Now)
	if err != nil {
		s.log.Warn("passkeys are off", "err", err)
		return nil
	}
	return rp
}

func personOf(u *store.User) *passkey.Person {
	return &passkey.Person{ID: u.ID, Name: u.Email, DisplayName: cmp.Or(u.Name, u.Email)}
}

// amrMethod is the method the device record keeps for an IdP's amr:
// "hwk" or "swk" when named, else "otp" or "mfa".
func amrMethod(amr []string) string {
	for _, m := range []string{passkey.MethodHardware, passkey.MethodSoftware, "otp"} {
		if slices.Contains(amr, m) {
			return m
		}
	}
	return "mfa"
}

// phishingResistant reports whether method is a passkey's.
func phishingResistant(method string) bool {
	return method == passkey.MethodHardware || method == passkey.MethodSoftware
}

// hasPasskey reports whether person id has a passkey at the coordinator.
func (s *Server) hasPasskey(ctx context.Context, id string) (bool, error) {
	if s.passkeys == nil {
		return false, nil
	}
	return s.passkeys.Has(ctx, id)
}

// passkeyForm adds to data the ceremony the MFA page offers: a sign-in
// with one of the person's passkeys, or, for a person with no factor
// yet, registering one. It reports whether the person has a passkey.
func (s *Server) passkeyForm(ctx context.Context, ls *store.LoginSession, u *store.User, data map[string]any) (bool, error) {
	has, err := s.hasPasskey(ctx, u.ID)
	if err != nil || s.passkeys == nil {
		return false, err
	}
	var cer passkey.Ceremony
	switch {
	case has:
		cer, err = s.passkeys.BeginLogin(ctx, personOf(u), "login:"+ls.ID)
		data["PasskeyMode"] = "login"
	case u.TOTPSecret == nil:
		cer, err = s.passkeys.BeginRegistration(ctx, personOf(u), "register:"+ls.ID)
		data["PasskeyMode"] = "register"
	default:
		return false, nil
	}
	if err != nil {
		return false, err
	}
	data["Passkey"] = cer
	return has, nil
}

// mfaPasskey checks a passkey answer: POST /login/:id/passkey.
func (s *Server) mfaPasskey(c *gin.Context) {
	if s.passkeys == nil {
		renderError(c, http.StatusNotFound, "Passkeys are off here: the coordinator's public URL is an IP address. Use your authenticator app.")
		return
	}
	ls, u, now := s.mfaAttempt(c)
	if ls == nil {
		return
	}
	ctx := c.Request.Context()
	method, err := s.checkPasskey(c, ls, u)
	var refusal *userError
	if errors.As(err, &refusal) {
		s.refuse("mfa_failed")
		s.showMFA(c, ls, u, http.StatusUnauthorized, refusal.msg)
		return
	}
	if err != nil {
		s.internal(c, "check passkey", err)
		return
	}
	if err := s.store.ClearMFAFailures(ctx, u.ID); err != nil {
		s.internal(c, "record MFA", err)
		return
	}
	s.complete(c, ls, u, now, store.MFAViaPasskey, method)
}

// checkPasskey finishes the posted ceremony and returns the method it
// proved; a refusal meant for the person is a *userError.
func (s *Server) checkPasskey(c *gin.Context, ls *store.LoginSession, u *store.User) (string, error) {
	ctx := c.Request.Context()
	id, answer := c.PostForm("ceremony"), c.PostForm("answer")
	var method string
	var err error
	if c.PostForm("mode") == "register" {
		has, herr := s.hasPasskey(ctx, u.ID)
		if herr != nil {
			return "", herr
		}
		if has || u.TOTPSecret != nil {
			return "", &userError{"You already have a second factor: sign in with it first, then add passkeys on your account page."}
		}
		_, method, err = s.passkeys.FinishRegistration(ctx, personOf(u), "register:"+ls.ID, id, answer, c.PostForm("name"))
	} else {
		method, err = s.passkeys.FinishLogin(ctx, personOf(u), "login:"+ls.ID, id, answer)
	}
	if msg := passkeyRefusal(err); msg != "" {
		return "", &userError{msg}
	}
	return method, err
}

// passkeyRefusal is the person's message for a ceremony's refusal, or ""
// for success and for failures that are not theirs.
func passkeyRefusal(err error) string {
	for _, e := range []error{passkey.ErrExpired, passkey.ErrRefused, passkey.ErrCloned, passkey.ErrNoPasskeys, passkey.ErrUnverified} {
		if errors.Is(err, e) {
			return "That did not work: " + e.Error() + "."
		}
	}
	return ""
}

// needsStepUp reports whether the coordinator asks for its own second
// factor after the IdP's sign-in: when the amr proves none, or proves one
// that is not phishing-resistant while the person has a passkey here (so
// that grants demanding one can be met).
func (s *Server) needsStepUp(ctx context.Context, cl *claims, u *store.User) (bool, error) {
	if !s.auth.mfaProven(cl) {
		return true, nil
	}
	if phishingResistant(amrMethod(cl.AMR)) {
		return false, nil
	}
	return s.hasPasskey(ctx, u.ID)
}
