package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// Without a usable enrollment key, enrolling a live node's public key is
// refused as a bad key (401), and the answer names no device: the owner
// of a key is revealed only to holders of a usable key.
func TestEnrollChecksKeyBeforeRevealingOwner(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	tc.savePolicy(t, tok, tagsOnly)
	node, res := tc.enrollNode(t, tok, "llama")
	for _, bad := range []string{"moat_ek_unknown", ""} {
		_, err := tc.client(t, "").Enroll(context.Background(), wire.EnrollRequest{AuthKey: wire.Secret(bad), Key: node.priv.Public(), Hostname: "probe"})
		var ce *control.Error
		if !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized || ce.Code != "bad_enroll_key" {
			t.Fatalf("enroll of a live key with enrollment key %q: %v, want 401 bad_enroll_key", bad, err)
		}
		if strings.Contains(err.Error(), string(res.DeviceID)) {
			t.Fatalf("the refusal names the node: %v", err)
		}
	}
}

// Admin API tokens expire by default, can be listed and revoked, and
// both their making and their revocation are in the admin trail.
func TestAPITokensListRevokeAndTrail(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	other, err := CreateAPIToken(t.Context(), tc.store, "ci", "cli", 0)
	if err != nil {
		t.Fatal(err)
	}
	var list tokenList
	status, body := tc.admin(t, tok, "GET", "/tokens", "")
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list.Tokens) != 2 {
		t.Fatalf("list tokens: %d %s", status, body)
	}
	var ciID string
	for _, ti := range list.Tokens {
		if ti.Expiry == nil || ti.Expiry.Sub(ti.Created) != DefaultAPITokenExpiry {
			t.Errorf("token %s expiry %v, want %s after creation", ti.Name, ti.Expiry, DefaultAPITokenExpiry)
		}
		if ti.Name == "ci" {
			ciID = ti.ID
		}
	}
	if status, _ := tc.admin(t, other, "GET", "/users", ""); status != http.StatusOK {
		t.Fatalf("the ci token before revocation: %d", status)
	}
	if status, body := tc.admin(t, tok, "DELETE", "/tokens/"+ciID, ""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if status, _ := tc.admin(t, other, "GET", "/users", ""); status != http.StatusUnauthorized {
		t.Fatalf("a revoked token: %d, want 401", status)
	}
	_, body = tc.admin(t, tok, "GET", "/actions", "")
	for _, want := range []string{`"token.create"`, `"token.revoke"`, ciID} {
		if !strings.Contains(body, want) {
			t.Errorf("admin trail lacks %s: %s", want, body)
		}
	}
}

// /metrics asks for an admin API token; MetricsHandler (--metrics-listen)
// does not.
func TestMetricsNeedToken(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	if status, _, _ := get(t, tc.URL+"/metrics"); status != http.StatusUnauthorized {
		t.Fatalf("/metrics without a token: %d, want 401", status)
	}
	req, _ := http.NewRequest("GET", tc.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+tc.adminToken(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "moat_coordinator_netmap_streams") {
		t.Fatalf("/metrics with a token: %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	tc.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "moat_coordinator_netmap_streams") {
		t.Fatalf("MetricsHandler: %d", rec.Code)
	}
}

// Served over TLS, every answer carries HSTS; over plain HTTP (behind a
// TLS proxy, which sets its own) none does.
func TestHSTSOverTLS(t *testing.T) {
	tc := startCoordTLS(t, t.TempDir(), newClock())
	resp, err := (&http.Client{Transport: tc.transport}).Get(tc.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(got, "max-age=") {
		t.Fatalf("HSTS over TLS: %q", got)
	}
	plain := startCoord(t, t.TempDir(), newClock())
	if _, h, _ := get(t, plain.URL+"/healthz"); h.Get("Strict-Transport-Security") != "" {
		t.Fatal("HSTS over plain HTTP")
	}
}
