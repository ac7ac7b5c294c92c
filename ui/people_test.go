package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// The fake's PeopleBackend: fixed data with hostile strings in it, and
// every action recorded in f.revoked as "verb:id", so that a test can
// tell that a refused request changed nothing.

const hostile = "<script>alert(1)</script>"

var fakePeople = []Person{
	{ID: "u1", Email: "a@example.com", Role: RoleAdmin, TOTP: true, Devices: 1},
	{ID: "u2", Email: "m" + hostile + "@example.com", Name: "<i>n</i>", Groups: []string{"<b>g</b>"}, Role: RoleMember, IdPMFA: true},
	{ID: "u3", Email: "gone@example.com", Role: RoleMember, Disabled: true},
}

func (f *fake) People(context.Context) ([]Person, error) { return fakePeople, nil }

func (f *fake) Factors(_ context.Context, id string) ([]Factor, error) {
	if id != "u1" {
		return nil, nil
	}
	return []Factor{{Kind: "authenticator app", Method: "otp", Where: FactorCoordinator},
		{Kind: "passkey", Method: "hwk", Name: "Yubi" + hostile, Where: FactorCoordinator}}, nil
}

func (f *fake) ResetMFA(_ context.Context, _ *Viewer, id string) error {
	if !slices.ContainsFunc(fakePeople, func(p Person) bool { return p.ID == id }) {
		return ErrNotFound
	}
	f.revoked = append(f.revoked, "reset-mfa:"+id)
	return nil
}

func (f *fake) SetDisabled(_ context.Context, actor *Viewer, id string, disabled bool) error {
	if !slices.ContainsFunc(fakePeople, func(p Person) bool { return p.ID == id }) {
		return ErrNotFound
	}
	if disabled && id == actor.ID {
		return &UserError{Msg: "You cannot disable yourself."}
	}
	f.revoked = append(f.revoked, map[bool]string{true: "disable:", false: "enable:"}[disabled]+id)
	return nil
}

func (f *fake) ExpireDevice(_ context.Context, _ *Viewer, id string) error {
	return f.act("expire", id, func(Device) bool { return true })
}

func (f *fake) RevokeOwnDevice(_ context.Context, actor *Viewer, id string) error {
	return f.act("own-revoke", id, func(d Device) bool { return d.OwnerID == actor.ID })
}

// act records verb on device id if it exists and mine accepts it.
func (f *fake) act(verb, id string, mine func(Device) bool) error {
	if !slices.ContainsFunc(f.devices, func(d Device) bool { return d.ID == id && mine(d) }) {
		return ErrNotFound
	}
	f.revoked = append(f.revoked, verb+":"+id)
	return nil
}

func (f *fake) RevokeEnrollKey(_ context.Context, _ *Viewer, id string) error {
	if id != "ek_1" {
		return ErrNotFound
	}
	f.revoked = append(f.revoked, "key-revoke:"+id)
	return nil
}
func (f *fake) RevokeNode(_ context.Context, _ *Viewer, id string) error {
	if id != "n1" {
		return ErrNotFound
	}
	f.revoked = append(f.revoked, "node-revoke:"+id)
	return nil
}

func (f *fake) NodeStatus(context.Context) (map[string]NodeStatus, error) {
	return map[string]NodeStatus{"n1": {
		Integrity: []ModelCheck{{Model: "llama", Reason: "weights " + hostile + " do not match"}},
		Lockdown:  &Lockdown{Active: true, Scope: "host", Drops: []Drop{{Category: "egress", Packets: 7}}},
	}}, nil
}

func (f *fake) Models(context.Context) ([]Model, error) {
	return []Model{
		{Name: "llama", Declared: true, SHA256: "9f2c", Grants: []Grant{{ID: "grants[0]", Src: []string{"idp:" + hostile}, Terms: []string{"MFA within 12h"}}},
			Nodes: []ModelNode{{ID: "n1", Hostname: "gpu" + hostile, Allowed: true, Stopped: "weights do not match"}}},
		{Name: "rogue", Nodes: []ModelNode{{ID: "n2", Hostname: "gpu-2", Online: true}}},
	}, nil
}

