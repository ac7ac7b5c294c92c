package coordinator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestSCIMTokensAPI: an admin makes, lists and revokes SCIM tokens over
// the admin API; the token works at /scim/v2 until it is revoked.
func TestSCIMTokensAPI(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	for _, bad := range []string{`{}`, `{"name":"entra","expiry":"soon"}`} {
		if status, _ := tc.admin(t, tok, "POST", "/scim-tokens", bad); status != http.StatusBadRequest {
			t.Errorf("POST %s: %d, want 400", bad, status)
		}
	}
	status, body := tc.admin(t, tok, "POST", "/scim-tokens", `{"name":"entra","expiry":"30d"}`)
	var made scimTokenInfo
	if status != http.StatusCreated || json.Unmarshal([]byte(body), &made) != nil || !strings.HasPrefix(made.Token, "moat_scim_") || made.ID == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	c := &scimClient{tc.URL, made.Token}
	c.must(t, http.StatusOK, "GET", "/Users", nil)
	if _, list := tc.admin(t, tok, "GET", "/scim-tokens", ""); !strings.Contains(list, made.ID) || strings.Contains(list, made.Token) {
		t.Fatalf("list: %s", list)
	}
	if status, _ := tc.admin(t, tok, "DELETE", "/scim-tokens/"+made.ID, ""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d", status)
	}
	c.must(t, http.StatusUnauthorized, "GET", "/Users", nil)
	if status, _ := tc.admin(t, tok, "DELETE", "/scim-tokens/"+made.ID, ""); status != http.StatusNotFound {
		t.Fatalf("revoke again: %d, want 404", status)
	}
	trail, _ := tc.store.AdminActions(t.Context(), 100)
	for _, action := range []string{"scim_token.create", "scim_token.revoke"} {
		if !hasAction(trail, action, "") {
			t.Errorf("the admin trail has no %s", action)
		}
	}
}
