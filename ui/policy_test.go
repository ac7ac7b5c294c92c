package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The fake's policy side: the built-in policy, no history. Tests that
// need more use policyFake.
func (f *fake) Policy(context.Context) (*PolicyVersion, error) {
	return &PolicyVersion{Text: "{}\n", Author: "moat"}, nil
}
func (f *fake) PolicyVersion(context.Context, int64) (*PolicyVersion, error) { return nil, ErrNotFound }
func (f *fake) PolicyHistory(context.Context, int64, int) ([]PolicyVersion, error) {
	return nil, nil
}
func (f *fake) CheckPolicy(_ context.Context, text string) (*PolicyCheck, error) {
	return fakeCheck(text), nil
}
func (f *fake) SavePolicy(context.Context, *Viewer, string, string, int64) (*PolicyCheck, int64, error) {
	return nil, 0, &UserError{Msg: "not here"}
}
func (f *fake) RollbackPolicy(context.Context, *Viewer, int64) (*PolicyCheck, int64, error) {
	return nil, 0, &UserError{Msg: "not here"}
}

// fakeCheck fails a text containing "SYNTAX" to parse, and the assertion
// of a text containing "FAIL".
func fakeCheck(text string) *PolicyCheck {
	if strings.Contains(text, "SYNTAX") {
		return &PolicyCheck{Problems: []PolicyProblem{{Line: 2, Col: 3, Msg: "syntax error: <b>here</b>"}}}
	}
	c := &PolicyCheck{Assertions: []PolicyAssertion{
		{Line: 4, Col: 7, Who: "alice@example.com", Expect: "accept", Target: "model:llama", Passed: true},
	}}
	if strings.Contains(text, "FAIL") {
		c.Assertions = append(c.Assertions, PolicyAssertion{Line: 5, Col: 9, Who: "bob@example.com", Expect: "deny",
			Target: "model:llama", Msg: "test failed: bob@example.com should be denied model:llama but is allowed by grants[0] (line 3)"})
	}
	return c
}

// policyFake keeps saved versions.
type policyFake struct {
	fake
	versions   []PolicyVersion // oldest first
	raceOnSave bool            // the next save loses a race with another admin's
	rolled     []int64
	messages   []string
}

