package coordinator_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/moatmesh/moat/coordinator/coordtest"
	"github.com/moatmesh/moat/coordinator/store"
)

// TestUIResetMFA: an admin resets a person's step-up factors from their
// page; they are gone, the IdP's stay, and the admin trail says who did
// it. A member cannot.
func TestUIResetMFA(t *testing.T) {
	c := coordtest.Start(t)
	ctx := context.Background()
	admin := c.AddPerson(t, "root@example.com", true)
	alice := c.AddPerson(t, "alice@example.com", false)
	signInDevice(t, c, alice, "alice-laptop")
	aliceID := personID(t, c, alice.Email)
	if err := c.Store().ClaimTOTPStep(ctx, aliceID, 1, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	pk := &store.Passkey{ID: []byte("k1"), UserID: aliceID, Name: "Titan", Data: []byte(`{"flags":{"backupEligible":true}}`), Created: c.Clock.Now()}
	if err := c.Store().CreatePasskey(ctx, pk); err != nil {
		t.Fatal(err)
	}

	mb, _ := signInUI(t, c, alice)
	if p := get(t, mb, c.URL+"/ui/people/"+aliceID+"/reset-mfa"); p.Status != http.StatusForbidden {
		t.Fatalf("a member's reset page: %d, want 403", p.Status)
	}
	ab, _ := signInUI(t, c, admin)
	page := get(t, ab, c.URL+"/ui/people/"+aliceID)
	for _, want := range []string{"Titan", "<code>swk</code> <small>synced</small>", "embedded IdP", `href="/ui/people/` + aliceID + `/reset-mfa"`} {
		if !page.Contains(want) {
			t.Fatalf("the person page lacks %q:\n%s", want, page.Body)
		}
	}
	page = confirmAndSubmit(t, ab, c.URL+"/ui/people/"+aliceID+"/reset-mfa", "a new setup link")
	if page.URL.Path != "/ui/people/"+aliceID || page.Contains("Titan") || !page.Contains("embedded IdP") || page.Contains("/reset-mfa") {
		t.Fatalf("after the reset, at %s:\n%s", page.URL, page.Body)
	}
	u, err := c.Store().User(ctx, aliceID)
	ks, _ := c.Store().Passkeys(ctx, aliceID)
	if err != nil || u.TOTPSecret != nil || len(ks) != 0 {
		t.Fatalf("after the reset: app %v, %d passkeys (%v)", u.TOTPSecret != nil, len(ks), err)
	}
	as, _ := c.Store().AdminActions(ctx, 100)
	adminID := personID(t, c, admin.Email)
	if !slices.ContainsFunc(as, func(a *store.AdminAction) bool {
		return a.Action == "mfa.reset" && a.Target == alice.Email && a.Actor == adminID
	}) {
		t.Fatalf("the admin trail has no mfa.reset of %s by the admin: %q", alice.Email, actions(t, c))
	}
}
