package coordinator

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// TestLease: nodes lease a person's daily quota from one counter, never
// more than the policy's tokensPerDay together, get back what they
// return, and only nodes may ask.
func TestLease(t *testing.T) {
	tc, _, n1, n2 := leaseCoord(t, `"rpm": 60, "tokensPerDay": 1000`)
	day := tc.clock.Now().UTC().Unix() / 86400
	lease := func(cred wire.Secret, req wire.LeaseRequest) (int, wire.LeaseResponse) {
		t.Helper()
		return tc.lease(t, cred, req)
	}
	ask := wire.LeaseRequest{Who: "user:u1", Grant: "grants[0]", Day: day, Want: 600}
	if code, r := lease(n1.Credential, ask); code != 200 || r.Granted != 600 || r.Limit != 1000 || !r.Expires.After(tc.clock.Now()) {
		t.Fatalf("first lease: %d %+v", code, r)
	}
	if code, r := lease(n2.Credential, ask); code != 200 || r.Granted != 400 || r.Used != 1000 {
		t.Fatalf("second node's lease: %d %+v", code, r)
	}
	ret := ask
	ret.Want, ret.Return = 0, 250
	if code, r := lease(n1.Credential, ret); code != 200 || r.Granted != 0 || r.Used != 750 {
		t.Fatalf("return: %d %+v", code, r)
	}
	if code, r := lease(n2.Credential, ask); code != 200 || r.Granted != 250 {
		t.Fatalf("lease after a return: %d %+v", code, r)
	}
	bad := ask
	bad.Grant = "grants[7]"
	if code, _ := lease(n1.Credential, bad); code != 404 {
		t.Fatalf("unknown grant: %d", code)
	}
	bad = ask
	bad.Want = -1
	if code, _ := lease(n1.Credential, bad); code != 400 {
		t.Fatalf("negative want: %d", code)
	}
	alice := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, alice, "laptop")
	if code, _ := lease(d.res.Credential, ask); code != 403 {
		t.Fatalf("a person's device leased quota: %d", code)
	}
}

// TestLeaseMinute: rpm and tpm leases count per minute of the
// coordinator's clock across nodes, never beyond the limit; a return
// counts only within its minute, and a new minute starts from zero.
func TestLeaseMinute(t *testing.T) {
	tc, tok, n1, n2 := leaseCoord(t, `"rpm": 10, "tpm": 1000`)
	tc.clock.Advance(time.Duration(60-tc.clock.Now().Unix()%60) * time.Second) // a minute's start
	window := tc.clock.Now().Unix() / 60
	ask := wire.LeaseRequest{Who: "user:u1", Grant: "grants[0]", Kind: wire.LeaseRPM, Want: 6}
	code, r := tc.lease(t, n1.Credential, ask)
	if code != 200 || r.Granted != 6 || r.Limit != 10 || r.Window != window || !r.Expires.Equal(time.Unix((window+1)*60, 0)) || !r.Now.Equal(tc.clock.Now()) {
		t.Fatalf("first rpm lease: %d %+v", code, r)
	}
	if _, r = tc.lease(t, n2.Credential, ask); r.Granted != 4 || r.Used != 10 {
		t.Fatalf("second node's rpm lease: %+v", r)
	}
	back := ask
	back.Want, back.Return, back.Window = 0, 3, window
	if _, r = tc.lease(t, n1.Credential, back); r.Used != 7 {
		t.Fatalf("return within the minute: %+v", r)
	}
	tpm := ask
	tpm.Kind, tpm.Want = wire.LeaseTPM, 700
	if _, r = tc.lease(t, n1.Credential, tpm); r.Granted != 700 || r.Limit != 1000 {
		t.Fatalf("tpm lease: %+v", r)
	}
	tc.clock.Advance(time.Minute)
	back.Return = 3 // of the minute that ended: not taken
	if _, r = tc.lease(t, n2.Credential, back); r.Used != 0 || r.Window != window+1 {
		t.Fatalf("return of an ended minute: %+v", r)
	}
	if _, r = tc.lease(t, n2.Credential, ask); r.Granted != 6 || r.Used != 6 {
		t.Fatalf("a new minute: %+v", r)
	}
	tc.savePolicy(t, tok, testPolicy) // no tpm
	if code, r = tc.lease(t, n1.Credential, tpm); code != 200 || r.Limit != 0 || r.Granted != 0 {
		t.Fatalf("tpm lease without tpm: %d %+v", code, r)
	}
}

// leaseCoord starts a coordinator whose policy's grant has limits, with
// two nodes serving llama, and returns it, an admin token and the nodes.
func leaseCoord(t *testing.T, limits string) (*testCoord, string, *wire.EnrollResult, *wire.EnrollResult) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, strings.Replace(testPolicy, `"rpm": 60`, limits, 1))
	_, n1 := tc.enrollNode(t, tok, "llama")
	_, n2 := tc.enrollNodeAds(t, tok, "gpu-2", []wire.ModelAd{{Name: "llama"}})
	return tc, tok, n1, n2
}

// lease asks for a lease with a node's credential.
func (tc *testCoord) lease(t *testing.T, cred wire.Secret, req wire.LeaseRequest) (int, wire.LeaseResponse) {
	t.Helper()
	r, _ := http.NewRequest("POST", tc.URL+"/api/v1/node/lease", strings.NewReader(jsonBody(req)))
	r.Header.Set("Authorization", "Bearer "+string(cred))
	r.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.LeaseResponse
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &out)
	return resp.StatusCode, out
}
