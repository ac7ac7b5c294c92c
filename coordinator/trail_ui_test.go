package coordinator_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/moatmesh/moat/coordinator/coordtest"
)

// TestAdminTrailUISignInOut: every UI sign-in, a member's too, and every
// sign-out is in the admin trail.
func TestAdminTrailUISignInOut(t *testing.T) {
	c := coordtest.Start(t)
	bob := c.AddPerson(t, "bob@example.com", false)
	b, _ := signInUI(t, c, bob)
	ask := get(t, b, c.URL+"/ui/logout")
	if p, err := ask.Submit(nil); err != nil || !p.Contains("signed out") {
		t.Fatalf("logout: %v", err)
	}
	got := actions(t, c)
	has := func(action string) bool {
		return slices.ContainsFunc(got, func(a string) bool { return strings.HasPrefix(a, action+" u_") })
	}
	if !has("ui.signin") || !has("ui.signout") {
		t.Fatalf("trail %q, want ui.signin and ui.signout", got)
	}
}
