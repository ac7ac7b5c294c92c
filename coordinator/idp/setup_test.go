package idp

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/mfa"
)

func TestSetupLink(t *testing.T) {
	e := newEnv(t)
	link := e.addUser("alice@example.com", true, "ml")
	if !strings.HasPrefix(link, e.issuer()+"/setup?token=") {
		t.Fatalf("link %q", link)
	}
	u, err := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if err != nil || u.PasswordHash != "" || u.TOTPSecret != nil || u.SetupHash == nil {
		t.Fatalf("fresh user %+v, %v", u, err)
	}
	secret := e.setup(e.browser(), link, goodPassword)
	u, _ = e.st.IdPUser(e.ctx, u.ID)
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$") || u.SetupHash != nil || !u.SetupExpiry.IsZero() {
		t.Errorf("after setup: %+v", u)
	}
	if strings.Contains(string(u.TOTPSecret), secret) {
		t.Error("TOTP secret stored in the clear")
	}
	if got, err := e.box.Open(u.TOTPSecret, []byte(u.ID)); err != nil || string(got) != secret {
		t.Errorf("sealed secret opens to %q, %v", got, err)
	}
	// Spent.
	e.browser().get(link).expect(t, http.StatusGone, "invalid, already used or expired")
}

func TestSetupRefusals(t *testing.T) {
	e := newEnv(t)
	link := e.addUser("alice@example.com", false)
	b := e.browser()
	pg := b.get(link)
	secret := secretRE.FindStringSubmatch(pg.body)[1]
	code := e.code(secret, 0)
	fields := []struct {
		name, password, confirm, code, want string
	}{
		{"short", "short-pw", "short-pw", code, "at least 12 characters"},
		{"run", "abcdefghijklmnop", "abcdefghijklmnop", code, "too predictable"},
		{"repeated", "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", code, "too predictable"},
		{"common", "Password123!", "Password123!", code, "too common"},
		{"email", "alice-is-great-123", "alice-is-great-123", code, "must not contain your email"},
		{"mismatch", goodPassword, goodPassword + "x", code, "The two passwords differ."},
		{"wrong code", goodPassword, goodPassword, e.code(secret, 3), "That code is not valid"},
	}
	for _, f := range fields {
		t.Run(f.name, func(t *testing.T) {
			got := b.post(pg.action(), pg.form("password", f.password, "confirm", f.confirm, "code", f.code))
			got.expect(t, http.StatusBadRequest, f.want)
			if !strings.Contains(got.fieldError(), f.want) {
				t.Errorf("field error %q, want %q", got.fieldError(), f.want)
			}
			if secretRE.FindStringSubmatch(got.body)[1] != secret {
				t.Error("the page shows a different secret after an error")
			}
		})
	}
	t.Run("csrf missing", func(t *testing.T) {
		form := without(pg.form("password", goodPassword, "confirm", goodPassword, "code", code), "csrf")
		b.post(pg.action(), form).expect(t, http.StatusForbidden, "security check failed")
	})
	t.Run("other browser", func(t *testing.T) {
		form := pg.form("password", goodPassword, "confirm", goodPassword, "code", code)
		e.browser().post(pg.action(), form).expect(t, http.StatusForbidden, "security check failed")
	})
	t.Run("tampered enrollment", func(t *testing.T) {
		form := pg.form("password", goodPassword, "confirm", goodPassword, "code", code, "enroll", "AAAA")
		b.post(pg.action(), form).expect(t, http.StatusBadRequest, "stale")
	})
	u, _ := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if u.PasswordHash != "" || u.TOTPSecret != nil {
		t.Fatal("a refused setup changed the account")
	}
	t.Run("unknown token", func(t *testing.T) {
		e.browser().get(e.issuer()+"/setup?token=nope").expect(t, http.StatusGone, "invalid")
		e.browser().get(e.issuer()+"/setup").expect(t, http.StatusGone, "invalid")
	})
}

func TestSetupLinkExpires(t *testing.T) {
	e := newEnv(t)
	link := e.addUser("alice@example.com", false) // valid for an hour
	b := e.browser()
	pg := b.get(link)
	pg.expect(t, http.StatusOK, "Set up")
	e.clock.advance(time.Hour)
	secret := secretRE.FindStringSubmatch(pg.body)[1]
	b.post(pg.action(), pg.form("password", goodPassword, "confirm", goodPassword, "code", e.code(secret, 0))).
		expect(t, http.StatusGone, "expired")
	e.browser().get(link).expect(t, http.StatusGone, "expired")
}

func TestReissueSetupLink(t *testing.T) {
	e := newEnv(t)
	first := e.addUser("alice@example.com", false)
	oldSecret := e.setup(e.browser(), first, goodPassword)
	e.clock.advance(mfa.Period)

	// Failed attempts, then an admin re-issues a link (and makes her admin).
	b := e.browser()
	login := e.start(b, e.rp(rpID, rpSecret))
	for range 3 {
		e.password(b, login, "alice@example.com", "wrong")
	}
	second, err := AddUser(e.ctx, e.st, "ALICE@example.com", "", true, []string{"ml"}, e.srv.URL+"/", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := e.st.IdPUserByEmail(e.ctx, "alice@example.com")
	if !u.Admin || u.Name != "Alice Example" || len(u.Groups) != 1 {
		t.Errorf("re-issued user %+v", u)
	}
	const newPassword = "copper-meadow-signal-77"
	newSecret := e.setup(e.browser(), second, newPassword)
	if newSecret == oldSecret {
		t.Fatal("setup kept the old secret")
	}
	e.clock.advance(mfa.Period)
	b, r := e.browser(), e.rp(rpID, rpSecret)
	e.password(b, e.start(b, r), "alice@example.com", goodPassword).expect(t, http.StatusUnauthorized, "")
	totpPage := e.password(b, e.start(b, r), "alice@example.com", newPassword)
	e.totp(b, totpPage, e.code(oldSecret, 0)).expect(t, http.StatusUnauthorized, "")
	e.callbackCode(e.totp(b, totpPage, e.code(newSecret, 0)), r)
}

func TestAddUserRefuses(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ email, url string }{
		{"not-an-email", e.srv.URL},
		{"Alice <alice@example.com>", e.srv.URL},
		{"alice@example.com", "moat.example.com"},
		{"alice@example.com", ""},
	} {
		if _, err := AddUser(e.ctx, e.st, tc.email, "", false, nil, tc.url, 0); err == nil {
			t.Errorf("AddUser(%q, %q) succeeded", tc.email, tc.url)
		}
	}
}
