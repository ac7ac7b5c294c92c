package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/moatmesh/moat/coordinator/mfa"
	"github.com/moatmesh/moat/internal/browsertest"
	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/key"
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

// The coordinator's TOTP check counts every attempt before it checks the
// code, in the store: 30 parallel wrong codes check at most 5 (the
// lockout) and store as many failures as they checked; and one good code
// sent 10 times in parallel signs in once. (Each request comes from
// another address behind a trusted proxy, so that the per-address rate
// limits do not hide the race.)
func TestCoordinatorTOTPParallelAttempts(t *testing.T) {
	tc, page, _ := totpSignIn(t)
	st := submitAll(t, page, 30, "000000")
	users, _ := tc.store.Users(t.Context())
	if st[http.StatusUnauthorized] > 5 || st[http.StatusUnauthorized]+st[http.StatusTooManyRequests] != 30 || users[0].MFAFailures != st[http.StatusUnauthorized] {
		t.Fatalf("30 parallel wrong codes: answers %v, %d failures stored; want at most 5 checked, each stored", st, users[0].MFAFailures)
	}
	tc, page, secret := totpSignIn(t)
	good, _ := mfa.Code(secret, tc.clock.Now())
	if st := submitAll(t, page, 10, good); st[http.StatusOK] != 1 {
		t.Fatalf("one code sent 10 times in parallel: answers %v, want exactly one sign-in", st)
	}
}

// manyClients is a browser transport that sends each request as another
// client behind a trusted proxy (X-Forwarded-For).
type manyClients struct{ n atomic.Uint32 }

func (m *manyClients) RoundTrip(r *http.Request) (*http.Response, error) {
	n := m.n.Add(1)
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)}).String())
	return http.DefaultTransport.RoundTrip(r)
}

// totpSignIn starts a coordinator whose IdP's amr proves no MFA, enrolls
// alice's coordinator TOTP with a first sign-in, and returns the code
// form of a second sign-in, and the TOTP secret.
func totpSignIn(t *testing.T) (*testCoord, *browsertest.Page, string) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) {
		c.OIDC.MFAMethods = []string{"hwk"}
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	alice := tc.addPerson(t, "alice@example.com", false)
	login := func() *browsertest.Page {
		priv, _ := key.NewPrivate()
		start, err := tc.client(t, "").StartLogin(t.Context(), wire.LoginRequest{Key: priv.Public(), Hostname: "h"})
		if err != nil {
			t.Fatal(err)
		}
		return tc.browse(t, browsertest.New(new(manyClients)), start.AuthURL, alice)
	}
	page := login()
	secret := page.Text("code")
	code, _ := mfa.Code(secret, tc.clock.Now())
	if page, _ = page.Submit(map[string]string{"code": code}); !page.Contains("is now connected") {
		t.Fatalf("enrollment:\n%s", page.Body)
	}
	tc.clock.Advance(mfa.Period)
	return tc, login(), secret
}

// submitAll submits page's form n times in parallel with code and counts
// the answers by status.
func submitAll(t *testing.T, page *browsertest.Page, n int, code string) map[int]int {
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			p, err := page.Submit(map[string]string{"code": code})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			statuses[p.Status]++
		})
	}
	wg.Wait()
	return statuses
}
