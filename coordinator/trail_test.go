package coordinator

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
)

// trail returns the admin trail, oldest first.
func (tc *testCoord) trail(t *testing.T) []*store.AdminAction {
	t.Helper()
	as, err := tc.store.AdminActions(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(as)-1; i < j; i, j = i+1, j-1 {
		as[i], as[j] = as[j], as[i]
	}
	return as
}

// ofAction keeps the entries of action.
func ofAction(as []*store.AdminAction, action string) []*store.AdminAction {
	var out []*store.AdminAction
	for _, a := range as {
		if a.Action == action {
			out = append(out, a)
		}
	}
	return out
}

// TestAdminTrailRefusals: bad admin tokens and UI sessions are in the
// trail with where they came from and never the secret, at most
// refusalsPerWindow a minute; the first after a full window counts the
// ones left out.
func TestAdminTrailRefusals(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	const secret = "moat_at_guessedsecretvalue"
	for range refusalsPerWindow + 5 {
		if status, _ := tc.admin(t, secret, "GET", "/users", ""); status != http.StatusUnauthorized {
			t.Fatalf("bad token: %d", status)
		}
	}
	refused := ofAction(tc.trail(t), actionRefused)
	if len(refused) != refusalsPerWindow {
		t.Fatalf("%d refusals in the trail, want %d (the limit)", len(refused), refusalsPerWindow)
	}
	a := refused[0]
	if a.Actor != actorAnonymous || a.Target != "GET /api/v1/admin/users" || !strings.Contains(a.Detail, credAPIToken+" from 127.0.0.1") {
		t.Fatalf("refusal entry: %+v", a)
	}
	tc.clock.Advance(refusalWindow + time.Second)
	if status, _ := tc.admin(t, "not-even-a-token", "GET", "/users", ""); status != http.StatusUnauthorized {
		t.Fatalf("bad token: %d", status)
	}
	req, _ := http.NewRequest("GET", tc.URL+"/ui/", nil)
	req.AddCookie(&http.Cookie{Name: uiCookie, Value: "forged-session-token"})
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	refused = ofAction(tc.trail(t), actionRefused)
	if len(refused) != refusalsPerWindow+2 {
		t.Fatalf("%d refusals after the window, want %d", len(refused), refusalsPerWindow+2)
	}
	if d := refused[refusalsPerWindow].Detail; !strings.Contains(d, "5 refusals before this one not recorded") {
		t.Errorf("first refusal of the next window: %q, want the count left out", d)
	}
	if d := refused[refusalsPerWindow+1].Detail; !strings.Contains(d, credUISession) {
		t.Errorf("bad UI session: %q", d)
	}
	for _, a := range tc.trail(t) {
		if strings.Contains(a.Detail+a.Target, "guessedsecret") || strings.Contains(a.Detail+a.Target, "forged-session") {
			t.Fatalf("a refused secret is in the trail: %+v", a)
		}
	}
}

// TestAdminTrailDeviceSignInOut: a device's sign-in and its logout are
// in the trail, as the person.
func TestAdminTrailDeviceSignInOut(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	if err := d.c.Logout(t.Context()); err != nil {
		t.Fatal(err)
	}
	id := string(d.res.DeviceID)
	as := tc.trail(t)
	in, out := ofAction(as, "device.add"), ofAction(as, actionDeviceOut)
	if len(in) != 1 || in[0].Target != id || len(out) != 1 || out[0].Target != id || out[0].Detail != "laptop" {
		t.Fatalf("trail: %+v / %+v", in, out)
	}
	if in[0].Actor != out[0].Actor || !strings.HasPrefix(out[0].Actor, "u_") {
		t.Fatalf("actors %q and %q, want the person", in[0].Actor, out[0].Actor)
	}
}
