package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PolicyBackend is what the policy editor needs. Saving and rolling back
// go through the same path as the admin API: the policy is parsed,
// validated and tested first, a failing one is not saved, and every save
// is recorded in the admin trail with its author.
type PolicyBackend interface {
	// Policy returns the policy in force: the newest saved version, or
	// the built-in policy with ID 0 when none was saved.
	Policy(ctx context.Context) (*PolicyVersion, error)
	// PolicyVersion returns saved version id (ErrNotFound when none).
	PolicyVersion(ctx context.Context, id int64) (*PolicyVersion, error)
	// PolicyHistory returns up to n saved versions older than version
	// before (0: from the newest), newest first.
	PolicyHistory(ctx context.Context, before int64, n int) ([]PolicyVersion, error)
	// CheckPolicy parses, validates and tests text without saving it.
	CheckPolicy(ctx context.Context, text string) (*PolicyCheck, error)
	// SavePolicy checks text as CheckPolicy does and, when it passes,
	// saves it as the newest version on behalf of actor with message and
	// returns the new version's ID. When the check fails nothing is saved
	// and the ID is 0. The edit started from version base: when another
	// version was saved since, nothing is saved and the error wraps
	// ErrConflict.
	SavePolicy(ctx context.Context, actor *Viewer, text, message string, base int64) (*PolicyCheck, int64, error)
	// RollbackPolicy saves version id again as the newest, as SavePolicy
	// does.
	RollbackPolicy(ctx context.Context, actor *Viewer, id int64) (*PolicyCheck, int64, error)
}

// PolicyVersion is one saved policy.
type PolicyVersion struct {
	ID      int64 // 0: the built-in policy, in force until one is saved
	Text    string
	Author  string // who saved it, for display (an email where known)
	Message string
	Created time.Time
}

// PolicyCheck is the outcome of parsing, validating and testing a policy.
type PolicyCheck struct {
	// Problems are what keeps the policy from parsing or validating, in
	// file order. When there are any, the tests did not run.
	Problems []PolicyProblem
	// Assertions are every assertion of the policy's tests, in file order.
	Assertions []PolicyAssertion
}

// OK reports whether the policy parsed, validated and passed its tests.
func (c *PolicyCheck) OK() bool {
	return len(c.Problems) == 0 && c.Failed() == 0
}

// Failed counts the failing assertions.
func (c *PolicyCheck) Failed() int {
	n := 0
	for _, a := range c.Assertions {
		if !a.Passed {
			n++
		}
	}
	return n
}

// PolicyProblem is one error in a policy, at Line:Col (0: no particular
// place).
type PolicyProblem struct {
	Line, Col int
	Msg       string
}

// PolicyAssertion is one assertion of a policy test: Who should (Expect
// "accept") or should not (Expect "deny") reach Target.
type PolicyAssertion struct {
	Line, Col int
	Who       string
	Expect    string // "accept" or "deny"
	Target    string
	Passed    bool
	Msg       string // why it failed
}

// policyParts holds the templates the policy pages share: "check" (a
// PolicyCheck) and "diff" (a lineDiff).
//
// maxPolicyText bounds the policy a form may carry (the admin API's
// limit); maxPolicyLines bounds its lines, which the editor's gutter and
// the diff render one by one.
const (
	maxPolicyText  = 1 << 20
	maxPolicyLines = 20000
)

// historyPage is how many versions the history shows at a time.
const historyPage = 20

// policyRoutes adds the policy editor and its history.
func (h *handler) policyRoutes() {
	h.mux.HandleFunc("GET /ui/policy", h.signedIn(readers, h.policyEditor))
	h.mux.HandleFunc("POST /ui/policy/validate", h.signedIn(readers, h.validatePolicy))
	h.mux.HandleFunc("POST /ui/policy", h.signedIn(admins, h.savePolicy))
	h.mux.HandleFunc("GET /ui/policy/history", h.signedIn(readers, h.policyHistory))
	h.mux.HandleFunc("GET /ui/policy/versions/{id}", h.signedIn(readers, h.policyVersion))
	h.mux.HandleFunc("GET /ui/policy/versions/{id}/rollback", h.signedIn(admins, h.confirmRollback))
	h.mux.HandleFunc("POST /ui/policy/versions/{id}/rollback", h.signedIn(admins, h.rollback))
}

// MaxPolicyMessage is the longest message, in bytes, a policy version is
// saved with from the editor.
const MaxPolicyMessage = 500

// PolicyMessageProblem says what is wrong with message, the reason given
// for a policy change, or "" when nothing is. It is the one statement of
// that rule: the editor checks it before saving, its backend again.
func PolicyMessageProblem(message string) string {
	if strings.TrimSpace(message) == "" || len(message) > MaxPolicyMessage {
		return fmt.Sprintf("write a message of at most %d characters that says why you change the policy.", MaxPolicyMessage)
	}
	return ""
}

// editorData is what the policy editor shows.
type editorData struct {
	Current *PolicyVersion // the policy in force
	Text    string         // in the editor
	Base    int64          // the version the edit started from
	Message string
	Lines   []int        // line numbers for the gutter
	Check   *PolicyCheck // nil until checked
	Diff    *lineDiff    // against the policy in force; nil until checked
	Saved   int64        // the version just saved
	CanSave bool
}