func (p *policyFake) Policy(ctx context.Context) (*PolicyVersion, error) {
	if len(p.versions) == 0 {
		return p.fake.Policy(ctx)
	}
	v := p.versions[len(p.versions)-1]
	return &v, nil
}
func (p *policyFake) PolicyVersion(_ context.Context, id int64) (*PolicyVersion, error) {
	for _, v := range p.versions {
		if v.ID == id {
			return &v, nil
		}
	}
	return nil, ErrNotFound
}
func (p *policyFake) PolicyHistory(_ context.Context, before int64, n int) ([]PolicyVersion, error) {
	var out []PolicyVersion
	for i := len(p.versions) - 1; i >= 0 && len(out) < n; i-- {
		if before == 0 || p.versions[i].ID < before {
			out = append(out, p.versions[i])
		}
	}
	return out, nil
}
func (p *policyFake) SavePolicy(_ context.Context, actor *Viewer, text, message string, base int64) (*PolicyCheck, int64, error) {
	if c := fakeCheck(text); !c.OK() {
		return c, 0, nil
	}
	if p.raceOnSave { // another admin saves between the editor's check and this save
		p.raceOnSave = false
		p.versions = append(p.versions, PolicyVersion{ID: int64(len(p.versions) + 1), Text: "{} // theirs", Author: "other@example.com"})
	}
	if base >= 0 && base != int64(len(p.versions)) {
		return nil, 0, ErrConflict
	}
	id := int64(len(p.versions) + 1)
	p.versions = append(p.versions, PolicyVersion{ID: id, Text: text, Author: actor.Email, Message: message,
		Created: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)})
	p.messages = append(p.messages, message)
	return &PolicyCheck{}, id, nil
}
func (p *policyFake) RollbackPolicy(ctx context.Context, actor *Viewer, id int64) (*PolicyCheck, int64, error) {
	p.rolled = append(p.rolled, id)
	v, err := p.PolicyVersion(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	return p.SavePolicy(ctx, actor, v.Text, "rollback", -1)
}

var (
	testAdmin   = &Viewer{ID: "u1", Email: "admin@example.com", Role: RoleAdmin, CSRF: "tok"}
	testAuditor = &Viewer{ID: "u2", Email: "auditor@example.com", Role: RoleAuditor, CSRF: "tok"}
	testMember  = &Viewer{ID: "u3", Email: "member@example.com", Role: RoleMember, CSRF: "tok"}
)

func saveForm(text, message, base string) url.Values {
	return url.Values{"csrf": {"tok"}, "text": {text}, "message": {message}, "base": {base}}
}

func TestPolicyRoles(t *testing.T) {
	for _, tc := range []struct {
		name   string
		viewer *Viewer
		method string
		path   string
		form   url.Values
		want   int
	}{
		{"auditor sees", testAuditor, "GET", "/ui/policy", nil, http.StatusOK},
		{"auditor validates", testAuditor, "POST", "/ui/policy/validate", saveForm("{}", "", "0"), http.StatusOK},
		{"auditor cannot save", testAuditor, "POST", "/ui/policy", saveForm("{}", "why", "0"), http.StatusForbidden},
		{"auditor cannot roll back", testAuditor, "POST", "/ui/policy/versions/1/rollback", url.Values{"csrf": {"tok"}}, http.StatusForbidden},
		{"auditor history", testAuditor, "GET", "/ui/policy/history", nil, http.StatusOK},
		{"member", testMember, "GET", "/ui/policy", nil, http.StatusForbidden},
		{"no token", testAdmin, "POST", "/ui/policy", url.Values{"text": {"{}"}, "message": {"m"}, "base": {"0"}}, http.StatusForbidden},
		{"wrong token", testAdmin, "POST", "/ui/policy", url.Values{"csrf": {"x"}, "text": {"{}"}, "message": {"m"}, "base": {"0"}}, http.StatusForbidden},
		{"validate without token", testAuditor, "POST", "/ui/policy/validate", url.Values{"text": {"{}"}}, http.StatusForbidden},
		{"admin saves", testAdmin, "POST", "/ui/policy", saveForm("{}", "why", "0"), http.StatusSeeOther},
		{"unknown version", testAdmin, "GET", "/ui/policy/versions/9", nil, http.StatusNotFound},
		{"bad version", testAdmin, "GET", "/ui/policy/versions/x", nil, http.StatusNotFound},
		{"policy.js", nil, "GET", "/ui/static/policy.js", nil, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &policyFake{fake: fake{viewer: tc.viewer}}
			w := serve(New(f), tc.method, tc.path, tc.form)
			if w.Code != tc.want {
				t.Errorf("status %d, want %d:\n%s", w.Code, tc.want, w.Body)
			}
			if saved := len(f.versions) > 0; saved != (tc.want == http.StatusSeeOther) {
				t.Errorf("saved %v with status %d", saved, w.Code)
			}
		})
	}
	w := serve(New(&policyFake{fake: fake{viewer: testAuditor}}), "GET", "/ui/policy", nil)
	if strings.Contains(w.Body.String(), `id="policy-save"`) || !strings.Contains(w.Body.String(), `id="policy-validate"`) {
		t.Errorf("an auditor's editor offers Save or lacks Validate:\n%s", w.Body)
	}
}

