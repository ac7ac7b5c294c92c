package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// pollWait is how long one poll of a pending login may wait for it to
// finish before answering "pending".
const pollWait = 20 * time.Second

// startLogin begins a device login: POST /api/v1/login.
func (s *Server) startLogin(c *gin.Context) {
	var req wire.LoginRequest
	if !decode(c, limitSmall, &req) {
		return
	}
	if err := req.Validate(); err != nil {
		apiError(c, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	poll, pollHash := newSecret(prefixPoll)
	now := s.cfg.Now()
	ls := &store.LoginSession{
		ID: newID("ls_"), PollHash: pollHash, Purpose: loginPurpose(req.Kind),
		PublicKey: req.Key.String(), Hostname: req.Hostname, OS: req.OS, Requester: s.requesterAddr(c.Request),
		Nonce: randomString(), Verifier: randomString(), Created: now, Expires: now.Add(s.cfg.LoginTTL),
	}
	if err := s.store.CreateLoginSession(c.Request.Context(), ls); err != nil {
		s.internal(c, "create login session", err)
		return
	}
	c.JSON(http.StatusOK, wire.LoginStart{AuthURL: s.url("/login/" + ls.ID), Poll: wire.Secret(poll), ExpiresAt: ls.Expires, Code: loginCode(pollHash)})
}

// loginPurpose is the login session purpose for a request's kind.
func loginPurpose(kind string) string {
	if kind == wire.KindWGConfig {
		return "wgconfig"
	}
	return "device"
}

func randomString() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *Server) url(path string) string { return strings.TrimSuffix(s.cfg.PublicURL, "/") + path }

func (s *Server) secureCookies() bool { return strings.HasPrefix(s.cfg.PublicURL, "https:") }

// openSession loads a login session that is still in progress, answering
// with an error page itself when it is not.
func (s *Server) openSession(c *gin.Context, id string) *store.LoginSession {
	ls, err := s.store.LoginSession(c.Request.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		renderError(c, http.StatusNotFound, "This sign-in link is unknown. Start again with `moat login`.")
	case err != nil:
		s.log.Error("load login session", "err", err)
		renderError(c, http.StatusInternalServerError, "The coordinator could not load this sign-in; try again.")
	case !s.cfg.Now().Before(ls.Expires):
		renderError(c, http.StatusGone, "This sign-in link has expired. Start again with `moat login`.")
	case ls.Refusal != "":
		renderError(c, http.StatusGone, "This sign-in was refused: "+ls.Refusal)
	case ls.DeviceID != "" || ls.Consumed:
		renderError(c, http.StatusGone, "This sign-in is already complete. Start a new one with `moat login` if you need to.")
	default:
		return ls
	}
	return nil
}

// confirmLogin shows which device asks to join before sending the browser
// to the IdP: GET /login/:id. A person tricked into opening someone
// else's link sees a code their own terminal does not show, and where and
// when the login was started (logincheck.go).
func (s *Server) confirmLogin(c *gin.Context) {
	ls := s.openSession(c, c.Param("id"))
	if ls == nil {
		return
	}
	render(c, http.StatusOK, "confirm.html", s.confirmData(c, ls))
}

// beginLogin binds the session to this browser and redirects to the IdP:
// POST /login/:id.
func (s *Server) beginLogin(c *gin.Context) {
	if !csrfOK(c, s.secureCookies()) {
		renderError(c, http.StatusForbidden, "The form expired. Go back, reload the page and try again.")
		return
	}
	if ls := s.openSession(c, c.Param("id")); ls != nil {
		s.toIdP(c, ls)
	}
}

// toIdP binds login session ls to this browser and redirects it to the
// IdP. Device and UI sign-ins both go this way.
func (s *Server) toIdP(c *gin.Context, ls *store.LoginSession) {
	tok := s.auth.browserToken(c.Writer, c.Request)
	if err := s.store.BindLoginSession(c.Request.Context(), ls.ID, hashSecret(tok)); err != nil {
		s.refuse("login_claimed")
		renderError(c, http.StatusForbidden, "This sign-in link was already opened in another browser. If that was not you, do not continue: start again with `moat login` and open the new link yourself.")
		return
	}
	u, err := s.auth.authURL(c.Request.Context(), ls.ID, ls.Nonce, ls.Verifier)
	if err != nil {
		s.log.Error("build authorization URL", "err", err)
		renderError(c, http.StatusBadGateway, "The identity provider cannot be reached right now; try again in a minute.")
		return
	}
	c.Redirect(http.StatusSeeOther, u)
}

// callback finishes the OIDC step: GET /oidc/callback.
func (s *Server) callback(c *gin.Context) {
	ls := s.openSession(c, c.Query("state"))
	if ls == nil {
		return
	}
	if !s.auth.bound(c.Request, ls) {
		s.refuse("state_not_bound")
		renderError(c, http.StatusForbidden, "This sign-in was started in another browser. Open the link from `moat login` in this browser and start again.")
		return
	}
	if e := c.Query("error"); e != "" {
		s.refuseLogin(c, ls, http.StatusForbidden, "idp_error", idpRefusal(e, c.Query("error_description")))
		return
	}
	cl, refresh, err := s.auth.exchange(c.Request.Context(), c.Query("code"), ls.Nonce, ls.Verifier)
	if err != nil {
		s.log.Warn("sign-in refused", "session", ls.ID, "err", err)
		s.refuseLogin(c, ls, http.StatusForbidden, "token_invalid", "The sign-in could not be verified with the identity provider. Start again with `moat login`.")
		return
	}
	if err := s.auth.admit(cl); err != nil {
		s.refuseLogin(c, ls, http.StatusForbidden, "not_admitted", err.Error())
		return
	}
	if msg, err := s.scimSignIn(c.Request.Context(), cl); err != nil || msg != "" {
		if err != nil {
			s.internal(c, "check provisioning", err)
			return
		}
		s.refuseLogin(c, ls, http.StatusForbidden, "user_deprovisioned", msg)
		return
	}
	user, err := s.upsertUser(c.Request.Context(), cl)
	var refusal *userError
	if errors.As(err, &refusal) {
		s.refuseLogin(c, ls, http.StatusForbidden, "email_taken", refusal.msg)
		return
	}
	if err != nil {
		s.internal(c, "record user", err)
		return
	}
	if user.Disabled {
		s.refuseLogin(c, ls, http.StatusForbidden, "user_disabled", user.Email+" is disabled in moat; ask an admin.")
		return
	}
	ls.UserID = user.ID
	s.keepGrant(c.Request.Context(), user.ID, refresh)
	stepUp, err := s.needsStepUp(c.Request.Context(), cl, user)
	if err != nil {
		s.internal(c, "check second factor", err)
		return
	}
	if !stepUp {
		at := s.cfg.Now()
		if cl.AuthTime > 0 {
			at = time.Unix(cl.AuthTime, 0)
		}
		s.complete(c, ls, user, at, store.MFAViaIdP, amrMethod(cl.AMR))
		return
	}
	if err := s.store.UpdateLoginSession(c.Request.Context(), ls); err != nil {
		s.internal(c, "update login session", err)
		return
	}
	c.Redirect(http.StatusSeeOther, "/login/"+ls.ID+"/mfa")
}

// upsertUser records the person as the IdP describes them now. The
// policy names people by email, so an email that already belongs to
// another identity (another subject or issuer) is refused rather than
// handed that person's grants.
func (s *Server) upsertUser(ctx context.Context, cl *claims) (*store.User, error) {
	email := strings.ToLower(cl.Email)
	users, err := s.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.Email == email && (u.Issuer != s.auth.issuer || u.Subject != cl.Subject) {
			return nil, &userError{email + " already belongs to another identity in moat; ask an admin"}
		}
	}
	cfg := s.cfg.OIDC
	admin := cl.Admin || intersects(cl.Groups, cfg.AdminGroups)
	role := "member"
	switch {
	case admin:
		role = "admin"
	case intersects(cl.Groups, cfg.AuditorGroups):
		role = "auditor"
	}
	return s.store.UpsertUserByOIDC(ctx, &store.User{
		Issuer: s.auth.issuer, Subject: cl.Subject, Email: email, Name: cl.Name,
		Groups: cl.Groups, Admin: admin, Role: role, LastLogin: s.cfg.Now(),
	})
}

