package idp

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/mfa"
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

// Failures slow the guesser down instead of locking the account: after
// 5 free failures from one address each attempt waits (1 s, 2 s, …) and
// is not even checked while it must wait; a colleague at another
// address signs in meanwhile; a complete sign-in clears the count.
func TestBackoffInsteadOfLock(t *testing.T) {
	e := newEnv(t)
	secret := e.newUser("alice@example.com", false)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	b.from = "198.51.100.1"
	login := e.start(b, r)
	for range addrFree {
		e.password(b, login, "alice@example.com", "wrong").expect(t, http.StatusUnauthorized, errBadLogin.msg)
	}
	e.password(b, login, "alice@example.com", "wrong").expect(t, http.StatusTooManyRequests, "Wait 1s")
	// While it must wait, not even the right password is checked.
	e.password(b, login, "alice@example.com", goodPassword).expect(t, http.StatusTooManyRequests, "Wait 1s")
	e.clock.advance(time.Second)
	e.password(b, login, "alice@example.com", "wrong").expect(t, http.StatusTooManyRequests, "Wait 2s")

	colleague := e.browser()
	colleague.from = "203.0.113.9"
	e.signIn(colleague, e.rp(rpID, rpSecret), "alice@example.com", secret)

	e.clock.advance(mfa.Period)                                    // past the wait, and to a code the colleague did not use
	e.signIn(b, e.rp(rpID, rpSecret), "alice@example.com", secret) // clears the count
	for range addrFree {
		e.password(b, e.start(b, r), "alice@example.com", "wrong").expect(t, http.StatusUnauthorized, "")
	}
}

// An unknown account is answered exactly as a known one, through the
// backoff too: the answers say nothing about which accounts exist.
func TestUnknownAndKnownAnsweredAlike(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice@example.com", false)
	answers := func(email string) []string {
		b := e.browser()
		login := e.start(b, e.rp(rpID, rpSecret))
		var out []string
		for range addrFree + 2 {
			pg := e.password(b, login, email, "wrong")
			out = append(out, fmt.Sprint(pg.StatusCode, " ", pg.fieldError()))
		}
		return out
	}
	known, unknown := answers("alice@example.com"), answers("nobody@example.com")
	if !slices.Equal(known, unknown) {
		t.Fatalf("known account: %q\nunknown account: %q", known, unknown)
	}
}

// With every hashing slot taken and as many checks waiting, a password
// form is refused at once (503) instead of queueing behind them.
func TestHashQueueRefusesFast(t *testing.T) {
	e := newEnv(t)
	e.newUser("alice@example.com", false)
	b := e.browser()
	login := e.start(b, e.rp(rpID, rpSecret))
	p := e.p
	for range cap(p.hashSem) {
		p.hashSem <- struct{}{}
	}
	p.hashWaiting.Add(int32(cap(p.hashSem)))
	defer func() {
		p.hashWaiting.Add(-int32(cap(p.hashSem)))
		for range cap(p.hashSem) {
			<-p.hashSem
		}
	}()
	start := time.Now()
	e.password(b, login, "alice@example.com", goodPassword).expect(t, http.StatusServiceUnavailable, errHashBusy.msg)
	if d := time.Since(start); d > time.Second {
		t.Fatalf("refused after %s, want at once", d)
	}
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
