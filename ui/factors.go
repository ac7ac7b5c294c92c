package ui

import (
	"context"
	"net/http"
	"time"
)

// FactorBackend is what the person page needs to show a person's second
// factors and reset them.
type FactorBackend interface {
	// Factors lists person userID's second factors: the coordinator's
	// own (its step-up) and, for a person of the embedded IdP, the IdP's.
	Factors(ctx context.Context, userID string) ([]Factor, error)
	// ResetMFA removes the coordinator's own factors of person userID
	// (authenticator app and step-up passkeys) on behalf of actor and
	// records it in the admin trail: their next sign-in asks them to
	// enroll anew. An embedded IdP's factors are replaced by a new setup
	// link instead.
	ResetMFA(ctx context.Context, actor *Viewer, userID string) error
}

// Factor is one second factor of a person.
type Factor struct {
	Kind     string // "authenticator app" or "passkey"
	Method   string // RFC 8176: "otp", "hwk" (device-bound key), "swk" (synced passkey)
	Name     string // a passkey's label; "" for an app
	Where    string // "coordinator" (its step-up) or "embedded IdP"
	Created  time.Time
	LastUsed time.Time // zero: never, or not recorded
}

// Resettable reports whether ResetMFA removes f.
func (f Factor) Resettable() bool { return f.Where == FactorCoordinator }

// Where a factor lives.
const (
	FactorCoordinator = "coordinator"
	FactorEmbeddedIdP = "embedded IdP"
)

func (h *handler) factorRoutes() {
	h.mux.HandleFunc("GET /ui/people/{id}/reset-mfa", h.signedIn(admins, h.confirmResetMFA))
	h.mux.HandleFunc("POST /ui/people/{id}/reset-mfa", h.signedIn(admins, h.resetMFA))
}

// confirmResetMFA asks before resetting a person's second factors: GET
// /ui/people/{id}/reset-mfa.
func (h *handler) confirmResetMFA(w http.ResponseWriter, r *http.Request, v *Viewer) {
	p, err := h.findPerson(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, v, "person", err)
		return
	}
	fs, err := h.b.Factors(r.Context(), p.ID)
	if err != nil {
		h.failErr(w, v, "list second factors", err)
		return
	}
	c := confirmation{Title: "Reset second factors", Verb: "Reset the second factors of", Subject: p.Email,
		Action: "/ui/people/" + p.ID + "/reset-mfa", Button: "Reset " + p.Email + "'s second factors",
		Cancel: "/ui/people/" + p.ID, Danger: true,
		Consequences: []string{
			"Their authenticator app and the passkeys they use at the coordinator's step-up are removed; their next sign-in asks them to enroll a new one.",
			"Only do this for someone who lost their factor and whom you have verified another way: whoever signs in next as them enrolls the new one.",
		}}
	for _, f := range fs {
		if !f.Resettable() {
			c.Consequences = append(c.Consequences, "Their embedded IdP password, app and passkeys stay: a new setup link (moat-coordinator users add "+p.Email+") replaces those.")
			break
		}
	}
	h.confirm(w, v, "people", c)
}

// resetMFA resets a person's second factors: POST
// /ui/people/{id}/reset-mfa.
func (h *handler) resetMFA(w http.ResponseWriter, r *http.Request, v *Viewer) {
	id := r.PathValue("id")
	h.done(w, r, v, "person", "/ui/people/"+id, h.b.ResetMFA(r.Context(), v, id))
}