func (f *fake) Access(_ context.Context, userID string) ([]ModelUse, error) {
	if userID == "u3" {
		return nil, nil
	}
	return []ModelUse{{Model: "llama", Nodes: 1, Grants: []Grant{{ID: "grants[0]", Terms: []string{"MFA within 12h", "120 requests/min"}}}}}, nil
}

func (f *fake) Connection() Connection {
	return Connection{URL: "https://moat.example.com", Install: "curl -fsSL https://moat.example.com/install.sh | sudo sh -s -- --key -"}
}

var (
	asAdmin   = &Viewer{ID: "u1", Email: "a@example.com", Role: RoleAdmin, CSRF: "tok"}
	asAuditor = &Viewer{ID: "u4", Email: "audit@example.com", Role: RoleAuditor, CSRF: "tok"}
	asMember  = &Viewer{ID: "u2", Email: "m@example.com", Role: RoleMember, CSRF: "tok"}
)

func fakeDevices() []Device {
	return []Device{
		{ID: "d1", Hostname: "laptop" + hostile, OwnerID: "u1", Owner: "a@example.com", Kind: "user", Addresses: []string{"100.64.0.1"}},
		{ID: "d2", Hostname: "phone", OwnerID: "u2", Owner: "m@example.com", Kind: "wgconfig"},
	}
}