func TestPolicySaveRefusedThenFixed(t *testing.T) {
	f := &policyFake{fake: fake{viewer: testAdmin}}
	h := New(f)
	text := "{\n  // <script>alert(1)</script>\n  FAIL\n}\n"
	w := serve(h, "POST", "/ui/policy", saveForm(text, "tighten", "0"))
	body := w.Body.String()
	if w.Code != http.StatusUnprocessableEntity || len(f.versions) != 0 {
		t.Fatalf("a failing policy: status %d, saved %d:\n%s", w.Code, len(f.versions), body)
	}
	for _, want := range []string{
		`id="policy-results"`,
		`class="assertion failed" data-result="fail"`,
		"bob@example.com should be denied model:llama but is allowed by grants[0]",
		`data-line="5" data-col="9"`,
		"Not saved: 1 assertion of the policy&#39;s tests failed",
		"// &lt;script&gt;alert(1)&lt;/script&gt;\n  FAIL", // the text is kept, escaped
		`value="tighten"`,
		`<span class="add">&#43;  FAIL</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("policy text rendered raw")
	}

	fixed := strings.Replace(text, "FAIL", "ok", 1)
	w = serve(h, "POST", "/ui/policy", saveForm(fixed, "tighten", "0"))
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/ui/policy?saved=1" || len(f.versions) != 1 || f.versions[0].Text != fixed {
		t.Fatalf("the fixed policy: status %d to %q, versions %+v", w.Code, w.Header().Get("Location"), f.versions)
	}
	if w := serve(h, "GET", "/ui/policy?saved=1", nil); !strings.Contains(w.Body.String(), `id="policy-saved"`) {
		t.Errorf("no saved notice:\n%s", w.Body)
	}
}

func TestPolicySaveRefusals(t *testing.T) {
	f := &policyFake{fake: fake{viewer: testAdmin}}
	h := New(f)
	for _, tc := range []struct {
		name       string
		form       url.Values
		want       int
		wantInBody string
	}{
		{"no message", saveForm("{ \"x\": 1 }", " ", "0"), http.StatusBadRequest, "write a message"},
		{"syntax", saveForm("{\nSYNTAX", "m", "0"), http.StatusUnprocessableEntity, `line 2:3</a> <span class="msg">syntax error: &lt;b&gt;here&lt;/b&gt;`},
		{"stale", saveForm("{}", "m", "7"), http.StatusConflict, "changed since you opened it"},
		{"too large", saveForm(strings.Repeat("x", maxPolicyText+1), "m", "0"), http.StatusRequestEntityTooLarge, "larger than 1 MiB"},
		{"too many lines", saveForm(strings.Repeat("\n", maxPolicyLines), "m", "0"), http.StatusRequestEntityTooLarge, "20,000 lines"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, "POST", "/ui/policy", tc.form)
			if w.Code != tc.want || !strings.Contains(w.Body.String(), tc.wantInBody) {
				t.Errorf("status %d, want %d with %q:\n%.3000s", w.Code, tc.want, tc.wantInBody, w.Body)
			}
			if len(f.versions) != 0 {
				t.Error("saved")
			}
		})
	}
}

func TestPolicyHistoryAndRollback(t *testing.T) {
	f := &policyFake{fake: fake{viewer: testAdmin}}
	h := New(f)
	if w := serve(h, "GET", "/ui/policy/history", nil); !strings.Contains(w.Body.String(), "No policy saved yet") {
		t.Errorf("no empty state:\n%s", w.Body)
	}
	for i, text := range []string{"{\n  a\n}\n", "{\n  b\n}\n", "{\n  <c>\n}\n"} {
		if w := serve(h, "POST", "/ui/policy", saveForm(text, "change <"+string(rune('1'+i))+">", string(rune('0'+i)))); w.Code != http.StatusSeeOther {
			t.Fatalf("save %d: %d\n%s", i, w.Code, w.Body)
		}
	}
	body := serve(h, "GET", "/ui/policy/history", nil).Body.String()
	for _, want := range []string{"Version 3", "in force", "admin@example.com", "change &lt;3&gt;",
		`<span class="del">-  b</span>`, `<span class="add">&#43;  &lt;c&gt;</span>`, "First version"} {
		if !strings.Contains(body, want) {
			t.Errorf("history lacks %q:\n%s", want, body)
		}
	}
	w := serve(h, "GET", "/ui/policy/versions/1", nil)
	if !strings.Contains(w.Body.String(), `href="/ui/policy/versions/1/rollback"`) || !strings.Contains(w.Body.String(), `<li id="L2"><code>  a</code></li>`) {
		t.Errorf("version page:\n%s", w.Body)
	}
	w = serve(h, "GET", "/ui/policy/versions/1/rollback", nil)
	if !strings.Contains(w.Body.String(), `id="policy-rollback"`) || len(f.rolled) != 0 {
		t.Fatalf("confirmation page:\n%s", w.Body)
	}
	w = serve(h, "POST", "/ui/policy/versions/1/rollback", url.Values{"csrf": {"tok"}})
	if w.Code != http.StatusSeeOther || len(f.rolled) != 1 || f.rolled[0] != 1 || len(f.versions) != 4 || f.versions[3].Text != f.versions[0].Text {
		t.Fatalf("rollback: status %d, rolled %v, %d versions", w.Code, f.rolled, len(f.versions))
	}
}

