package coordinator

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/internal/browsertest"
)

const recheckPolicy = `{
  "groups": { "group:ml": ["idp:ml-research"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h" } ],
}`

// failingIdP answers the token endpoint as an IdP in trouble would: a
// network error, or a 503.
type failingIdP struct{ status int }

func (f failingIdP) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.status == 0 {
		return nil, errors.New("dial tcp: connection refused")
	}
	return &http.Response{StatusCode: f.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"error":"temporarily_unavailable"}`)), Request: r}, nil
}

// TestIdPRecheck re-checks people at the embedded IdP, through its real
// refresh grant (rounds are run by the test; the job's next tick is a
// minute away): groups follow the IdP, an IdP outage disables nobody,
// and a person deleted at the IdP loses access at the next re-check.
func TestIdPRecheck(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.IdPRecheck = time.Hour })
	ctx := t.Context()
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, recheckPolicy)
	alice := tc.addPerson(t, "alice@example.com", false, "ml-research")
	bob := tc.addPerson(t, "bob@example.com", false, "ml-research")
	node, nres := tc.enrollNode(t, tok, "llama")
	nodeID := string(nres.DeviceID)
	laptop := tc.signIn(t, alice, "alice-laptop")
	bobs := tc.signIn(t, bob, "bob-laptop")
	w, bw := laptop.watch(t), bobs.watch(t)
	w.next(t, "the node", hasPeer(nodeID))
	bw.next(t, "the node", hasPeer(nodeID))

	// The sign-in's refresh token is kept sealed.
	u := tc.userByEmail(t, "alice@example.com")
	g, err := tc.store.IdPGrant(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := tc.box.Open(g.Refresh, grantAD(u.ID))
	if err != nil || len(rt) < 32 || bytes.Contains(g.Refresh, rt) {
		t.Fatalf("the refresh token is not kept sealed (%v)", err)
	}
	checks := func(result string) float64 {
		var m dto.Metric
		if err := tc.mx.rechecks.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}

	// A round with the IdP well: everyone ok, the token rotated.
	tc.recheckRound(ctx, tc.clock.Now())
	if checks(store.IdPCheckOK) != 2 {
		t.Fatalf("ok re-checks %v, want 2", checks(store.IdPCheckOK))
	}
	if g2, _ := tc.store.IdPGrant(ctx, u.ID); g2 == nil || bytes.Equal(g2.Refresh, g.Refresh) || g2.Result != store.IdPCheckOK {
		t.Fatalf("after a re-check: %+v", g2)
	}

	// Groups follow the IdP.
	if _, err := idp.AddUser(ctx, tc.store, alice.email, "", false, nil, tc.URL, time.Hour); err != nil {
		t.Fatal(err)
	}
	tc.recheckRound(ctx, tc.clock.Now())
	w.next(t, "the node gone with the IdP group", not(hasPeer(nodeID)))
	if _, err := idp.AddUser(ctx, tc.store, alice.email, "", false, []string{"ml-research"}, tc.URL, time.Hour); err != nil {
		t.Fatal(err)
	}
	tc.recheckRound(ctx, tc.clock.Now())
	w.next(t, "the node back with the IdP group", hasPeer(nodeID))

	// An IdP outage (network, then 5xx) disables nobody.
	client := tc.auth.client
	for _, f := range []failingIdP{{0}, {http.StatusServiceUnavailable}, {http.StatusBadGateway}} {
		tc.auth.client = &http.Client{Transport: f}
		tc.recheckRound(ctx, tc.clock.Now())
	}
	tc.auth.client = client
	if checks(store.IdPCheckError) != 6 || checks(store.IdPCheckGone) != 0 {
		t.Fatalf("during the outage: %v errors, %v gone; want 6, 0", checks(store.IdPCheckError), checks(store.IdPCheckGone))
	}
	for _, email := range []string{"alice@example.com", "bob@example.com"} {
		if tc.userByEmail(t, email).Disabled {
			t.Fatalf("%s was disabled by an IdP outage", email)
		}
	}
	w.quiet(t, 200*time.Millisecond, "an outage changes nothing")
	tc.recheckRound(ctx, tc.clock.Now()) // the IdP is back: the kept tokens still work
	if checks(store.IdPCheckOK) != 8 {
		t.Fatalf("after the outage: %v ok re-checks, want 8", checks(store.IdPCheckOK))
	}

	// alice is deleted at the IdP: one re-check takes her out.
	sess := &store.UISession{Hash: hashSecret("alice-ui"), UserID: u.ID, Expires: tc.clock.Now().Add(time.Hour)}
	if err := tc.store.CreateUISession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	iu, err := tc.store.IdPUserByEmail(ctx, alice.email)
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.store.DeleteIdPUser(ctx, iu.ID); err != nil {
		t.Fatal(err)
	}
	nw := node.watch(t)
	nw.next(t, "alice as a caller", hasPeer(string(laptop.res.DeviceID)))
	start := time.Now()
	tc.recheckRound(ctx, tc.clock.Now())
	streamEnds(t, w, start)
	nw.next(t, "alice gone from the node", not(hasPeer(string(laptop.res.DeviceID))))
	t.Logf("alice cut %v after the re-check round began", time.Since(start))
	if checks(store.IdPCheckGone) != 1 {
		t.Fatalf("gone re-checks %v, want 1", checks(store.IdPCheckGone))
	}
	if !tc.userByEmail(t, alice.email).Disabled || tc.userByEmail(t, bob.email).Disabled {
		t.Fatal("want alice disabled and bob not")
	}
	if _, err := tc.store.UISession(ctx, sess.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice's UI session: %v, want it ended", err)
	}
	bw.quiet(t, 200*time.Millisecond, "bob keeps his access")
	trail, _ := tc.store.AdminActions(ctx, 100)
	if !hasAction(trail, "user.idp-gone", "invalid_grant") {
		t.Error("the admin trail does not say why alice was disabled")
	}

	// She is refused at sign-in: by the IdP, which no longer knows her,
	// and by moat when set up at the IdP again (a new subject; an admin
	// decides).
	_, ls := tc.startLoginOf(t, "again")
	if page := tc.browse(t, browsertest.New(nil), ls.AuthURL, alice); page.Contains("is now connected as") {
		t.Fatal("a person deleted at the IdP signed in")
	}
	alice = tc.addPerson(t, alice.email, false, "ml-research")
	signInRefused(t, tc, alice, "ask an admin")
}

// TestIdPRecheckOff keeps no refresh token when re-checks are off.
func TestIdPRecheckOff(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	alice := tc.addPerson(t, "alice@example.com", false)
	tc.signIn(t, alice, "alice-laptop")
	if gs, err := tc.store.IdPGrants(context.Background()); err != nil || len(gs) != 0 {
		t.Fatalf("grants kept with re-checks off: %d, %v", len(gs), err)
	}
}

func (tc *testCoord) userByEmail(t *testing.T, email string) *store.User {
	t.Helper()
	users, err := tc.store.Users(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == email {
			return u
		}
	}
	t.Fatalf("no user %s", email)
	return nil
}