func TestPeopleAccess(t *testing.T) {
	tok := url.Values{"csrf": {"tok"}}
	for _, tc := range []struct {
		name   string
		viewer *Viewer
		method string
		path   string
		form   url.Values
		want   int
		did    string // the action recorded, if any
	}{
		{"signed out", nil, "GET", "/ui/people", nil, http.StatusSeeOther, ""},
		{"people", asAdmin, "GET", "/ui/people", nil, http.StatusOK, ""},
		{"person", asAdmin, "GET", "/ui/people/u2", nil, http.StatusOK, ""},
		{"no person", asAdmin, "GET", "/ui/people/nope", nil, http.StatusNotFound, ""},
		{"models", asAdmin, "GET", "/ui/models", nil, http.StatusOK, ""},
		{"member people", asMember, "GET", "/ui/people", nil, http.StatusForbidden, ""},
		{"member person", asMember, "GET", "/ui/people/u2", nil, http.StatusForbidden, ""},
		{"member models", asMember, "GET", "/ui/models", nil, http.StatusForbidden, ""},
		{"member expire page", asMember, "GET", "/ui/devices/d2/expire", nil, http.StatusForbidden, ""},
		{"auditor people", asAuditor, "GET", "/ui/people", nil, http.StatusForbidden, ""},
		{"auditor models", asAuditor, "GET", "/ui/models", nil, http.StatusForbidden, ""},
		{"auditor disable", asAuditor, "POST", "/ui/people/u2/disable", tok, http.StatusForbidden, ""},
		{"auditor expire", asAuditor, "POST", "/ui/devices/d1/expire", tok, http.StatusForbidden, ""},
		{"auditor node revoke", asAuditor, "POST", "/ui/nodes/n1/revoke", tok, http.StatusForbidden, ""},
		{"member disable", asMember, "POST", "/ui/people/u1/disable", tok, http.StatusForbidden, ""},
		{"member node revoke", asMember, "POST", "/ui/nodes/n1/revoke", tok, http.StatusForbidden, ""},
		{"disable without token", asAdmin, "POST", "/ui/people/u2/disable", url.Values{}, http.StatusForbidden, ""},
		{"disable forged token", asAdmin, "POST", "/ui/people/u2/disable", url.Values{"csrf": {"tok2"}}, http.StatusForbidden, ""},
		{"expire without token", asAdmin, "POST", "/ui/devices/d1/expire", url.Values{}, http.StatusForbidden, ""},
		{"node revoke without token", asAdmin, "POST", "/ui/nodes/n1/revoke", url.Values{}, http.StatusForbidden, ""},
		{"own revoke without token", asMember, "POST", "/ui/my/devices/d2/revoke", url.Values{}, http.StatusForbidden, ""},
		{"disable", asAdmin, "POST", "/ui/people/u2/disable", tok, http.StatusSeeOther, "disable:u2"},
		{"enable", asAdmin, "POST", "/ui/people/u3/enable", tok, http.StatusSeeOther, "enable:u3"},
		{"disable self", asAdmin, "POST", "/ui/people/u1/disable", tok, http.StatusBadRequest, ""},
		{"disable nobody", asAdmin, "POST", "/ui/people/nope/disable", tok, http.StatusNotFound, ""},
		{"expire", asAdmin, "POST", "/ui/devices/d1/expire", tok, http.StatusSeeOther, "expire:d1"},
		{"node revoke", asAdmin, "POST", "/ui/nodes/n1/revoke", tok, http.StatusSeeOther, "node-revoke:n1"},
		{"member home", asMember, "GET", "/ui/", nil, http.StatusOK, ""},
		{"my access", asAuditor, "GET", "/ui/my", nil, http.StatusOK, ""},
		{"own revoke", asMember, "POST", "/ui/my/devices/d2/revoke", tok, http.StatusSeeOther, "own-revoke:d2"},
		{"revoke another's device", asMember, "POST", "/ui/my/devices/d1/revoke", tok, http.StatusNotFound, ""},
		{"confirm another's device", asMember, "GET", "/ui/my/devices/d1/revoke", nil, http.StatusNotFound, ""},
		{"GET acts not", asAdmin, "GET", "/ui/people/u2/disable", nil, http.StatusOK, ""},
		{"reset MFA", asAdmin, "POST", "/ui/people/u1/reset-mfa", tok, http.StatusSeeOther, "reset-mfa:u1"},
		{"reset MFA without token", asAdmin, "POST", "/ui/people/u1/reset-mfa", url.Values{}, http.StatusForbidden, ""},
		{"reset MFA forged token", asAdmin, "POST", "/ui/people/u1/reset-mfa", url.Values{"csrf": {"tok2"}}, http.StatusForbidden, ""},
		{"reset MFA of nobody", asAdmin, "POST", "/ui/people/nope/reset-mfa", tok, http.StatusNotFound, ""},
		{"auditor reset MFA", asAuditor, "POST", "/ui/people/u1/reset-mfa", tok, http.StatusForbidden, ""},
		{"member reset MFA", asMember, "POST", "/ui/people/u1/reset-mfa", tok, http.StatusForbidden, ""},
		{"member reset MFA page", asMember, "GET", "/ui/people/u1/reset-mfa", nil, http.StatusForbidden, ""},
		{"GET resets not", asAdmin, "GET", "/ui/people/u1/reset-mfa", nil, http.StatusOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{viewer: tc.viewer, devices: fakeDevices()}
			w := serve(New(f), tc.method, tc.path, tc.form)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d:\n%s", w.Code, tc.want, w.Body)
			}
			var want []string
			if tc.did != "" {
				want = []string{tc.did}
			}
			if !slices.Equal(f.revoked, want) {
				t.Errorf("actions %q, want %q", f.revoked, want)
			}
		})
	}
}

// Every destructive action asks first: the GET shows what will happen
// and one form that posts the action with the session's CSRF token.
func TestConfirmations(t *testing.T) {
	for _, tc := range []struct {
		viewer     *Viewer
		path, want string
	}{
		{asAdmin, "/ui/people/u2/disable", "cannot sign in again"},
		{asAdmin, "/ui/people/u3/enable", "can sign in again"},
		{asAdmin, "/ui/people/u1/reset-mfa", "enroll a new one"},
		{asAdmin, "/ui/devices/d1/expire", "signing in again"},
		{asAdmin, "/ui/devices/d1/revoke", "cannot be undone"},
		{asMember, "/ui/my/devices/d2/revoke", "cannot be undone"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			f := &fake{viewer: tc.viewer, devices: fakeDevices()}
			w := serve(New(f), "GET", tc.path, nil)
			body := w.Body.String()
			if w.Code != http.StatusOK || !strings.Contains(body, tc.want) {
				t.Fatalf("status %d, want 200 with %q:\n%s", w.Code, tc.want, body)
			}
			form := `<form method="post" action="` + tc.path + `"><input type="hidden" name="csrf" value="tok">`
			if !strings.Contains(body, form) || !strings.Contains(body, `<button type="submit" id="confirm"`) {
				t.Errorf("no confirming form posting to %s:\n%s", tc.path, body)
			}
			if len(f.revoked) > 0 {
				t.Errorf("a confirmation page acted: %q", f.revoked)
			}
		})
	}
	// A node that does not exist (or is already revoked) has no page.
	if w := serve(New(&fake{viewer: asAdmin}), "GET", "/ui/nodes/n9/revoke", nil); w.Code != http.StatusNotFound {
		t.Errorf("unknown node: status %d", w.Code)
	}
}

