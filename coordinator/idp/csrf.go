package idp

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
)

// The browser cookie ties a sign-in (and a setup form) to the browser that
// opened it, and is the secret half of every form's CSRF token: a form
// token is HMAC(csrfKey, purpose, subject, cookie), so a post must carry
// both the cookie and a token made for it (a double submit that cannot be
// forged without the cookie). The cookie is HttpOnly, SameSite=Lax, scoped
// to the issuer's path and Secure on https.
const (
	cookieSecure   = "__Secure-moat-idp"
	cookieInsecure = "moat-idp"
)

func (p *Provider) cookieName() string {
	if p.secure {
		return cookieSecure
	}
	return cookieInsecure
}

// browserCookie returns the request's browser cookie, or "" without one.
func (p *Provider) browserCookie(r *http.Request) string {
	c, err := r.Cookie(p.cookieName())
	if err != nil || len(c.Value) != 43 { // 32 bytes, base64url
		return ""
	}
	return c.Value
}

// ensureCookie returns the browser cookie, setting a new one when absent.
func (p *Provider) ensureCookie(w http.ResponseWriter, r *http.Request) string {
	if v := p.browserCookie(r); v != "" {
		return v
	}
	v := randomID()
	http.SetCookie(w, &http.Cookie{
		Name:     p.cookieName(),
		Value:    v,
		Path:     p.prefix + "/",
		HttpOnly: true,
		Secure:   p.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return v
}

func cookieHash(v string) []byte {
	h := sha256.Sum256([]byte(v))
	return h[:]
}

// csrfToken is the form token for purpose and subject in the browser
// holding cookie.
func (p *Provider) csrfToken(purpose, subject, cookie string) string {
	m := hmac.New(sha256.New, p.csrfKey[:])
	for _, s := range []string{purpose, subject, cookie} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK checks a posted form's token against the request's cookie.
func (p *Provider) csrfOK(r *http.Request, purpose, subject string) bool {
	cookie := p.browserCookie(r)
	if cookie == "" {
		return false
	}
	want := p.csrfToken(purpose, subject, cookie)
	return hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(want))
}

// boundTo reports whether sign-in a belongs to the request's browser.
func (p *Provider) boundTo(r *http.Request, a *authRequest) bool {
	cookie := p.browserCookie(r)
	return cookie != "" && a.browser != nil && subtle.ConstantTimeCompare(cookieHash(cookie), a.browser) == 1
}
