package coordinator

import (
	"context"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/coordinator/store"
)

// The coordinator's own second factor, asked for when the IdP's amr does
// not prove one. Secrets are sealed at rest (additional data: the user
// id); a pending enrollment lives sealed in the login session until its
// first code is confirmed.

var lockout = mfa.Lockout{}

// mfaSession loads the login session and its user for the MFA pages,
// answering with an error page itself when it cannot.
func (s *Server) mfaSession(c *gin.Context) (*store.LoginSession, *store.User) {
	ls := s.openSession(c, c.Param("id"))
	if ls == nil {
		return nil, nil
	}
	if ls.UserID == "" || !s.auth.bound(c.Request, ls) {
		renderError(c, http.StatusForbidden, "Sign in with your identity provider first: open the link from `moat login` again.")
		return nil, nil
	}
	u, err := s.store.User(c.Request.Context(), ls.UserID)
	if err != nil {
		s.internal(c, "load user", err)
		return nil, nil
	}
	return ls, u
}

// mfaPage shows the second-factor page: GET /login/:id/mfa.
func (s *Server) mfaPage(c *gin.Context) {
	ls, u := s.mfaSession(c)
	if ls == nil {
		return
	}
	s.showMFA(c, ls, u, http.StatusOK, "")
}

// showMFA renders the second-factor page with msg as its error: a
// passkey ceremony when the person has a passkey (or no factor yet), the
// code form when they have an app, and a new secret to enroll when they
// have neither.
func (s *Server) showMFA(c *gin.Context, ls *store.LoginSession, u *store.User, status int, msg string) {
	data := map[string]any{"Title": "Second factor", "ID": ls.ID, "CSRF": csrfToken(c, s.secureCookies()), "Error": msg}
	hasPasskey, err := s.passkeyForm(c.Request.Context(), ls, u, data)
	if err != nil {
		s.internal(c, "start a passkey sign-in", err)
		return
	}
	data["TOTP"] = u.TOTPSecret != nil || !hasPasskey
	if u.TOTPSecret == nil && !hasPasskey {
		enr, err := s.pendingTOTP(c.Request.Context(), ls, u, msg != "")
		if err != nil {
			s.internal(c, "make a TOTP secret", err)
			return
		}
		data["Enroll"], data["QR"], data["Secret"] = true, template.URL(enr.QR), enr.Secret
	}
	render(c, status, "mfa.html", data)
}

// pendingTOTP returns the secret the person is enrolling in this login:
// after a failed attempt (retry) the one already shown, else a new one,
// kept sealed in the login session until its first code is confirmed.
func (s *Server) pendingTOTP(ctx context.Context, ls *store.LoginSession, u *store.User, retry bool) (mfa.Enrollment, error) {
	if retry && ls.Result != nil {
		if b, err := s.box.Open(ls.Result, []byte("totp-pending:"+ls.ID)); err == nil {
			return mfa.EnrollmentFor("moat", u.Email, string(b))
		}
	}
	enr, err := mfa.NewSecret("moat", u.Email)
	if err != nil {
		return enr, err
	}
	ls.Result = s.box.Seal([]byte(enr.Secret), []byte("totp-pending:"+ls.ID))
	return enr, s.store.UpdateLoginSession(ctx, ls)
}

// mfaSubmit checks a code: POST /login/:id/mfa.
func (s *Server) mfaSubmit(c *gin.Context) {
	ls, u, now := s.mfaAttempt(c)
	if ls == nil {
		return
	}
	fail := func(msg string) {
		s.refuse("mfa_failed")
		s.showMFA(c, ls, u, http.StatusUnauthorized, msg)
	}
	secret, pending, err := s.totpSecret(ls, u)
	if err != nil {
		s.internal(c, "read TOTP secret", err)
		return
	}
	step, err := mfa.Verify(secret, c.PostForm("code"), u.TOTPLastStep, now)
	if errors.Is(err, mfa.ErrReplayed) {
		fail("That code was already used. Wait for the next one.")
		return
	}
	if err != nil {
		fail("That code is not valid. Check your authenticator app's time and try again.")
		return
	}
	var sealed []byte
	if pending {
		sealed = s.box.Seal([]byte(secret), []byte("totp:"+u.ID))
	}
	// One use per code: of parallel uses, one claims the step.
	err = s.store.ClaimTOTPStep(c.Request.Context(), u.ID, step, sealed)
	if errors.Is(err, store.ErrConflict) {
		fail("That code was already used. Wait for the next one.")
		return
	}
	if err != nil {
		s.internal(c, "record MFA", err)
		return
	}
	ls.Result = nil
	s.complete(c, ls, u, now, store.MFAViaTOTP, "otp")
}

// mfaAttempt starts checking a posted second factor: the form's CSRF
// token, the sign-in and its person, and the attempt counted (as a
// failure until it succeeds) before anything is checked, in one
// statement: parallel attempts, on any replica, check no more factors
// than the lockout allows. It answers itself and returns nil when the
// attempt may not go on.
func (s *Server) mfaAttempt(c *gin.Context) (*store.LoginSession, *store.User, time.Time) {
	if !csrfOK(c, s.secureCookies()) {
		renderError(c, http.StatusForbidden, "The form expired. Go back, reload the page and try again.")
		return nil, nil, time.Time{}
	}
	ls, u := s.mfaSession(c)
	if ls == nil {
		return nil, nil, time.Time{}
	}
	now := s.cfg.Now()
	err := s.store.BeginMFAAttempt(c.Request.Context(), u.ID, now, lockout.MaxFailures(), lockout.LockFor())
	if errors.Is(err, store.ErrExhausted) {
		s.refuse("mfa_locked")
		renderError(c, http.StatusTooManyRequests, "Too many failed attempts. Wait a while and try again.")
		return nil, nil, time.Time{}
	}
	if err != nil {
		s.internal(c, "record MFA attempt", err)
		return nil, nil, time.Time{}
	}
	return ls, u, now
}

// totpSecret returns the person's TOTP secret, or the pending one of this
// login when they are enrolling.
func (s *Server) totpSecret(ls *store.LoginSession, u *store.User) (secret string, pending bool, err error) {
	if u.TOTPSecret != nil {
		b, err := s.box.Open(u.TOTPSecret, []byte("totp:"+u.ID))
		return string(b), false, err
	}
	if ls.Result == nil {
		return "", false, errors.New("no TOTP enrollment in progress")
	}
	b, err := s.box.Open(ls.Result, []byte("totp-pending:"+ls.ID))
	return string(b), true, err
}
