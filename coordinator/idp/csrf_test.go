package idp

import (
	"net/http"
	"net/url"
	"testing"
)

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	login := e.start(b, r)
	other := e.browser()
	otherLogin := e.start(other, e.rp(rpID, rpSecret))

	tests := []struct {
		name string
		b    *browser
		form url.Values
	}{
		{"token missing", b, without(login.form("email", "alice@example.com", "password", goodPassword), "csrf")},
		{"token wrong", b, login.form("email", "alice@example.com", "password", goodPassword, "csrf", "AAAA")},
		{"token of another sign-in", b, with(login.form("email", "alice@example.com", "password", goodPassword), "csrf", otherLogin.form().Get("csrf"))},
		{"right token, other browser", other, login.form("email", "alice@example.com", "password", goodPassword)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.b.post(login.action(), tt.form).expect(t, http.StatusForbidden, "security check failed")
		})
	}
	u, _ := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if u.Failures != 0 {
		t.Errorf("refused forms counted %d failures", u.Failures)
	}

	// The sign-in still works in its own browser, and only there.
	totpPage := e.password(b, login, "alice@example.com", goodPassword)
	other.post(totpPage.action(), totpPage.form("code", e.code(secret, 0))).expect(t, http.StatusForbidden, "security check failed")
	other.get(totpPage.Request.URL.String()).expect(t, http.StatusForbidden, "another browser")
	done := e.totp(b, totpPage, e.code(secret, 0))
	e.callbackCode(done, r)
}

func TestSignInBoundToBrowser(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	login := e.start(b, r)
	// Another browser opening the same sign-in link is turned away.
	e.browser().get(login.Request.URL.String()).expect(t, http.StatusForbidden, "another browser")

	// Nor can it collect the code through the callback URL.
	totpPage := e.password(b, login, "alice@example.com", goodPassword)
	id := totpPage.form().Get("authRequestID")
	callback := e.issuer() + "/authorize/callback?id=" + url.QueryEscape(id)
	e.browser().get(callback).expect(t, http.StatusForbidden, "not finished")
	b.get(callback).expect(t, http.StatusForbidden, "not finished") // not done yet
	ownID := e.start(e.browser(), e.rp(rpID, rpSecret)).form().Get("authRequestID")
	smuggle := e.browser().post(e.issuer()+"/authorize/callback?id="+url.QueryEscape(ownID), url.Values{"id": {id}})
	if smuggle.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST to the callback: status %d", smuggle.StatusCode)
	}
	code := e.callbackCode(e.totp(b, totpPage, e.code(secret, 0)), r)
	e.browser().get(callback).expect(t, http.StatusForbidden, "not finished")
	b.get(callback).expect(t, http.StatusConflict, "already returned") // one code per sign-in
	e.exchange(r, code)
	b.get(callback).expect(t, http.StatusBadRequest, "expired") // spent with the code
}

func TestUnknownSignIn(t *testing.T) {
	e := newEnv(t)
	e.browser().get(e.issuer()+"/login?authRequestID=nope").expect(t, http.StatusBadRequest, "expired or is unknown")
	e.browser().get(e.issuer()+"/login/totp?authRequestID=nope").expect(t, http.StatusBadRequest, "expired or is unknown")
}

func TestSignInExpires(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice@example.com", false)
	b := e.browser()
	login := e.start(b, e.rp(rpID, rpSecret))
	e.clock.advance(requestTTL)
	e.password(b, login, "alice@example.com", goodPassword).expect(t, http.StatusBadRequest, "expired")
}

func without(v url.Values, key string) url.Values {
	v.Del(key)
	return v
}

func with(v url.Values, key, value string) url.Values {
	v.Set(key, value)
	return v
}
