package coordinator

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/control"
	"github.com/moatmesh/moat/mesh/wire"
)

// TestMemberVersion: a member too old for the coordinator is refused with
// both sides' software named; a member's software is recorded from its
// own requests and shown to admins, and a request without the protocol
// header cannot change it.
func TestMemberVersion(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	post := func(proto, ua string) (int, wire.Error) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, tc.URL+"/api/v1/login", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/json")
		if proto != "" {
			req.Header.Set(wire.ProtocolHeader, proto)
		}
		req.Header.Set("User-Agent", ua)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e wire.Error
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e
	}
	code, e := post("0", "moat/v0.0.1")
	if code != http.StatusUpgradeRequired || e.Code != wire.CodeVersionTooOld {
		t.Fatalf("protocol 0: %d %+v, want 426 %s", code, e, wire.CodeVersionTooOld)
	}
	for _, want := range []string{"moat/v0.0.1", "protocol 0", "moat-coordinator dev", "protocol 1 or later", "upgrade the member"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("refusal %q does not say %q", e.Message, want)
		}
	}
	if code, _ := post("one", "moat/v0.0.1"); code != http.StatusBadRequest {
		t.Errorf("protocol \"one\": %d, want 400", code)
	}
	// Without the header (members from before it): not refused for it.
	if code, e := post("", "moat/v0.0.1"); code == http.StatusUpgradeRequired {
		t.Errorf("no protocol header refused as too old: %+v", e)
	}

	p := tc.addPerson(t, "alice@example.com", false)
	d := tc.signIn(t, p, "laptop")
	w := d.watch(t) // the stream is the member's own request
	w.next(t, "first netmap", func(*wire.NetMap) bool { return true })
	tok := tc.adminToken(t)
	softwareOf := func() string {
		t.Helper()
		_, body := tc.admin(t, tok, http.MethodGet, "/devices", "")
		var list struct {
			Devices []deviceInfo `json:"devices"`
		}
		if err := json.Unmarshal([]byte(body), &list); err != nil {
			t.Fatalf("devices: %v: %s", err, body)
		}
		for _, dev := range list.Devices {
			if dev.ID == string(d.res.DeviceID) {
				return dev.Software
			}
		}
		t.Fatalf("device %s not listed: %s", d.res.DeviceID, body)
		return ""
	}
	if got := softwareOf(); got != control.Software() {
		t.Fatalf("software = %q, want what the member sent, %q", got, control.Software())
	}
	// Another caller with the credential but no protocol header (audit
	// shipping's HTTP client, say) does not overwrite it.
	req, _ := http.NewRequest(http.MethodPost, tc.URL+"/api/v1/endpoints", strings.NewReader(`{"endpoints":[]}`))
	req.Header.Set("Authorization", "Bearer "+string(d.res.Credential))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Go-http-client/1.1")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	if got := softwareOf(); got != control.Software() {
		t.Errorf("software = %q after a request without the protocol header", got)
	}
}