// Names, hostnames, groups and policy text come from outside: every page
// shows them as text.
func TestPeopleEscaping(t *testing.T) {
	h := func(v *Viewer) http.Handler { return New(&fake{viewer: v, devices: fakeDevices()}) }
	for _, tc := range []struct {
		viewer *Viewer
		path   string
	}{
		{asAdmin, "/ui/people"}, {asAdmin, "/ui/people/u2"}, {asAdmin, "/ui/people/u2/disable"}, {asAdmin, "/ui/models"},
		{asAdmin, "/ui/nodes"}, {asAdmin, "/ui/devices"}, {asAdmin, "/ui/devices/d1/expire"}, {asAdmin, "/ui/people/u1"},
		{asAdmin, "/ui/people/u1/reset-mfa"},
		{asMember, "/ui/"},
	} {
		w := serve(h(tc.viewer), "GET", tc.path, nil)
		body := w.Body.String()
		if w.Code != http.StatusOK {
			t.Errorf("%s: status %d", tc.path, w.Code)
		}
		for _, raw := range []string{hostile, "<i>n</i>", "<b>g</b>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s: %q rendered raw", tc.path, raw)
			}
		}
		if strings.Count(body, "<script") != 1 {
			t.Errorf("%s: a script besides ui.js:\n%s", tc.path, body)
		}
	}
	if body := serve(h(asAdmin), "GET", "/ui/people", nil).Body.String(); !strings.Contains(body, "m&lt;script&gt;alert(1)&lt;/script&gt;@example.com") {
		t.Errorf("the hostile email is not shown as text:\n%s", body)
	}
}

func TestPeoplePages(t *testing.T) {
	get := func(v *Viewer, path string) string {
		t.Helper()
		w := serve(New(&fake{viewer: v, devices: fakeDevices()}), "GET", path, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d:\n%s", path, w.Code, w.Body)
		}
		return w.Body.String()
	}
	for _, tc := range []struct {
		viewer *Viewer
		path   string
		want   []string
		not    []string
	}{
		{asAdmin, "/ui/people", []string{"TOTP enrolled", "IdP MFA", `href="/ui/people/u2/disable"`, `href="/ui/people/u3/enable"`, "disabled"},
			[]string{`href="/ui/people/u1/disable"`}}, // no disabling oneself
		{asAdmin, "/ui/people/u1", []string{"You cannot disable yourself", "laptop", `href="/ui/devices/d1/expire"`, "MFA within 12h",
			"authenticator app", "<code>hwk</code> <small>device-bound</small>", `href="/ui/people/u1/reset-mfa"`}, []string{"phone"}},
		{asAdmin, "/ui/people/u2", []string{"No second factor", "their identity provider proves it"}, []string{`href="/ui/people/u2/reset-mfa"`}},
		{asAdmin, "/ui/devices", []string{"Expire now…", "WireGuard config", "moat client", `href="/ui/people/u2"`}, nil},
		{asAdmin, "/ui/models", []string{"9f2c", "not in the policy", "not allowed to serve it", "stopped", "MFA within 12h", "offline"}, nil},
		{asAdmin, "/ui/nodes", []string{"No nodes yet", `id="install-template"`, "https://moat.example.com/install.sh"}, nil},
		{asAdmin, "/ui/", []string{`id="no-nodes"`, "https://moat.example.com/install.sh", `href="/ui/my"`}, nil},
		{asMember, "/ui/", []string{"My access", "phone", `href="/ui/my/devices/d2/revoke"`, "120 requests/min",
			`id="cmd-login"`, "moat login --coordinator https://moat.example.com", `data-copy="cmd-curl"`,
			"http://127.0.0.1:4000/v1/chat/completions", `&#34;model&#34;:&#34;llama&#34;`, "moat wg-config --coordinator https://moat.example.com"},
			[]string{"laptop", `href="/ui/people"`}},
	} {
		body := get(tc.viewer, tc.path)
		for _, s := range tc.want {
			if !strings.Contains(body, s) {
				t.Errorf("%s lacks %q:\n%s", tc.path, s, body)
			}
		}
		for _, s := range tc.not {
			if strings.Contains(body, s) {
				t.Errorf("%s shows %q:\n%s", tc.path, s, body)
			}
		}
	}
}

