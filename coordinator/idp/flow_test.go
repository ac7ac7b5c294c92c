package idp

import (
	"net/http"
	"net/url"
	"regexp"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/moatmesh/moat/coordinator/mfa"
)

const goodPassword = "violet-harbour-lantern-42"

// addUser makes a user and returns their setup link.
func (e *env) addUser(email string, admin bool, groups ...string) string {
	e.t.Helper()
	link, err := AddUser(e.ctx, e.st, email, "Alice Example", admin, groups, e.srv.URL, time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return link
}

var secretRE = regexp.MustCompile(`<code>([A-Z2-7]+)</code>`)

// setup completes a setup link in b and returns the enrolled TOTP secret.
func (e *env) setup(b *browser, link, password string) string {
	e.t.Helper()
	pg := b.get(link)
	pg.expect(e.t, http.StatusOK, "Set up your account")
	m := secretRE.FindStringSubmatch(pg.body)
	if m == nil {
		e.t.Fatalf("no secret on the setup page:\n%s", pg.body)
	}
	code := e.code(m[1], 0)
	done := b.post(pg.action(), pg.form("password", password, "confirm", password, "code", code))
	done.expect(e.t, http.StatusOK, "Account ready")
	return m[1]
}

// code is the TOTP code for secret, steps steps from now.
func (e *env) code(secret string, steps int) string {
	e.t.Helper()
	c, err := mfa.Code(secret, e.clock.now().Add(time.Duration(steps)*mfa.Period))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// newUser is an account that finished setup, with its TOTP secret.
func (e *env) newUser(email string, admin bool, groups ...string) string {
	e.t.Helper()
	secret := e.setup(e.browser(), e.addUser(email, admin, groups...), goodPassword)
	e.clock.advance(mfa.Period) // the setup code's step is spent
	return secret
}

// rp is one sign-in attempt by a relying party.
type rp struct {
	cfg                    oauth2.Config
	state, nonce, verifier string
}

func (e *env) rp(clientID, secret string) *rp {
	return &rp{
		cfg: oauth2.Config{
			ClientID: clientID, ClientSecret: secret,
			Endpoint:    oauth2.Endpoint{AuthURL: e.issuer() + "/authorize", TokenURL: e.issuer() + "/oauth/token"},
			RedirectURL: e.srv.URL + rpCallback,
			Scopes:      []string{oidc.ScopeOpenID, "email", "profile"},
		},
		state: randomID(), nonce: randomID(), verifier: oauth2.GenerateVerifier(),
	}
}

func (r *rp) authURL() string {
	return r.cfg.AuthCodeURL(r.state, oidc.Nonce(r.nonce), oauth2.S256ChallengeOption(r.verifier))
}

// start opens the authorization URL in b and returns the password page.
func (e *env) start(b *browser, r *rp) page {
	e.t.Helper()
	pg := b.get(r.authURL())
	pg.expect(e.t, http.StatusOK, `name="password"`)
	return pg
}

// password posts email and password on the login page.
func (e *env) password(b *browser, login page, email, password string) page {
	e.t.Helper()
	return b.post(login.action(), login.form("email", email, "password", password))
}

// totp posts a code on the TOTP page.
func (e *env) totp(b *browser, totpPage page, code string) page {
	e.t.Helper()
	return b.post(totpPage.action(), totpPage.form("code", code))
}

// callbackCode checks that pg is the redirect to the relying party and
// returns its code.
func (e *env) callbackCode(pg page, r *rp) string {
	e.t.Helper()
	if pg.StatusCode != http.StatusFound && pg.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("status %d, want a redirect to the relying party; body:\n%s", pg.StatusCode, pg.body)
	}
	loc, err := url.Parse(pg.Header.Get("Location"))
	if err != nil || loc.Path != rpCallback {
		e.t.Fatalf("redirect to %q, want %s", pg.Header.Get("Location"), rpCallback)
	}
	if loc.Query().Get("state") != r.state || loc.Query().Get("code") == "" {
		e.t.Fatalf("callback query %v: want our state and a code", loc.Query())
	}
	return loc.Query().Get("code")
}

// signIn runs password and code through to the relying party's code.
func (e *env) signIn(b *browser, r *rp, email, secret string) string {
	e.t.Helper()
	totpPage := e.password(b, e.start(b, r), email, goodPassword)
	totpPage.expect(e.t, http.StatusOK, `name="code"`)
	return e.callbackCode(e.totp(b, totpPage, e.code(secret, 0)), r)
}
