package coordinator

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/ui"
)

// A person's own passkeys: GET /ui/account/passkeys lists them with
// forms to name and remove each and to register another; POST the same
// path does one of those (action register, rename or remove). The page
// needs a UI session (signed in with MFA); its forms carry the session's
// CSRF token. Under the embedded IdP these are the passkeys the IdP signs
// the person in with; under another IdP, the coordinator's step-up ones.

// Admin trail actions of this file.
const (
	actionPasskeyAdd    = "passkey.add"    // a person registered a passkey
	actionPasskeyRemove = "passkey.remove" // a person removed one of theirs
	actionMFAReset      = "mfa.reset"      // an admin reset a person's second factors
)

// passkeyOwner is the id the person's passkeys are kept under: the
// embedded IdP's user (its subject) when they sign in there, else the
// coordinator's user.
func (s *Server) passkeyOwner(u *store.User) *passkey.Person {
	p := personOf(u)
	if s.auth.idp != nil && u.Issuer == s.auth.issuer {
		p.ID = u.Subject
	}
	return p
}

// otherFactor reports whether the person has an authenticator app where
// their passkeys live, so that removing every passkey still leaves a
// factor.
func (s *Server) otherFactor(ctx context.Context, u *store.User, owner string) (bool, error) {
	if owner == u.ID {
		return u.TOTPSecret != nil, nil
	}
	iu, err := s.store.IdPUser(ctx, owner)
	if err != nil {
		return false, err
	}
	return iu.TOTPSecret != nil, nil
}

// accountPasskeys serves GET and POST /ui/account/passkeys.
func (s *Server) accountPasskeys(c *gin.Context) {
	v := s.uiViewer(c.Request)
	if v == nil {
		c.Redirect(http.StatusSeeOther, "/ui/login")
		return
	}
	if s.passkeys == nil {
		renderError(c, http.StatusNotFound, "Passkeys are off here: the coordinator's public URL is an IP address.")
		return
	}
	u, err := s.store.User(c.Request.Context(), v.ID)
	if err != nil {
		s.internal(c, "load user", err)
		return
	}
	msg := ""
	status := http.StatusOK
	if c.Request.Method == http.MethodPost {
		if msg, err = s.changePasskeys(c, v, u); err != nil {
			s.internal(c, "change passkeys", err)
			return
		}
		if msg != "" {
			status = http.StatusBadRequest
		}
	}
	s.showPasskeys(c, v, u, status, msg)
}

// passkeyRow is one passkey on the account page.
type passkeyRow struct {
	ID, Name, Kind    string
	Created, LastUsed string
}

func (s *Server) showPasskeys(c *gin.Context, v *ui.Viewer, u *store.User, status int, msg string) {
	ctx, owner := c.Request.Context(), s.passkeyOwner(u)
	keys, err := s.store.Passkeys(ctx, owner.ID)
	if err != nil {
		s.internal(c, "list passkeys", err)
		return
	}
	rows := make([]passkeyRow, len(keys))
	for i, k := range keys {
		rows[i] = passkeyRow{ID: base64.RawURLEncoding.EncodeToString(k.ID), Name: k.Name, Kind: passkey.Kind(passkey.Method(k)),
			Created: k.Created.UTC().Format(time.DateTime), LastUsed: "never"}
		if !k.LastUsed.IsZero() {
			rows[i].LastUsed = k.LastUsed.UTC().Format(time.DateTime)
		}
	}
	cer, err := s.passkeys.BeginRegistration(ctx, owner, "account:"+v.ID)
	if err != nil {
		s.internal(c, "start passkey registration", err)
		return
	}
	render(c, status, "passkeys.html", map[string]any{"Title": "Your passkeys", "Email": u.Email, "CSRF": v.CSRF,
		"Keys": rows, "Passkey": cer, "Error": msg})
}

// changePasskeys does the posted action; a refusal meant for the person
// is returned as its message.
func (s *Server) changePasskeys(c *gin.Context, v *ui.Viewer, u *store.User) (string, error) {
	if c.PostForm("csrf") != v.CSRF {
		return "The form expired. Reload the page and try again.", nil
	}
	ctx, owner := c.Request.Context(), s.passkeyOwner(u)
	id, _ := base64.RawURLEncoding.DecodeString(c.PostForm("id"))
	var err error
	switch c.PostForm("action") {
	case "register":
		var k *store.Passkey
		k, _, err = s.passkeys.FinishRegistration(ctx, owner, "account:"+v.ID, c.PostForm("ceremony"), c.PostForm("answer"), c.PostForm("name"))
		if msg := passkeyRefusal(err); msg != "" {
			return msg, nil
		}
		if err == nil {
			s.recordAs(ctx, v.ID, actionPasskeyAdd, u.ID, k.Name)
		}
	case "rename":
		err = s.store.RenamePasskey(ctx, owner.ID, id, passkey.CleanName(c.PostForm("name")))
	case "remove":
		return s.removePasskey(ctx, v, u, owner.ID, id)
	default:
		return "Unknown action.", nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return "That passkey is gone (removed meanwhile?).", nil
	}
	return "", err
}

// removePasskey removes one passkey unless it is the person's last
// second factor.
func (s *Server) removePasskey(ctx context.Context, v *ui.Viewer, u *store.User, owner string, id []byte) (string, error) {
	keys, err := s.store.Passkeys(ctx, owner)
	if err != nil {
		return "", err
	}
	if len(keys) == 1 {
		other, err := s.otherFactor(ctx, u, owner)
		if err != nil {
			return "", err
		}
		if !other {
			return "This is your only second factor: register another passkey first.", nil
		}
	}
	err = s.store.DeletePasskey(ctx, owner, id)
	if errors.Is(err, store.ErrNotFound) {
		return "That passkey is gone (removed meanwhile?).", nil
	}
	if err == nil {
		s.recordAs(ctx, v.ID, actionPasskeyRemove, u.ID, "")
	}
	return "", err
}