func TestNodeHealth(t *testing.T) {
	f := &fake{viewer: asAdmin}
	body := renderPeoplePage(t, "nodes.html", page{Title: "Nodes", Viewer: asAdmin, Data: nodesData{
		Nodes:  []Node{{ID: "n1", Hostname: "gpu-1", Online: true}, {ID: "n2", Hostname: "gpu-2", Revoked: true}},
		Status: mustGet(f.NodeStatus(context.Background())),
	}})
	for _, s := range []string{"1 stopped", "weights &lt;script&gt;", "active", "host", "egress: 7 packets dropped",
		`href="/ui/nodes/n1/revoke"`, "not reported"} {
		if !strings.Contains(body, s) {
			t.Errorf("nodes page lacks %q:\n%s", s, body)
		}
	}
	if strings.Contains(body, `href="/ui/nodes/n2/revoke"`) {
		t.Error("a revoked node offers revocation")
	}
}

func renderPeoplePage(t *testing.T, name string, p page) string {
	t.Helper()
	var b strings.Builder
	if err := pages[name].ExecuteTemplate(&b, "layout", p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func mustGet[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestConnectSteps(t *testing.T) {
	steps := connectSteps(Connection{URL: "https://moat.example.com/"}, []ModelUse{{Model: "it's"}})
	if len(steps) != 4 || steps[0].Text != "moat login --coordinator https://moat.example.com" {
		t.Fatalf("steps %+v", steps)
	}
	if want := `'{"messages":[{"content":"Hello","role":"user"}],"model":"it'\''s"}'`; !strings.HasSuffix(steps[2].Text, want) {
		t.Errorf("curl %s, want the body quoted for the shell: %s", steps[2].Text, want)
	}
	steps = connectSteps(Connection{URL: "https://x", Fingerprint: "ab12"}, nil)
	if !strings.Contains(steps[2].Text, `"model":"MODEL"`) {
		t.Errorf("no model: %s", steps[2].Text)
	}
	for _, i := range []int{0, 3} {
		if !strings.Contains(steps[i].Text, "--coordinator https://x --coordinator-fingerprint ab12") {
			t.Errorf("self-signed coordinator, no fingerprint: %s", steps[i].Text)
		}
	}
}

// TestNodeLockdownStates: a node started without a lockdown says so
// loudly, and one whose lockdown is not in force shows why and its
// events.
func TestNodeLockdownStates(t *testing.T) {
	lost := time.Date(2026, 12, 8, 10, 0, 0, 0, time.UTC)
	body := renderPeoplePage(t, "nodes.html", page{Title: "Nodes", Viewer: asAdmin, Data: nodesData{
		Nodes: []Node{{ID: "n1", Hostname: "gpu-1"}, {ID: "n2", Hostname: "gpu-2"}},
		Status: map[string]NodeStatus{
			"n1": {Lockdown: &Lockdown{Mode: "off"}},
			"n2": {Lockdown: &Lockdown{Mode: "host", Active: true, Scope: "host", Problem: "table inet moat is missing",
				Events: []LockdownEvent{{Time: lost, Kind: "lost", Reason: "flushed " + hostile}, {Time: lost, Kind: "failed", Reason: "no netlink"}}}},
		},
	}})
	for _, s := range []string{"OFF", "started without a lockdown", "not in force", "table inet moat is missing",
		"lost", "flushed &lt;script&gt;", "failed", "no netlink"} {
		if !strings.Contains(body, s) {
			t.Errorf("nodes page lacks %q:\n%s", s, body)
		}
	}
}