// complete records the person's second factor (proved at lastMFA, via
// how, by RFC 8176 method), then registers the device of a finished sign-in and leaves its
// credential for the device's poll; a UI sign-in gets a UI session
// instead (uisession.go).
func (s *Server) complete(c *gin.Context, ls *store.LoginSession, user *store.User, lastMFA time.Time, via, method string) {
	if err := s.store.RecordMFA(c.Request.Context(), user.ID, lastMFA, via); err != nil {
		s.internal(c, "record MFA", err)
		return
	}
	if ls.Purpose == purposeUI {
		s.completeUI(c, ls, user)
		return
	}
	if err := ensurePromptKey(c.Request.Context(), s.store, s.box, user.ID, s.cfg.Now()); err != nil {
		s.log.Error("make the person's prompt key; nodes keep no prompt of theirs", "user", user.ID, "err", err)
	}
	dev, cred, err := s.registerDevice(c.Request.Context(), ls, user, lastMFA, method)
	if err != nil {
		var refusal *userError
		if errors.As(err, &refusal) {
			s.refuseLogin(c, ls, http.StatusConflict, "key_taken", refusal.msg)
			return
		}
		s.internal(c, "register device", err)
		return
	}
	res := wire.LoginResult{Credential: wire.Secret(cred), DeviceID: wire.DeviceID(dev.ID), Addresses: netmap.Addresses(dev), Expiry: dev.Expiry}
	body, _ := json.Marshal(res)
	ls.MFADone, ls.DeviceID, ls.Result = true, dev.ID, s.box.Seal(body, []byte("login-result:"+ls.ID))
	if err := s.store.UpdateLoginSession(c.Request.Context(), ls); err != nil {
		s.internal(c, "finish login session", err)
		return
	}
	s.mx.logins.WithLabelValues(ls.Purpose).Inc()
	s.log.Info("device signed in", "user", user.ID, "device", dev.ID, "hostname", dev.Hostname)
	s.changed()
	render(c, http.StatusOK, "done.html", map[string]any{
		"Title": "Signed in", "Message": fmt.Sprintf("%s is now connected as %s.", dev.Hostname, user.Email),
		"Notice": s.deviceAdded(c, ls, user, dev),
	})
}

