package ui

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fake is a Backend with one viewer and fixed data.
type fake struct {
	viewer  *Viewer
	devices []Device
	revoked []string
}

func (f *fake) Viewer(*http.Request) *Viewer { return f.viewer }
func (f *fake) Overview(context.Context) (*Overview, error) {
	return &Overview{Devices: 2, DevicesOnline: 1, Hourly: []int{0, 3, 1}}, nil
}
func (f *fake) Devices(context.Context) ([]Device, error) { return f.devices, nil }
func (f *fake) RevokeDevice(_ context.Context, _ *Viewer, id string) error {
	f.revoked = append(f.revoked, id)
	return nil
}
func (f *fake) Nodes(context.Context) ([]Node, []EnrollKey, error) { return nil, nil, nil }
func (f *fake) CreateEnrollKey(_ context.Context, _ *Viewer, tags []string, _ bool, _ time.Duration) (*NewKey, error) {
	if len(tags) == 0 || !strings.HasPrefix(tags[0], "tag:") {
		return nil, &UserError{Msg: `tag "<b>x</b>": want tag:NAME`}
	}
	return &NewKey{ID: "ek_1", Secret: "moat_ek_s", Install: "curl … | sudo sh -s -- --key -"}, nil
}

func serve(h http.Handler, method, path string, form url.Values) *httptest.ResponseRecorder {
	var r *http.Request
	if form != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestAccess(t *testing.T) {
	admin := &Viewer{ID: "u1", Email: "a@example.com", Role: RoleAdmin, CSRF: "tok"}
	auditor := &Viewer{ID: "u2", Role: RoleAuditor, CSRF: "tok"}
	member := &Viewer{ID: "u3", Role: RoleMember, CSRF: "tok"}
	for _, tc := range []struct {
		name   string
		viewer *Viewer
		method string
		path   string
		form   url.Values
		want   int
	}{
		{"signed out", nil, "GET", "/ui/", nil, http.StatusSeeOther},
		{"overview", admin, "GET", "/ui/", nil, http.StatusOK},
		{"auditor overview", auditor, "GET", "/ui/", nil, http.StatusOK},
		{"member home", member, "GET", "/ui/", nil, http.StatusOK},
		{"member devices", member, "GET", "/ui/devices", nil, http.StatusForbidden},
		{"auditor nodes", auditor, "GET", "/ui/nodes", nil, http.StatusForbidden},
		{"no token", admin, "POST", "/ui/devices/d1/revoke", url.Values{}, http.StatusForbidden},
		{"wrong token", admin, "POST", "/ui/devices/d1/revoke", url.Values{"csrf": {"tok2"}}, http.StatusForbidden},
		{"revoke", admin, "POST", "/ui/devices/d1/revoke", url.Values{"csrf": {"tok"}}, http.StatusSeeOther},
		{"bad tag", admin, "POST", "/ui/nodes/keys", url.Values{"csrf": {"tok"}, "tags": {"gpu"}}, http.StatusBadRequest},
		{"key", admin, "POST", "/ui/nodes/keys", url.Values{"csrf": {"tok"}, "tags": {"tag:gpu"}}, http.StatusOK},
		{"revoke key", admin, "POST", "/ui/nodes/keys/ek_1/revoke", url.Values{"csrf": {"tok"}}, http.StatusSeeOther},
		{"revoke unknown key", admin, "POST", "/ui/nodes/keys/ek_2/revoke", url.Values{"csrf": {"tok"}}, http.StatusNotFound},
		{"auditor revokes key", auditor, "POST", "/ui/nodes/keys/ek_1/revoke", url.Values{"csrf": {"tok"}}, http.StatusForbidden},
		{"revoke key without token", admin, "POST", "/ui/nodes/keys/ek_1/revoke", url.Values{}, http.StatusForbidden},
		{"script", nil, "GET", "/ui/static/ui.js", nil, http.StatusOK},
		{"style", nil, "GET", "/ui/static/ui.css", nil, http.StatusOK},
		{"unknown", admin, "GET", "/ui/nope", nil, http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fake{viewer: tc.viewer}
			w := serve(New(f), tc.method, tc.path, tc.form)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d:\n%s", w.Code, tc.want, w.Body)
			}
			if got := w.Header().Get("Content-Security-Policy"); got != CSP {
				t.Errorf("CSP %q", got)
			}
			if tc.method == "POST" && tc.want == http.StatusForbidden && len(f.revoked) > 0 {
				t.Error("a refused POST revoked a device")
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	admin := &Viewer{ID: "u1", Email: `"><img src=x>`, Role: RoleAdmin, CSRF: "tok"}
	f := &fake{viewer: admin, devices: []Device{{ID: "d1", Hostname: "<script>alert(1)</script>", Owner: "<i>o</i>"}}}
	h := New(f)
	for _, w := range []*httptest.ResponseRecorder{
		serve(h, "GET", "/ui/devices", nil),
		serve(h, "GET", "/ui/devices/d1/revoke", nil),
		serve(h, "POST", "/ui/nodes/keys", url.Values{"csrf": {"tok"}, "tags": {"x"}}),
	} {
		body := w.Body.String()
		for _, raw := range []string{"<script>alert", "<img src=x>", "<i>o</i>", "<b>x</b>"} {
			if strings.Contains(body, raw) {
				t.Errorf("%q rendered raw:\n%s", raw, body)
			}
		}
		if strings.Contains(body, "<script>") && !strings.Contains(body, `<script src="/ui/static/ui.js" defer></script>`) {
			t.Errorf("inline script:\n%s", body)
		}
	}
}

func TestChart(t *testing.T) {
	c := newChart([]int{0, 4, 2, 1}, []int{0, 1, 2})
	if c.Max != 4 || c.Refused != 3 || len(c.Bars) != 4 || c.Width != 4*(barWidth+barGap) {
		t.Fatalf("chart %+v", c)
	}
	if b := c.Bars[1]; b.H+b.RefH != chartHeight-1 || b.RefY != 1 || b.Y != b.RefY+b.RefH || b.RefH < 1 {
		t.Errorf("tallest bar, one refused: %+v", b)
	}
	if b := c.Bars[2]; b.H != 0 || b.RefH == 0 || b.Denied != 2 {
		t.Errorf("a bar of refusals only: %+v", b)
	}
	if b := c.Bars[0]; b.H != 0 || b.RefH != 0 {
		t.Errorf("empty bar %+v", b)
	}
	if b := c.Bars[3]; b.H < 1 || b.RefH != 0 || b.Label != "1 requests (0 refused) this hour" {
		t.Errorf("last bar %+v", b)
	}
	if c := newChart(make([]int, 24), nil); c.Max != 0 || len(c.Bars) != 24 {
		t.Errorf("empty chart %+v", c)
	}
	if c := newChart([]int{2}, []int{5}); c.Bars[0].Denied != 2 || c.Bars[0].H != 0 {
		t.Errorf("more refusals than requests: %+v", c.Bars[0])
	}
}

// A POST is read only as the pages send it: URL-encoded and bounded.
func TestFormLimits(t *testing.T) {
	f := &fake{viewer: &Viewer{ID: "u1", Role: RoleAdmin, CSRF: "tok"}}
	h := New(f)
	post := func(ctype string, body io.Reader) int {
		r := httptest.NewRequest("POST", "/ui/devices/d1/revoke", body)
		r.Header.Set("Content-Type", ctype)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if c := post("multipart/form-data; boundary=x", strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\ntok\r\n--x--\r\n")); c != http.StatusUnsupportedMediaType {
		t.Errorf("multipart form: %d, want 415", c)
	}
	big := io.MultiReader(strings.NewReader("csrf=tok&pad="), io.LimitReader(zeros{}, maxFormBytes))
	if c := post("application/x-www-form-urlencoded", big); c != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized form: %d, want 413", c)
	}
	if len(f.revoked) != 0 {
		t.Errorf("revoked %v from refused forms", f.revoked)
	}
	if c := post("application/x-www-form-urlencoded", strings.NewReader("csrf=tok")); c != http.StatusSeeOther || len(f.revoked) != 1 {
		t.Errorf("a proper form: %d, revoked %v", c, f.revoked)
	}
}

// zeros reads as an endless run of '0'.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