func TestPolicyHistoryPages(t *testing.T) {
	f := &policyFake{fake: fake{viewer: testAuditor}}
	for i := 1; i <= historyPage+5; i++ {
		f.versions = append(f.versions, PolicyVersion{ID: int64(i), Text: strings.Repeat("x\n", i), Message: "m"})
	}
	h := New(f)
	body := serve(h, "GET", "/ui/policy/history", nil).Body.String()
	if n := strings.Count(body, `class="version"`); n != historyPage || !strings.Contains(body, `href="/ui/policy/history?before=6"`) {
		t.Fatalf("first page: %d versions:\n%s", n, body)
	}
	body = serve(h, "GET", "/ui/policy/history?before=6", nil).Body.String()
	if n := strings.Count(body, `class="version"`); n != 5 || strings.Contains(body, "?before=") || !strings.Contains(body, "First version") {
		t.Fatalf("last page: %d versions:\n%s", n, body)
	}
}

func TestDiffLines(t *testing.T) {
	for _, tc := range []struct {
		name, old, new string
		want           string // the hunks' lines, one per line
		added, removed int
	}{
		{"same", "a\nb\n", "a\nb\n", "", 0, 0},
		{"add", "a\nb\n", "a\nx\nb\n", "@@ -1,2 +1,3 @@\n a\n+x\n b\n", 1, 0},
		{"remove", "a\nb\nc\n", "a\nc\n", "@@ -1,3 +1,2 @@\n a\n-b\n c\n", 0, 1},
		{"change", "a\nb\nc\n", "a\nB\nc\n", "@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n", 1, 1},
		{"from nothing", "", "a\n", "@@ -0,0 +1,1 @@\n+a\n", 1, 0},
		{"context", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n", "1\n2\n3\n4\n5\nsix\n7\n8\n9\n10\n",
			"@@ -3,7 +3,7 @@\n 3\n 4\n 5\n-6\n+six\n 7\n 8\n 9\n", 1, 1},
		{"two hunks", "a\n1\n2\n3\n4\n5\n6\n7\n8\nb\n", "A\n1\n2\n3\n4\n5\n6\n7\n8\nB\n",
			"@@ -1,4 +1,4 @@\n-a\n+A\n 1\n 2\n 3\n@@ -7,4 +7,4 @@\n 6\n 7\n 8\n-b\n+B\n", 2, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := diffLines(tc.old, tc.new)
			var sb strings.Builder
			for _, h := range d.Hunks {
				sb.WriteString(h.Header + "\n")
				for _, l := range h.Lines {
					sb.WriteString(l.Op + l.Text + "\n")
				}
			}
			if sb.String() != tc.want || d.Added != tc.added || d.Removed != tc.removed {
				t.Errorf("got +%d -%d\n%s\nwant +%d -%d\n%s", d.Added, d.Removed, sb.String(), tc.added, tc.removed, tc.want)
			}
		})
	}
	// Too different for the table: one replacement, still correct.
	old := strings.Repeat("a\n", 3000)
	new := strings.Repeat("b\n", 3000)
	if d := diffLines(old, new); d.Added != 3000 || d.Removed != 3000 {
		t.Errorf("large diff +%d -%d", d.Added, d.Removed)
	}
}

// A save that loses the race with another admin's, after the editor's own
// check passed, is refused as stale with the text kept.
func TestPolicySaveLosesRace(t *testing.T) {
	f := &policyFake{fake: fake{viewer: testAdmin}, raceOnSave: true}
	w := serve(New(f), "POST", "/ui/policy", saveForm(`{ "mine": 1 }`, "mine", "0"))
	body := w.Body.String()
	if w.Code != http.StatusConflict || !strings.Contains(body, "changed since you opened it (now version 1 by other@example.com)") ||
		!strings.Contains(body, "&#34;mine&#34;: 1") || !strings.Contains(body, `name="base" value="1"`) {
		t.Fatalf("status %d:\n%.3000s", w.Code, body)
	}
	if len(f.versions) != 1 || f.versions[0].Author != "other@example.com" {
		t.Fatalf("versions %+v", f.versions)
	}
}