// userError is a refusal whose message is meant for the person.
type userError struct{ msg string }

func (e *userError) Error() string { return e.msg }

// registerDevice creates the device of a sign-in, or renews it when the
// same person signs in again with the same key (which keeps its
// addresses). It returns the device and its new credential.
func (s *Server) registerDevice(ctx context.Context, ls *store.LoginSession, user *store.User, lastMFA time.Time, method string) (*store.Device, string, error) {
	cred, credHash := newSecret(prefixDeviceCred)
	now := s.cfg.Now()
	d, err := s.reusableDevice(ctx, ls.PublicKey)
	switch {
	case err != nil:
		return nil, "", err
	case d == nil:
		d = &store.Device{ID: newID("d_"), Kind: store.KindUser, UserID: user.ID, PublicKey: ls.PublicKey, Created: now}
		if ls.Purpose == "wgconfig" {
			d.Kind = store.KindWGConfig
		}
	case d.Kind == store.KindNode || d.UserID != user.ID:
		return nil, "", &userError{"This device's key already belongs to another identity in moat. Run `moat logout` on it, or ask an admin to remove the old device."}
	}
	d.Hostname, d.OS = ls.Hostname, ls.OS
	d.CredHash, d.Expiry, d.LastMFA, d.MFAMethod, d.LastSeen = credHash, now.Add(s.cfg.DeviceTTL), lastMFA, method, now
	if d.IPv4.IsValid() {
		return d, cred, s.store.UpdateDevice(ctx, d)
	}
	return d, cred, s.store.CreateDevice(ctx, d)
}

// reusableDevice returns the live device registered with publicKey, or nil
// when there is none. A revoked device is removed: revocation is final,
// and signing in again makes a new device (with new addresses).
func (s *Server) reusableDevice(ctx context.Context, publicKey string) (*store.Device, error) {
	d, err := s.store.DeviceByKey(ctx, publicKey)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	case d.Revoked:
		return nil, s.store.DeleteDevice(ctx, d.ID)
	}
	return d, nil
}

// pollLogin hands a device the outcome of its login, once:
// POST /api/v1/login/poll {"poll": "moat_lp_…"}.
func (s *Server) pollLogin(c *gin.Context) {
	var req struct {
		Poll string `json:"poll"`
	}
	if !decode(c, limitSmall, &req) {
		return
	}
	deadline := time.Now().Add(pollWait)
	for {
		ls, err := s.store.LoginSessionByPollHash(c.Request.Context(), hashSecret(req.Poll))
		switch {
		case errors.Is(err, store.ErrNotFound) || (err == nil && ls.Consumed):
			apiError(c, http.StatusNotFound, "unknown_login", "no such login in progress; run `moat login` again")
			return
		case err != nil:
			s.internal(c, "load login session", err)
			return
		case ls.DeviceID != "":
			s.handOver(c, ls)
			return
		case ls.Refusal != "":
			pollRefusal(c, ls)
			return
		case !s.cfg.Now().Before(ls.Expires):
			apiError(c, http.StatusGone, "login_expired", "the login expired before it was finished in the browser; run `moat login` again")
			return
		case time.Now().After(deadline):
			c.JSON(http.StatusAccepted, loginPending{Status: "pending"})
			return
		}
		select {
		case <-c.Request.Context().Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (s *Server) handOver(c *gin.Context, ls *store.LoginSession) {
	sealed, err := s.store.ConsumeLoginResult(c.Request.Context(), ls.ID)
	if err != nil {
		apiError(c, http.StatusNotFound, "unknown_login", "this login's result was already collected; run `moat login` again")
		return
	}
	body, err := s.box.Open(sealed, []byte("login-result:"+ls.ID))
	if err != nil {
		s.internal(c, "unseal login result", err)
		return
	}
	c.Data(http.StatusOK, "application/json", body)
}

// internal logs err and answers with a generic 500.
func (s *Server) internal(c *gin.Context, op string, err error) {
	s.log.Error(op, "err", err)
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		apiError(c, http.StatusInternalServerError, "internal", "the coordinator failed to "+op+"; try again, and tell an admin if it persists")
		return
	}
	renderError(c, http.StatusInternalServerError, "The coordinator failed to "+op+". Try again, and tell an admin if it persists.")
}

func (s *Server) refuse(reason string) { s.mx.refusals.WithLabelValues(reason).Inc() }
