package idp

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestWrongPassword(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice@example.com", false)
	e.addUser("pending@example.com", false) // never set up
	for _, tc := range []struct{ email, password string }{
		{"alice@example.com", "not-the-password"},
		{"nobody@example.com", goodPassword},
		{"pending@example.com", goodPassword},
		{"alice@example.com", strings.Repeat("x", 5000)},
	} {
		b := e.browser()
		pg := e.password(b, e.start(b, e.rp(rpID, rpSecret)), tc.email, tc.password)
		pg.expect(t, http.StatusUnauthorized, `name="password"`)
		if got := pg.fieldError(); got != errBadLogin.msg {
			t.Errorf("%s: field error %q, want %q", tc.email, got, errBadLogin.msg)
		}
	}
}

func TestWrongAndReplayedCode(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	totpPage := e.password(b, e.start(b, r), "alice@example.com", goodPassword)
	wrong := e.totp(b, totpPage, e.code(secret, 5))
	wrong.expect(t, http.StatusUnauthorized, `name="code"`)
	if wrong.fieldError() != errBadCode.msg {
		t.Errorf("field error %q", wrong.fieldError())
	}
	code := e.code(secret, 0)
	e.callbackCode(e.totp(b, wrong, code), r)

	// The same code in a new sign-in, within its step: refused.
	b2, r2 := e.browser(), e.rp(rpID, rpSecret)
	totp2 := e.password(b2, e.start(b2, r2), "alice@example.com", goodPassword)
	replayed := e.totp(b2, totp2, code)
	replayed.expect(t, http.StatusUnauthorized, `name="code"`)
	if replayed.fieldError() != errReplayed.msg {
		t.Errorf("field error %q, want %q", replayed.fieldError(), errReplayed.msg)
	}
	// The previous step's code is older than the last used one: refused too.
	if pg := e.totp(b2, replayed, e.code(secret, -1)); pg.fieldError() != errReplayed.msg {
		t.Errorf("previous step: field error %q", pg.fieldError())
	}
}

func TestLockout(t *testing.T) { // Lockout{Max: 3, Window: 10m} in newEnv
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	login := e.start(b, r)
	e.password(b, login, "alice@example.com", "wrong-1").expect(t, http.StatusUnauthorized, "")
	totpPage := e.password(b, login, "alice@example.com", goodPassword) // does not reset the count
	totpPage.expect(t, http.StatusOK, `name="code"`)
	e.totp(b, totpPage, "000000").expect(t, http.StatusUnauthorized, "")
	locked := e.totp(b, totpPage, "000001") // third failure
	locked.expect(t, http.StatusTooManyRequests, "Too many failed attempts")

	// While locked, neither the right password nor the right code is tested.
	e.password(b, login, "alice@example.com", goodPassword).expect(t, http.StatusTooManyRequests, "Too many failed attempts")
	e.totp(b, totpPage, e.code(secret, 0)).expect(t, http.StatusTooManyRequests, "Too many failed attempts")

	e.clock.advance(10*time.Minute - time.Second)
	b, r = e.browser(), e.rp(rpID, rpSecret)
	e.password(b, e.start(b, r), "alice@example.com", goodPassword).expect(t, http.StatusTooManyRequests, "")
	e.clock.advance(time.Second) // the lock lifts
	e.signIn(b, r, "alice@example.com", secret)
	u, _ := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if u.Failures != 0 || !u.LockedUntil.IsZero() {
		t.Errorf("after a sign-in: failures %d, locked until %v", u.Failures, u.LockedUntil)
	}
}

func TestOneAttemptAfterLock(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice@example.com", false)
	b := e.browser()
	login := e.start(b, e.rp(rpID, rpSecret))
	for range 3 {
		e.password(b, login, "alice@example.com", "wrong")
	}
	e.clock.advance(10 * time.Minute)
	e.password(b, login, "alice@example.com", "wrong").expect(t, http.StatusTooManyRequests, "Too many failed attempts")
}

func TestAuthorizeRefusals(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name   string
		client string
		url    func(r *rp) string
		status int    // with no redirect
		oauth  string // error redirected to the client
	}{
		{"unregistered redirect_uri", rpID, func(r *rp) string {
			r.cfg.RedirectURL = e.srv.URL + "/elsewhere"
			return r.authURL()
		}, http.StatusBadRequest, ""},
		{"redirect_uri differs only in port", publicID, func(r *rp) string {
			r.cfg.RedirectURL = "http://127.0.0.1:1" + rpCallback
			return r.authURL()
		}, http.StatusBadRequest, ""},
		{"unknown client", "stranger", func(r *rp) string { return r.authURL() }, http.StatusBadRequest, ""},
		{"public client without PKCE", publicID, func(r *rp) string {
			return r.cfg.AuthCodeURL(r.state, oidc.Nonce(r.nonce))
		}, 0, "invalid_request"},
		{"confidential client without PKCE", rpID, func(r *rp) string {
			return r.cfg.AuthCodeURL(r.state, oidc.Nonce(r.nonce))
		}, 0, "invalid_request"},
		{"plain PKCE", publicID, func(r *rp) string {
			return r.cfg.AuthCodeURL(r.state, oauth2.SetAuthURLParam("code_challenge", r.verifier),
				oauth2.SetAuthURLParam("code_challenge_method", "plain"))
		}, 0, "invalid_request"},
		{"no openid scope", rpID, func(r *rp) string {
			r.cfg.Scopes = []string{"email"}
			return r.authURL()
		}, 0, "invalid_scope"},
		{"implicit flow", rpID, func(r *rp) string {
			return strings.Replace(r.authURL(), "response_type=code", "response_type=id_token", 1)
		}, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.rp(tt.client, "")
			pg := e.browser().get(tt.url(r))
			if tt.oauth == "" {
				if pg.StatusCode != tt.status || pg.Header.Get("Location") != "" {
					t.Fatalf("status %d, location %q; want %d without redirect", pg.StatusCode, pg.Header.Get("Location"), tt.status)
				}
				return
			}
			loc, _ := url.Parse(pg.Header.Get("Location"))
			if pg.StatusCode != http.StatusFound || loc.Path != rpCallback || loc.Query().Get("error") != tt.oauth {
				t.Fatalf("status %d, location %q; want error %s at the client", pg.StatusCode, loc, tt.oauth)
			}
		})
	}
}

func TestPromptNone(t *testing.T) {
	e := newEnv(t)
	r := e.rp(rpID, rpSecret)
	pg := e.browser().get(r.authURL() + "&prompt=none")
	loc, _ := url.Parse(pg.Header.Get("Location"))
	if loc.Path != rpCallback || loc.Query().Get("error") != "login_required" {
		t.Fatalf("location %q; want login_required", loc)
	}
}
