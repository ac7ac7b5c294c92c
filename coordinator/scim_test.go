package coordinator

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/scim"
	"github.com/moatmesh/moat/internal/browsertest"
)

// scimClient speaks to /scim/v2 as an IdP's provisioning agent does.
type scimClient struct {
	url, token string
}

const (
	scimUserSchema  = "urn:ietf:params:scim:schemas:core:2.0:User"
	scimGroupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"
	scimPatchSchema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
)

func (c *scimClient) do(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, c.url+"/scim/v2"+path, r)
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	b, _ := io.ReadAll(resp.Body)
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, out
}

// must sends a request and fails unless the status is want; it returns
// the answer.
func (c *scimClient) must(t *testing.T, want int, method, path string, body any) map[string]any {
	t.Helper()
	status, out := c.do(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// patch sends a PatchOp request with ops.
func (c *scimClient) patch(t *testing.T, path string, ops ...map[string]any) {
	t.Helper()
	status, out := c.do(t, "PATCH", path, map[string]any{"schemas": []string{scimPatchSchema}, "Operations": ops})
	if status != http.StatusOK && status != http.StatusNoContent {
		t.Fatalf("PATCH %s: %d %v", path, status, out)
	}
}

// entraUser is a user as Entra ID creates it.
func entraUser(email string) map[string]any {
	return map[string]any{
		"schemas":    []string{scimUserSchema, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"},
		"externalId": "0d1f-" + email, "userName": email, "active": true, "displayName": "Alice Example",
		"emails": []any{map[string]any{"primary": true, "type": "work", "value": email}},
		"name":   map[string]any{"formatted": "Alice Example", "familyName": "Example", "givenName": "Alice"},
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": map[string]any{"department": "Research"},
	}
}

func op(kind, path string, value any) map[string]any {
	m := map[string]any{"op": kind}
	if path != "" {
		m["path"] = path
	}
	if value != nil {
		m["value"] = value
	}
	return m
}

const scimPolicy = `{
  "groups": { "group:ml": ["idp:ml-research"] },
  "tagOwners": { "tag:gpu": [] },
  "models": { "llama": { "servedBy": ["tag:gpu"] } },
  "grants": [ { "src": ["group:ml"], "models": ["llama"], "mfa": "12h" } ],
}`

func TestSCIMRefusesBadTokens(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	good, err := scim.CreateToken(context.Background(), tc.store, "entra", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"none": "", "unknown": "moat_scim_" + strings.Repeat("A", 43),
		"admin API token": tc.adminToken(t), "truncated": good[:len(good)-1],
	} {
		c := &scimClient{tc.URL, tok}
		if status, _ := c.do(t, "GET", "/Users", nil); status != http.StatusUnauthorized {
			t.Errorf("%s token: %d, want 401", name, status)
		}
		if status, _ := c.do(t, "POST", "/Users", entraUser("mallory@example.com")); status != http.StatusUnauthorized {
			t.Errorf("%s token creating a user: %d, want 401", name, status)
		}
	}
	(&scimClient{tc.URL, good}).must(t, http.StatusOK, "GET", "/Users", nil)
	if us, _ := tc.store.SCIMUsers(context.Background()); len(us) != 0 {
		t.Fatalf("refused requests created %d users", len(us))
	}
}

// Provisioning as Entra ID and Okta do it: a group membership from SCIM
// grants a model through idp:ml-research; deactivating ends the device's
// stream within a second and refuses sign-in; reactivating lets the
// person back; deleting refuses them again.
func TestSCIMProvisioning(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, scimPolicy)
	stok, err := scim.CreateToken(context.Background(), tc.store, "entra", "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	c := &scimClient{tc.URL, stok}

	// Entra ID looks the person up first, then creates them and the group.
	if got := c.must(t, 200, "GET", `/Users?filter=userName+eq+%22alice%40example.com%22`, nil); got["totalResults"] != 0.0 {
		t.Fatalf("filter before create: %v", got)
	}
	aliceID := c.must(t, 201, "POST", "/Users", entraUser("alice@example.com"))["id"].(string)
	c.must(t, 409, "POST", "/Users", entraUser("Alice@Example.com"))
	got := c.must(t, 200, "GET", `/Users?filter=userName+eq+%22alice%40example.com%22`, nil)
	if res, _ := got["Resources"].([]any); got["totalResults"] != 1.0 || len(res) != 1 || res[0].(map[string]any)["id"] != aliceID {
		t.Fatalf("filter after create: %v", got)
	}
	groupID := c.must(t, 201, "POST", "/Groups", map[string]any{
		"schemas": []string{scimGroupSchema}, "displayName": "ml-research", "externalId": "g-1", "members": []any{},
	})["id"].(string)

	alice := tc.addPerson(t, "alice@example.com", false)
	node, nres := tc.enrollNode(t, tok, "llama")
	laptop := tc.signIn(t, alice, "alice-laptop")
	w := laptop.watch(t)
	w.next(t, "a netmap without the node", not(hasPeer(string(nres.DeviceID))))

	c.patch(t, "/Groups/"+groupID, op("Add", "members", []any{map[string]any{"value": aliceID}})) // Entra ID
	w.next(t, "the node, granted through idp:ml-research", hasPeer(string(nres.DeviceID)))
	c.patch(t, "/Groups/"+groupID, op("remove", `members[value eq "`+aliceID+`"]`, nil)) // Okta
	w.next(t, "the node gone with the group membership", not(hasPeer(string(nres.DeviceID))))
	c.patch(t, "/Groups/"+groupID, op("add", "members", []any{map[string]any{"value": aliceID, "display": "alice"}}))
	w.next(t, "the node again", hasPeer(string(nres.DeviceID)))
	nw := node.watch(t)
	nw.next(t, "alice as a caller", hasPeer(string(laptop.res.DeviceID)))

	// Entra ID deactivates with a string boolean.
	start := time.Now()
	c.patch(t, "/Users/"+aliceID, op("Replace", "active", "False"))
	streamEnds(t, w, start)
	nw.next(t, "alice gone from the node", not(hasPeer(string(laptop.res.DeviceID))))
	signInRefused(t, tc, alice, "deactivated or removed")
	if got := c.must(t, 200, "GET", "/Users/"+aliceID, nil); got["active"] != false {
		t.Fatalf("deactivated user reads back as %v", got)
	}

	// Okta reactivates with a path-less replace; alice signs in again
	// and keeps her group.
	c.patch(t, "/Users/"+aliceID, op("replace", "", map[string]any{"active": true}))
	phone := tc.signIn(t, alice, "alice-phone")
	pw := phone.watch(t)
	pw.next(t, "the node for the reactivated person", hasPeer(string(nres.DeviceID)))

	// Okta deactivates the same way; then the user is deleted.
	start = time.Now()
	c.patch(t, "/Users/"+aliceID, op("replace", "", map[string]any{"active": false}))
	streamEnds(t, pw, start)
	c.must(t, 204, "DELETE", "/Users/"+aliceID, nil)
	c.must(t, 404, "GET", "/Users/"+aliceID, nil)
	signInRefused(t, tc, alice, "deactivated or removed")
	if g := c.must(t, 200, "GET", "/Groups/"+groupID, nil); len(g["members"].([]any)) != 0 {
		t.Fatalf("a deleted user is still a member: %v", g)
	}
	trail, _ := tc.store.AdminActions(t.Context(), 100)
	for _, want := range []string{"active=false deleted=false", "active=true deleted=false", "deleted=true"} {
		if !hasAction(trail, actionSCIMUser, want) {
			t.Errorf("the admin trail has no %s %q", actionSCIMUser, want)
		}
	}
}

// streamEnds waits for the watcher's stream to end, within a second of
// start.
func streamEnds(t *testing.T, w *watcher, start time.Time) {
	t.Helper()
	for {
		select {
		case <-w.ch:
		case err := <-w.errc:
			if d := time.Since(start); d > time.Second {
				t.Fatalf("the stream ended %v after deactivation, want within 1s (err %v)", d, err)
			}
			t.Logf("stream ended %v after deactivation: %v", time.Since(start), err)
			return
		case <-time.After(5 * time.Second):
			t.Fatal("the stream did not end after deactivation")
		}
	}
}

// signInRefused signs p in and expects a refusal that says want.
func signInRefused(t *testing.T, tc *testCoord, p *person, want string) {
	t.Helper()
	_, start := tc.startLoginOf(t, "again")
	page := tc.browse(t, browsertest.New(nil), start.AuthURL, p)
	if page.Status != http.StatusForbidden || !page.Contains(want) {
		t.Fatalf("sign-in: %d, want 403 saying %q:\n%s", page.Status, want, page.Body)
	}
}
