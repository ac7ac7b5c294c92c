package coordinator

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/ui"
)

// UI sessions. A person signs in to the web UI through the same OIDC +
// MFA path as a device (a login session with purpose "ui", bound to the
// browser the same way), and gets a random session token in an HttpOnly,
// SameSite=Lax cookie scoped to /ui (Secure when the coordinator is
// served over https) that lasts uiSessionTTL.
//
// Sessions live in the store, keyed by the token's SHA-256, rather than
// signed into the cookie: signing out ends a session for good (a copied
// cookie is useless afterwards), every replica knows every session, and a
// restart signs nobody out. Each session's CSRF token is derived from its
// token, so it needs no column and cannot be forged without the cookie.
// Every request reloads the user, so a disabled person (or a changed
// role) takes effect at once.

const (
	purposeUI    = "ui"
	uiCookie     = "moat_ui"
	uiSessionTTL = 8 * time.Hour
)

// uiCookieName is the UI session cookie's name ("__Secure-moat_ui" over
// https).
func (s *Server) uiCookieName() string { return cookieName(uiCookie, s.secureCookies(), false) }

// sessionHash is what the store keeps of a session token.
func sessionHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// sessionCSRF is the CSRF token of the session with token tok.
func sessionCSRF(tok string) string {
	h := sha256.Sum256([]byte("moat ui csrf\x00" + tok))
	return hex.EncodeToString(h[:])
}

// uiRoutes serves /ui/: GET /ui/login and /ui/logout here (sign-ins
// under the limiter of sign-in starts), every other path from package ui.
// One catch-all route, because gin cannot mix it with static siblings.
func (s *Server) uiRoutes(limit gin.HandlerFunc) gin.HandlerFunc {
	pages := gin.WrapH(ui.New(uiBackend{s}))
	return func(c *gin.Context) {
		own := map[string]gin.HandlerFunc{"GET /login": s.uiLogin, "POST /logout": s.uiLogout,
			"GET /account/passkeys": s.accountPasskeys, "POST /account/passkeys": s.accountPasskeys}[c.Request.Method+" "+c.Param("path")]
		switch {
		case own == nil:
			pages(c)
		case c.Param("path") == "/login":
			limit(c)
			if !c.IsAborted() {
				own(c)
			}
		default:
			own(c)
		}
	}
}

// uiLogin starts a UI sign-in: GET /ui/login. It makes a login session
// with purpose "ui", binds it to this browser as beginLogin does and
// sends the browser to the IdP; complete() finishes it in completeUI.
func (s *Server) uiLogin(c *gin.Context) {
	if s.uiViewer(c.Request) != nil {
		c.Redirect(http.StatusSeeOther, "/ui/")
		return
	}
	now := s.cfg.Now()
	ls := &store.LoginSession{ID: newID("ls_"), Purpose: purposeUI, Nonce: randomString(), Verifier: randomString(),
		Created: now, Expires: now.Add(s.cfg.LoginTTL)}
	if err := s.store.CreateLoginSession(c.Request.Context(), ls); err != nil {
		s.internal(c, "create login session", err)
		return
	}
	s.toIdP(c, ls)
}

// completeUI finishes a UI sign-in: the login session is spent, and the
// browser gets a UI session cookie.
func (s *Server) completeUI(c *gin.Context, ls *store.LoginSession, user *store.User) {
	ls.MFADone, ls.Consumed = true, true
	if err := s.store.UpdateLoginSession(c.Request.Context(), ls); err != nil {
		s.internal(c, "finish login session", err)
		return
	}
	tok, now := randomString(), s.cfg.Now()
	sess := &store.UISession{Hash: sessionHash(tok), UserID: user.ID, Created: now, Expires: now.Add(uiSessionTTL)}
	if err := s.store.CreateUISession(c.Request.Context(), sess); err != nil {
		s.internal(c, "start UI session", err)
		return
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: s.uiCookieName(), Value: tok, Path: "/ui", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: int(uiSessionTTL.Seconds())})
	s.mx.logins.WithLabelValues(purposeUI).Inc()
	s.log.Info("signed in to the UI", "user", user.ID, "role", user.Role)
	s.recordAs(c.Request.Context(), user.ID, actionUISignIn, user.ID, user.Role)
	c.Redirect(http.StatusSeeOther, "/ui/")
}

// uiLogout ends the browser's UI session: POST /ui/logout with the
// session's CSRF token (the UI's GET /ui/logout asks first), so another
// site cannot sign a person out.
func (s *Server) uiLogout(c *gin.Context) {
	if ck, err := c.Request.Cookie(s.uiCookieName()); err == nil && ck.Value != "" {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, 4<<10)
		got := c.Request.PostFormValue("csrf") // only a URL-encoded body is read
		if subtle.ConstantTimeCompare([]byte(got), []byte(sessionCSRF(ck.Value))) != 1 {
			renderError(c, http.StatusForbidden, "The form expired. Go back, reload the page and sign out again.")
			return
		}
		sess, err := s.store.UISession(c.Request.Context(), sessionHash(ck.Value))
		if err := s.store.DeleteUISession(c.Request.Context(), sessionHash(ck.Value)); err != nil {
			s.internal(c, "end UI session", err)
			return
		}
		if err == nil {
			s.recordAs(c.Request.Context(), sess.UserID, actionUISignOut, sess.UserID, "")
		}
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: s.uiCookieName(), Value: "", Path: "/ui", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	render(c, http.StatusOK, "done.html", map[string]any{"Title": "Signed out", "Message": "You are signed out of moat."})
}

// uiViewer returns who is signed in to the UI with r, or nil. The user is
// loaded on every request: a disabled person's session ends at once.
func (s *Server) uiViewer(r *http.Request) *ui.Viewer {
	ck, err := r.Cookie(s.uiCookieName())
	if err != nil || ck.Value == "" {
		return nil
	}
	sess, err := s.store.UISession(r.Context(), sessionHash(ck.Value))
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("load UI session", "err", err)
		} else {
			s.recordRefusal(r, credUISession, "unknown or signed out")
		}
		return nil
	}
	if !s.cfg.Now().Before(sess.Expires) {
		s.recordRefusal(r, credUISession, "expired")
		return nil // the janitor deletes it
	}
	u, err := s.store.User(r.Context(), sess.UserID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("load UI user", "user", sess.UserID, "err", err)
		}
		return nil
	}
	if u.Disabled {
		return nil
	}
	role := u.Role
	if role != ui.RoleAdmin && role != ui.RoleAuditor {
		role = ui.RoleMember
	}
	return &ui.Viewer{ID: u.ID, Email: u.Email, Role: role, CSRF: sessionCSRF(ck.Value), Build: s.cfg.Version}
}
