package coordinator

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// refusedWith reports whether err is a refusal with status and code.
func refusedWith(err error, status int, code string) bool {
	var ce *control.Error
	return errors.As(err, &ce) && ce.Status == status && ce.Code == code
}

// TestNodeCredentialRotation: a node's credential expires; the node's
// next one leaves the previous one working for the overlap only.
func TestNodeCredentialRotation(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.NodeCredentialTTL = 24 * time.Hour })
	ctx := context.Background()
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, recheckPolicy)
	// A person's device does not rotate this way.
	alice := tc.addPerson(t, "alice@example.com", false)
	laptop := tc.signIn(t, alice, "alice-laptop")
	if _, err := laptop.c.RenewNodeCredential(ctx); !refusedWith(err, http.StatusForbidden, "not_a_node") {
		t.Fatalf("a person's device renewing: %v, want 403", err)
	}
	node, res := tc.enrollNode(t, tok, "llama")
	if res.CredentialExpiry.Sub(res.CredentialIssued) != 24*time.Hour {
		t.Fatalf("enrolled with a credential from %v to %v, want 24h", res.CredentialIssued, res.CredentialExpiry)
	}
	old := node.c.Credential()
	next, err := node.c.RenewNodeCredential(ctx)
	if err != nil || next.Credential == old || next.RenewAt() != next.Issued.Add(16*time.Hour) {
		t.Fatalf("renew: %+v, %v", next, err)
	}
	// Both work during the overlap: requests in flight with the old one
	// finish.
	if err := node.c.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}}, nil); err != nil {
		t.Fatalf("the previous credential during the overlap: %v", err)
	}
	fresh := tc.client(t, next.Credential)
	if err := fresh.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}}, nil); err != nil {
		t.Fatalf("the new credential: %v", err)
	}
	tc.clock.Advance(credOverlap + time.Second)
	if err := node.c.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}}, nil); !refusedWith(err, http.StatusUnauthorized, "bad_credential") {
		t.Fatalf("the previous credential after the overlap: %v, want 401 bad_credential", err)
	}
	if _, err := node.c.RenewNodeCredential(ctx); err == nil {
		t.Fatal("the previous credential renewed after the overlap")
	}
	if err := fresh.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}}, nil); err != nil {
		t.Fatalf("the new credential after the overlap: %v", err)
	}
	// Not renewed in time, it expires.
	tc.clock.Advance(24 * time.Hour)
	if err := fresh.Advertise(ctx, nil, []wire.ModelAd{{Name: "llama"}}, nil); !refusedWith(err, http.StatusUnauthorized, "credential_expired") {
		t.Fatalf("an expired credential: %v, want 401 credential_expired", err)
	}
}

// TestNodeExpiry: nodes expire after --node-ttl, an admin sets a node's
// expiry, and an expired node leaves the netmaps and is refused.
func TestNodeExpiry(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.NodeTTL = 30 * 24 * time.Hour })
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, recheckPolicy)
	alice := tc.addPerson(t, "alice@example.com", false, "ml-research")
	laptop := tc.signIn(t, alice, "alice-laptop")
	node, res := tc.enrollNode(t, tok, "llama")
	nodeID := string(res.DeviceID)
	d, err := tc.store.Device(context.Background(), nodeID)
	if err != nil || d.Expiry.Sub(tc.clock.Now().Add(30*24*time.Hour)).Abs() > time.Second {
		t.Fatalf("a new node expires %v (%v), want in 30 days", d.Expiry, err)
	}
	w := laptop.watch(t)
	w.next(t, "the node", hasPeer(nodeID))

	for _, bad := range []string{`{"expiry": "soon"}`, `{"expiry": "2027-01-01"}`} {
		if status, _ := tc.admin(t, tok, "PUT", "/devices/"+nodeID+"/expiry", bad); status != http.StatusBadRequest {
			t.Errorf("expiry %s: %d, want 400", bad, status)
		}
	}
	if status, _ := tc.admin(t, tok, "PUT", "/devices/"+string(laptop.res.DeviceID)+"/expiry", `{"expiry": null}`); status != http.StatusConflict {
		t.Errorf("a person's device: %d, want 409", status)
	}
	if status, body := tc.admin(t, tok, "PUT", "/devices/"+nodeID+"/expiry", `{"expiry": null}`); status != http.StatusNoContent {
		t.Fatalf("never: %d %s", status, body)
	}
	at := tc.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if status, body := tc.admin(t, tok, "PUT", "/devices/"+nodeID+"/expiry", `{"expiry": "`+at+`"}`); status != http.StatusNoContent {
		t.Fatalf("in an hour: %d %s", status, body)
	}
	if _, body := tc.admin(t, tok, "GET", "/devices?kind=node", ""); !strings.Contains(body, `"expiry":"`+at+`"`) || !strings.Contains(body, `"credentialIssued"`) {
		t.Fatalf("the node as listed: %s", body)
	}
	tc.clock.Advance(time.Hour + time.Second)
	tc.ClockJumped()
	w.next(t, "the expired node gone", not(hasPeer(nodeID)))
	if err := node.c.Advertise(context.Background(), nil, nil, nil); !refusedWith(err, http.StatusUnauthorized, "device_not_live") {
		t.Fatalf("an expired node: %v, want 401", err)
	}
	trail, _ := tc.store.AdminActions(context.Background(), 100)
	if !hasAction(trail, "node.expiry", "gpu-1") {
		t.Error("the admin trail does not record the node's expiry")
	}
}
