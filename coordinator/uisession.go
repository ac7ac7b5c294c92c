package coordinator

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
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
// Sessions are kept in memory, keyed by the token's SHA-256, rather than
// signed into the cookie: signing out ends a session for good (a copied
// cookie is useless afterwards), and each session carries its own CSRF
// token for the UI's forms. The price is that a restart signs everyone
// out of the UI, and that several replicas need sticky sessions until the
// sessions move into the store. Every request reloads the user, so a
// disabled person (or a changed role) takes effect at once.

const (
	purposeUI    = "ui"
	uiCookie     = "moat_ui"
	uiSessionTTL = 8 * time.Hour
)

// uiSession is one signed-in browser.
type uiSession struct {
	userID  string
	csrf    string // the token every form of this session carries
	expires time.Time
}

// uiSessions holds the live UI sessions. The zero value is ready.
type uiSessions struct {
	mu struct {
		sync.Mutex
		m map[string]uiSession // by hex SHA-256 of the cookie's token
	}
}

func sessionKey(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// add starts a session and returns its token; expired sessions are
// forgotten on the way.
func (u *uiSessions) add(userID string, now time.Time) string {
	tok := randomString()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.mu.m == nil {
		u.mu.m = map[string]uiSession{}
	}
	for k, s := range u.mu.m {
		if !now.Before(s.expires) {
			delete(u.mu.m, k)
		}
	}
	u.mu.m[sessionKey(tok)] = uiSession{userID: userID, csrf: randomString(), expires: now.Add(uiSessionTTL)}
	return tok
}

// get returns the live session of tok.
func (u *uiSessions) get(tok string, now time.Time) (uiSession, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.mu.m[sessionKey(tok)]
	if ok && !now.Before(s.expires) {
		delete(u.mu.m, sessionKey(tok))
		return uiSession{}, false
	}
	return s, ok
}

// end forgets the session of tok.
func (u *uiSessions) end(tok string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.mu.m, sessionKey(tok))
}

// uiRoutes serves /ui/: GET /ui/login and /ui/logout here (sign-ins
// under the limiter of sign-in starts), every other path from package ui.
// One catch-all route, because gin cannot mix it with static siblings.
func (s *Server) uiRoutes(limit gin.HandlerFunc) gin.HandlerFunc {
	pages := gin.WrapH(ui.New(uiBackend{s}))
	return func(c *gin.Context) {
		own := map[string]gin.HandlerFunc{"/login": s.uiLogin, "/logout": s.uiLogout}[c.Param("path")]
		switch {
		case own == nil:
			pages(c)
		case c.Request.Method != http.MethodGet:
			c.AbortWithStatus(http.StatusMethodNotAllowed)
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
	tok := s.uis.add(user.ID, s.cfg.Now())
	http.SetCookie(c.Writer, &http.Cookie{Name: uiCookie, Value: tok, Path: "/ui", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: int(uiSessionTTL.Seconds())})
	s.mx.logins.WithLabelValues(purposeUI).Inc()
	s.log.Info("signed in to the UI", "user", user.ID, "role", user.Role)
	c.Redirect(http.StatusSeeOther, "/ui/")
}

// uiLogout ends the browser's UI session: GET /ui/logout.
func (s *Server) uiLogout(c *gin.Context) {
	if ck, err := c.Request.Cookie(uiCookie); err == nil {
		s.uis.end(ck.Value)
	}
	http.SetCookie(c.Writer, &http.Cookie{Name: uiCookie, Value: "", Path: "/ui", HttpOnly: true,
		Secure: s.secureCookies(), SameSite: http.SameSiteLaxMode, MaxAge: -1})
	render(c, http.StatusOK, "done.html", map[string]any{"Title": "Signed out", "Message": "You are signed out of moat."})
}

// uiViewer returns who is signed in to the UI with r, or nil. The user is
// loaded on every request: a disabled person's session ends at once.
func (s *Server) uiViewer(r *http.Request) *ui.Viewer {
	ck, err := r.Cookie(uiCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	sess, ok := s.uis.get(ck.Value, s.cfg.Now())
	if !ok {
		return nil
	}
	u, err := s.store.User(r.Context(), sess.userID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("load UI user", "user", sess.userID, "err", err)
		return nil
	}
	if err != nil || u.Disabled {
		s.uis.end(ck.Value)
		return nil
	}
	role := u.Role
	if role != ui.RoleAdmin && role != ui.RoleAuditor {
		role = ui.RoleMember
	}
	return &ui.Viewer{ID: u.ID, Email: u.Email, Role: role, CSRF: sess.csrf}
}
