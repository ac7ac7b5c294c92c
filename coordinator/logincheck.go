package coordinator

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
)

// What stops a sign-in link from being used for phishing (someone runs
// `moat login --no-browser` and sends the link, and whoever finishes it
// signs the sender's key in as themselves): the page shows a short code
// the person compares with their own terminal, where and when the login
// was started, and says plainly not to continue otherwise; hostname and
// OS are short plain words (wire.LoginRequest.Validate); a finished
// sign-in tells the person a device was added and lands in the admin
// trail; a refused one ends the device's poll at once with the reason.

// codeAlphabet has no 0/O or 1/I, so a code read aloud or retyped
// survives.
const codeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// loginCode is the short code of a device login, "XXXX-XXXX" (40 bits):
// derived from the hash of the poll secret, so every replica computes it
// and only the device that started the login was told it.
func loginCode(pollHash []byte) string {
	sum := sha256.Sum256(append([]byte("moat login code\x00"), pollHash...))
	var b strings.Builder
	for i, x := range sum[:8] {
		if i == 4 {
			b.WriteByte('-')
		}
		b.WriteByte(codeAlphabet[x&31])
	}
	return b.String()
}

// requesterAddr is the address a request came from, as the sign-in page
// shows it: the client behind trusted proxies (ClientAddr).
func (s *Server) requesterAddr(r *http.Request) string {
	if a := s.ClientAddr(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}

// confirmData is what the confirmation page shows about a login.
func (s *Server) confirmData(c *gin.Context, ls *store.LoginSession) map[string]any {
	return map[string]any{
		"Title": "Sign in a device", "ID": ls.ID, "Hostname": ls.Hostname, "OS": ls.OS,
		"Code": loginCode(ls.PollHash), "Requester": orUnknown(ls.Requester),
		"Time": whenShown(ls.Created, s.cfg.Now()), "CSRF": csrfToken(c, s.secureCookies()),
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// whenShown is t for people: the UTC time and how long ago.
func whenShown(t, now time.Time) string {
	ago := now.Sub(t).Round(time.Minute)
	rel := "just now"
	if ago >= time.Minute {
		rel = fmt.Sprintf("%s ago", strings.TrimSuffix(ago.String(), "0s"))
	}
	return stamp(t) + " (" + rel + ")"
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// refuseLogin ends a sign-in for good: the browser gets the page, and the
// device's poll the same reason at once (wire.CodeLoginRefused) instead
// of waiting for the link to expire. metric labels the refusal.
func (s *Server) refuseLogin(c *gin.Context, ls *store.LoginSession, status int, metric, msg string) {
	s.refuse(metric)
	ls.Refusal = msg
	if err := s.store.UpdateLoginSession(c.Request.Context(), ls); err != nil {
		s.log.Error("record refused sign-in", "session", ls.ID, "err", err)
	}
	renderError(c, status, msg)
}

// idpRefusal is the message for an error the IdP sent back, kept short
// and plain: it comes through the browser's query string.
func idpRefusal(code, desc string) string {
	msg := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, strings.TrimSpace(code+": "+desc))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return "The identity provider refused the sign-in (" + strings.TrimSuffix(msg, ":") + "). Start again with `moat login`."
}

// deviceAdded records a finished device sign-in in the admin trail and
// returns the notice the person sees: which device was added to their
// account, from where and when, and what to do if it was not them.
func (s *Server) deviceAdded(c *gin.Context, ls *store.LoginSession, user *store.User, dev *store.Device) string {
	detail := fmt.Sprintf("%s (%s) from %s", dev.Hostname, orUnknown(dev.OS), orUnknown(ls.Requester))
	s.recordAs(c.Request.Context(), user.ID, "device.add", dev.ID, detail)
	return fmt.Sprintf("moat added the device %s to your account at %s; its sign-in was started from %s. "+
		"If you did not just run `moat login` on it yourself, revoke it now under My access: %s",
		dev.Hostname, stamp(s.cfg.Now()), orUnknown(ls.Requester), s.url("/ui/my"))
}

// pollRefusal answers a poll of a refused sign-in.
func pollRefusal(c *gin.Context, ls *store.LoginSession) {
	apiError(c, http.StatusForbidden, wire.CodeLoginRefused, "the sign-in was refused: "+ls.Refusal)
}
