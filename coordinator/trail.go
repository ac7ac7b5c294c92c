package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"os/user"
	"sync"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// The admin trail also holds every refused admin credential: a bad admin
// API token, a browser presenting a UI session that does not exist or
// has ended. Someone trying tokens could write thousands of those a
// minute, so each replica records at most refusalsPerWindow of them per
// refusalWindow; the first one recorded after a full window says how many
// were left out (the refusals metric counts them all).
const (
	refusalsPerWindow = 20
	refusalWindow     = time.Minute
)

// Actions and actors of the admin trail written here.
const (
	actionRefused    = "auth.refused"    // a bad admin API token or UI session
	actionUISignIn   = "ui.signin"       // a person signed in to the web UI
	actionUISignOut  = "ui.signout"      // a person signed out of the web UI
	actionDeviceOut  = "device.logout"   // a device revoked its own credential
	ActionIdPUserAdd = "idp.user.add"    // CLI users add
	actionKeyRotate  = "secret.rotate"   // CLI rotate idp-key / seal-key
	actionInit       = "init"            // CLI init
	actionBackup     = "backup"          // CLI backup
	actionRestore    = "restore"         // CLI restore, in the restored database
	actionSCIMUser   = "scim.user"       // SCIM changed a provisioned person
	actorAnonymous   = "anonymous"       // refusals: nobody is known
	credAPIToken     = "admin API token" // refusals: what was presented
	credUISession    = "web UI session"  // refusals: what was presented
)

// refusalLimiter lets refusalsPerWindow refusals per window into the
// trail and counts the rest. The zero value is ready.
type refusalLimiter struct {
	mu      sync.Mutex
	start   time.Time // of the current window
	n       int       // recorded in it
	dropped int       // left out since the last one recorded
}

// admit reports whether a refusal at now goes into the trail and, if so,
// how many were left out before it.
func (l *refusalLimiter) admit(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= refusalWindow || now.Before(l.start) {
		l.start, l.n = now, 0
	}
	if l.n >= refusalsPerWindow {
		l.dropped++
		return false, 0
	}
	l.n++
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

// recordRefusal writes a refused credential of kind cred, presented by
// r's client, to the trail unless the limiter holds it back. The
// credential itself is never written.
func (s *Server) recordRefusal(r *http.Request, cred, why string) {
	ok, dropped := s.refusals.admit(s.cfg.Now())
	if !ok {
		return
	}
	detail := fmt.Sprintf("%s from %s: %s", cred, s.ClientAddr(r), why)
	if dropped > 0 {
		detail += fmt.Sprintf(" (%d refusals before this one not recorded: more than %d a minute)", dropped, refusalsPerWindow)
	}
	s.recordAs(r.Context(), actorAnonymous, actionRefused, r.Method+" "+r.URL.Path, detail)
}

// CLIActor names whoever runs a CLI command in the admin trail:
// "cli:<login>" of the operating-system user, or "cli".
func CLIActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// RecordCLIAction writes an admin action done by the CLI straight on the
// store to the trail.
func RecordCLIAction(ctx context.Context, st interface {
	LogAdminAction(context.Context, *store.AdminAction) error
}, action, target, detail string) error {
	err := st.LogAdminAction(ctx, &store.AdminAction{Time: time.Now(), Actor: CLIActor(), Action: action, Target: target, Detail: detail})
	if err != nil {
		return fmt.Errorf("admin trail: %w", err)
	}
	return nil
}

// orNode is the actor of something a device does itself: its person, or
// the node.
func orNode(d *store.Device) string {
	if d.UserID != "" {
		return d.UserID
	}
	return d.ID
}