// MaxMessage is MaxPolicyMessage, for the template.
func (*editorData) MaxMessage() int { return MaxPolicyMessage }

// policyEditor shows the policy in force in the editor: GET /ui/policy.
func (h *handler) policyEditor(w http.ResponseWriter, r *http.Request, v *Viewer) {
	cur, err := h.b.Policy(r.Context())
	if err != nil {
		h.failErr(w, v, "load the policy", err)
		return
	}
	saved, _ := strconv.ParseInt(r.URL.Query().Get("saved"), 10, 64)
	h.renderEditor(w, v, http.StatusOK, "", &editorData{Current: cur, Text: cur.Text, Base: cur.ID, Saved: saved})
}

// validatePolicy checks the edited text and shows the outcome and the
// changes, keeping the text: POST /ui/policy/validate.
func (h *handler) validatePolicy(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d, ok := h.editForm(w, r, v)
	if !ok {
		return
	}
	chk, err := h.b.CheckPolicy(r.Context(), d.Text)
	if h.editFailed(w, v, d, err) {
		return
	}
	d.Check = chk
	h.renderEditor(w, v, http.StatusOK, "", d)
}

// savePolicy checks and saves the edited text: POST /ui/policy. A policy
// that fails its checks, a missing message or an edit of a policy that
// changed meanwhile is refused with the text kept in the editor.
func (h *handler) savePolicy(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d, ok := h.editForm(w, r, v)
	if !ok {
		return
	}
	switch msg := PolicyMessageProblem(d.Message); {
	case msg != "":
		h.renderEditor(w, v, http.StatusBadRequest, "Not saved: "+msg+" Your text is kept below.", d)
		return
	case d.Base != d.Current.ID:
		h.policyChanged(w, r, v, d)
		return
	}
	chk, id, err := h.b.SavePolicy(r.Context(), v, d.Text, d.Message, d.Base)
	if errors.Is(err, ErrConflict) {
		h.policyChanged(w, r, v, d)
		return
	}
	if h.editFailed(w, v, d, err) {
		return
	}
	if chk != nil && !chk.OK() {
		d.Check = chk
		h.renderEditor(w, v, http.StatusUnprocessableEntity, "Not saved: "+checkSummary(chk)+" Your text is kept below.", d)
		return
	}
	http.Redirect(w, r, "/ui/policy?saved="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}

// editForm reads the editor's form with the policy in force and the diff
// against it. It answers the request itself when it returns false.
func (h *handler) editForm(w http.ResponseWriter, r *http.Request, v *Viewer) (*editorData, bool) {
	cur, err := h.b.Policy(r.Context())
	if err != nil {
		h.failErr(w, v, "load the policy", err)
		return nil, false
	}
	text := strings.ReplaceAll(r.PostFormValue("text"), "\r\n", "\n") // browsers send CRLF
	base, _ := strconv.ParseInt(r.PostFormValue("base"), 10, 64)
	d := &editorData{Current: cur, Text: text, Base: base, Message: r.PostFormValue("message")}
	if len(text) > maxPolicyText || strings.Count(text, "\n") >= maxPolicyLines {
		d.Text = cur.Text
		h.renderEditor(w, v, http.StatusRequestEntityTooLarge, "The policy is larger than 1 MiB or 20,000 lines; it was not checked.", d)
		return nil, false
	}
	d.Diff = diffLines(cur.Text, text)
	return d, true
}

// policyChanged refuses a save whose edit started from a version that is
// no longer the newest, keeping the text; the editor's base moves to the
// newest, so saving again is a deliberate overwrite.
func (h *handler) policyChanged(w http.ResponseWriter, r *http.Request, v *Viewer, d *editorData) {
	if cur, err := h.b.Policy(r.Context()); err == nil {
		d.Current = cur
		d.Diff = diffLines(cur.Text, d.Text)
	}
	msg := "Not saved: the policy changed since you opened it (now version " + strconv.FormatInt(d.Current.ID, 10) + " by " + d.Current.Author +
		"). Your text is kept below; check the changes against the policy in force and save again."
	d.Base = d.Current.ID
	h.renderEditor(w, v, http.StatusConflict, msg, d)
}

// editFailed shows a backend error above the editor, keeping the text,
// and reports whether there was one.
func (h *handler) editFailed(w http.ResponseWriter, v *Viewer, d *editorData, err error) bool {
	var ue *UserError
	switch {
	case err == nil:
		return false
	case errors.As(err, &ue):
		h.renderEditor(w, v, http.StatusBadRequest, ue.Msg, d)
	default:
		h.renderEditor(w, v, http.StatusInternalServerError, "The coordinator failed to check the policy. Your text is kept below; try again, and tell an admin if it persists.", d)
	}
	return true
}

// checkSummary says in one sentence why a policy was refused.
func checkSummary(c *PolicyCheck) string {
	if n := len(c.Problems); n > 0 {
		return plural(n, "problem", "problems") + " keep the policy from parsing; see the list below."
	}
	return plural(c.Failed(), "assertion", "assertions") + " of the policy's tests failed; see the tests below."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func (h *handler) renderEditor(w http.ResponseWriter, v *Viewer, status int, msg string, d *editorData) {
	d.CanSave = v.Role == RoleAdmin
	d.Lines = lineNumbers(d.Text)
	h.render(w, status, "policy.html", page{Title: "Policy", Nav: "policy", Viewer: v, Error: msg, Data: d})
}

// lineNumbers is 1..the number of lines of text (at least 1).
func lineNumbers(text string) []int {
	n := max(strings.Count(text, "\n")+1, 1)
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

// versionEntry is a version in the history with its changes.
type versionEntry struct {
	PolicyVersion
	Diff    *lineDiff // against the version before it
	First   bool      // no version before it
	Current bool
}

// policyHistory lists saved versions with their changes, newest first:
// GET /ui/policy/history?before=ID.
func (h *handler) policyHistory(w http.ResponseWriter, r *http.Request, v *Viewer) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	// One more than a page: the oldest shown needs its predecessor, which
	// also says that there are older versions.
	vs, err := h.b.PolicyHistory(r.Context(), max(before, 0), historyPage+1)
	if err != nil {
		h.failErr(w, v, "load the policy history", err)
		return
	}
	cur, err := h.b.Policy(r.Context())
	if err != nil {
		h.failErr(w, v, "load the policy", err)
		return
	}
	var out []versionEntry
	for i := 0; i < len(vs) && i < historyPage; i++ {
		e := versionEntry{PolicyVersion: vs[i], Current: vs[i].ID == cur.ID}
		if i+1 < len(vs) {
			e.Diff = diffLines(vs[i+1].Text, vs[i].Text)
		} else {
			e.Diff, e.First = diffLines("", vs[i].Text), true
		}
		out = append(out, e)
	}
	var older int64
	if len(vs) > historyPage {
		older = out[len(out)-1].ID
	}
	h.render(w, http.StatusOK, "policy_history.html", page{Title: "Policy history", Nav: "policy", Viewer: v,
		Data: map[string]any{"Versions": out, "Older": older, "Paged": before > 0}})
}

// versionData is what a version's page shows.
type versionData struct {
	Version  *PolicyVersion
	Current  *PolicyVersion
	Lines    []numbered
	Diff     *lineDiff // from the policy in force to this version
	Check    *PolicyCheck
	CanSave  bool
	Rollback bool // the confirmation page
}

// loadVersion loads the version named by the path with the policy in
// force. It answers the request itself when it returns nil.
func (h *handler) loadVersion(w http.ResponseWriter, r *http.Request, v *Viewer) *versionData {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		h.failErr(w, v, "policy version", ErrNotFound)
		return nil
	}
	pv, err := h.b.PolicyVersion(r.Context(), id)
	if err != nil {
		h.failErr(w, v, "policy version", err)
		return nil
	}
	cur, err := h.b.Policy(r.Context())
	if err != nil {
		h.failErr(w, v, "load the policy", err)
		return nil
	}
	return &versionData{Version: pv, Current: cur, Lines: numberLines(pv.Text), Diff: diffLines(cur.Text, pv.Text),
		CanSave: v.Role == RoleAdmin}
}

// numbered is a line of text with its number.
type numbered struct {
	N    int
	Text string
}

func numberLines(text string) []numbered {
	var out []numbered
	for i, l := range splitLines(text) {
		out = append(out, numbered{i + 1, l})
	}
	return out
}

// policyVersion shows one saved version: GET /ui/policy/versions/{id}.
func (h *handler) policyVersion(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if d := h.loadVersion(w, r, v); d != nil {
		h.render(w, http.StatusOK, "policy_version.html", page{Title: "Policy version " + strconv.FormatInt(d.Version.ID, 10),
			Nav: "policy", Viewer: v, Data: d})
	}
}

// confirmRollback asks before rolling back:
// GET /ui/policy/versions/{id}/rollback.
func (h *handler) confirmRollback(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if d := h.loadVersion(w, r, v); d != nil {
		d.Rollback = true
		h.render(w, http.StatusOK, "policy_version.html", page{Title: "Roll back the policy", Nav: "policy", Viewer: v, Data: d})
	}
}

// rollback saves a version again as the newest:
// POST /ui/policy/versions/{id}/rollback.
func (h *handler) rollback(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d := h.loadVersion(w, r, v)
	if d == nil {
		return
	}
	chk, id, err := h.b.RollbackPolicy(r.Context(), v, d.Version.ID)
	if err != nil {
		h.failErr(w, v, "roll back the policy", err)
		return
	}
	if chk != nil && !chk.OK() {
		d.Rollback, d.Check = true, chk
		h.render(w, http.StatusUnprocessableEntity, "policy_version.html", page{Title: "Roll back the policy", Nav: "policy", Viewer: v,
			Error: "Not rolled back: " + checkSummary(chk), Data: d})
		return
	}
	http.Redirect(w, r, "/ui/policy?saved="+strconv.FormatInt(id, 10), http.StatusSeeOther)
}
