package idp

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// The sign-in: GET /login (from op's redirect) binds the sign-in to the
// browser; POST /login checks email and password; GET and POST
// /login/totp check the code and finish, redirecting to op's callback,
// which issues the code to the client.

const csrfLogin = "login"

func (p *Provider) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	cookie := p.ensureCookie(w, r)
	a, err := p.state.update(r.Context(), id, p.now(), nil, func(a *authRequest) error {
		if a.browser == nil {
			a.browser = cookieHash(cookie)
		}
		return nil
	})
	if err != nil {
		p.expired(w, err)
		return
	}
	if subtle.ConstantTimeCompare(a.browser, cookieHash(cookie)) != 1 {
		p.wrongBrowser(w)
		return
	}
	if slices.Contains(a.prompt, oidc.PromptNone) {
		op.AuthRequestError(w, r, a, oidc.ErrLoginRequired(), p.op)
		return
	}
	p.render(w, http.StatusOK, "login", &view{Title: "Sign in", AuthRequestID: id, CSRF: p.csrfToken(csrfLogin, id, cookie)})
}

// expired answers a sign-in that could not be loaded or changed: gone
// (400), or the store failed (500, logged).
func (p *Provider) expired(w http.ResponseWriter, err error) {
	if errors.Is(err, errExpired) {
		p.message(w, http.StatusBadRequest, "Sign-in expired", errExpired.Error())
		return
	}
	p.log.Error("idp: load sign-in", "err", err)
	p.message(w, http.StatusInternalServerError, "Something went wrong", errInternal.msg)
}

func (p *Provider) wrongBrowser(w http.ResponseWriter) {
	p.message(w, http.StatusForbidden, "Different browser",
		"This sign-in was started in another browser. Go back to the application and start again here.")
}

// postedRequest returns the sign-in a form was posted for, after checking
// its CSRF token and browser binding; otherwise it answers and returns nil.
func (p *Provider) postedRequest(w http.ResponseWriter, r *http.Request) *authRequest {
	if err := r.ParseForm(); err != nil {
		p.message(w, http.StatusBadRequest, "Bad form", "The form could not be read. Reload the page and try again.")
		return nil
	}
	id := r.PostFormValue("authRequestID")
	a, err := p.state.request(r.Context(), id, p.now())
	if err != nil {
		p.expired(w, err)
		return nil
	}
	if !p.csrfOK(r, csrfLogin, id) || !p.boundTo(r, a) {
		p.message(w, http.StatusForbidden, "Form expired",
			"The form's security check failed (it is stale, or was not sent from this page). Reload the page and try again.")
		return nil
	}
	return a
}

func (p *Provider) loginSubmit(w http.ResponseWriter, r *http.Request) {
	a := p.postedRequest(w, r)
	if a == nil {
		return
	}
	email := normalizeEmail(r.PostFormValue("email"))
	u, err := p.checkPassword(r.Context(), p.backoffKeys(r, stepPassword, email), email, r.PostFormValue("password"))
	if err != nil {
		v := &view{Title: "Sign in", AuthRequestID: a.id, Email: email, CSRF: r.PostFormValue("csrf")}
		v.Errors = map[string]string{"password": userMessage(err)}
		p.render(w, statusOf(err), "login", v)
		return
	}
	_, err = p.state.update(r.Context(), a.id, p.now(), nil, func(a *authRequest) error {
		a.pwUser, a.pwEmail = u.ID, email
		return nil
	})
	if err != nil {
		p.expired(w, err)
		return
	}
	http.Redirect(w, r, p.prefix+"/login/totp?authRequestID="+url.QueryEscape(a.id), http.StatusSeeOther)
}

func (p *Provider) totpPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("authRequestID")
	a, err := p.state.request(r.Context(), id, p.now())
	if err != nil {
		p.expired(w, err)
		return
	}
	if !p.boundTo(r, a) {
		p.wrongBrowser(w)
		return
	}
	if a.pwUser == "" {
		http.Redirect(w, r, p.prefix+"/login?authRequestID="+url.QueryEscape(id), http.StatusSeeOther)
		return
	}
	p.renderTOTP(w, r, a, http.StatusOK, nil)
}

// renderTOTP renders the second step: the passkey of a person who has
// one, the code form for one who has an app.
func (p *Provider) renderTOTP(w http.ResponseWriter, r *http.Request, a *authRequest, status int, err error) {
	v := &view{Title: "Two-step verification", AuthRequestID: a.id, CSRF: p.csrfToken(csrfLogin, a.id, p.browserCookie(r)), HasTOTP: true}
	if u, uerr := p.users.IdPUser(r.Context(), a.pwUser); uerr == nil {
		v.Email, v.HasTOTP = u.Email, u.TOTPSecret != nil
		if perr := p.passkeyLogin(r.Context(), a, u, v); perr != nil {
			p.log.Error("idp: start passkey sign-in", "user_id", u.ID, "err", perr)
			v.HasTOTP = true // the app, if any, still works
		}
	}
	if err != nil {
		v.Errors = map[string]string{"code": userMessage(err)}
	}
	p.render(w, status, "totp", v)
}

func (p *Provider) totpSubmit(w http.ResponseWriter, r *http.Request) {
	a := p.postedRequest(w, r)
	if a == nil {
		return
	}
	if a.pwUser == "" {
		http.Redirect(w, r, p.prefix+"/login?authRequestID="+url.QueryEscape(a.id), http.StatusSeeOther)
		return
	}
	if err := p.checkCode(r.Context(), p.backoffKeys(r, stepCode, a.pwEmail), a.pwUser, r.PostFormValue("code")); err != nil {
		p.renderTOTP(w, r, a, statusOf(err), err)
		return
	}
	p.finish(w, r, a, "otp")
}

// finish completes sign-in a whose second step proved method and hands
// it back to op's callback.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, a *authRequest, method string) {
	p.succeeded(r.Context(), p.backoffKeys(r, stepPassword, a.pwEmail)) // the second step's are cleared by its check
	now := p.now()
	_, err := p.state.update(r.Context(), a.id, now, nil, func(a *authRequest) error {
		a.userID, a.authTime, a.done, a.method = a.pwUser, now, true, method
		return nil
	})
	if err != nil {
		p.expired(w, err)
		return
	}
	p.log.Info("idp: signed in", "user_id", a.pwUser, "client_id", a.clientID, "method", method)
	http.Redirect(w, r, p.cfg.Issuer+"/authorize/callback?id="+url.QueryEscape(a.id), http.StatusSeeOther)
}

// userError is an error whose text is meant for the person signing in.
type userError struct {
	status int
	msg    string
}

func (e *userError) Error() string { return e.msg }

var (
	errBadLogin = &userError{http.StatusUnauthorized, "The email or password is wrong."}
	errBadCode  = &userError{http.StatusUnauthorized, "That code is not valid. Check the app and try again."}
	errReplayed = &userError{http.StatusUnauthorized, "That code was already used. Wait for the next one."}
	errInternal = &userError{http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment."}
	errHashBusy = &userError{http.StatusServiceUnavailable, "Too many sign-ins at once. Try again in a few seconds."}
)

func userMessage(err error) string {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.msg
	}
	return errInternal.msg
}

func statusOf(err error) int {
	var ue *userError
	if errors.As(err, &ue) {
		return ue.status
	}
	return http.StatusInternalServerError
}
