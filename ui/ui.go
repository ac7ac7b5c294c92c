package ui

import (
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The UI is served under /ui/: ui.New's handler expects the full request
// path (mount it at /ui/ without stripping the prefix). The coordinator
// itself serves /ui/login and /ui/logout, which sign a person in through
// the same OIDC + MFA path as devices and out again.

// CSP is the Content-Security-Policy of every UI response: scripts and
// styles only from the coordinator's own static files, never inline.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

var funcs = template.FuncMap{
	"join": strings.Join,
	"when": when,
	"age":  age,
	"left": func(limit, used int64) int64 { return max(limit-used, 0) },
}

// pages holds one template set per page, each with the layout and the
// shared parts (files named _*.html, which are not pages).
var pages = func() map[string]*template.Template {
	names, _ := fs.Glob(templateFS, "templates/*.html")
	m := map[string]*template.Template{}
	for _, n := range names {
		n = strings.TrimPrefix(n, "templates/")
		if n == "layout.html" || strings.HasPrefix(n, "_") {
			continue
		}
		m[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", "templates/"+n))
	}
	return m
}()

// handler serves the UI pages.
type handler struct {
	b     Backend
	mux   *http.ServeMux
	heavy chan struct{} // one token per export or chain check running
}

// maxHeavy is how many exports and chain checks may run at once, for all
// viewers together: each reads up to 100,000 records.
const maxHeavy = 2

// startHeavy takes a token for an export or chain check, or answers 429
// and returns false when all are taken.
func (h *handler) startHeavy(w http.ResponseWriter, v *Viewer) bool {
	select {
	case h.heavy <- struct{}{}:
		return true
	default:
		w.Header().Set("Retry-After", "10")
		h.fail(w, v, http.StatusTooManyRequests, "Other exports or chain checks are running; try again in a moment.")
		return false
	}
}

func (h *handler) endHeavy() { <-h.heavy }

// New returns the UI over b. See Backend for what b must provide.
func New(b Backend) http.Handler {
	h := &handler{b: b, mux: http.NewServeMux(), heavy: make(chan struct{}, maxHeavy)}
	static, _ := fs.Sub(staticFS, "static")
	h.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /ui/{$}", h.signedIn(anyone, h.home))
	h.mux.HandleFunc("GET /ui/devices", h.signedIn(admins, h.devices))
	h.mux.HandleFunc("GET /ui/devices/{id}/revoke", h.signedIn(admins, h.confirmRevoke))
	h.mux.HandleFunc("POST /ui/devices/{id}/revoke", h.signedIn(admins, h.revoke))
	h.mux.HandleFunc("GET /ui/nodes", h.signedIn(admins, h.nodes))
	h.mux.HandleFunc("POST /ui/nodes/keys", h.signedIn(admins, h.createKey))
	h.mux.HandleFunc("GET /ui/logout", h.signedIn(anyone, h.confirmSignOut))
	h.peopleRoutes()
	h.policyRoutes()
	h.auditRoutes()
	h.usageRoutes()
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", CSP)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		hd.Set("Cache-Control", "no-store")
	}
	h.mux.ServeHTTP(w, r)
}

// Who may see a page: a set of roles, or anyone signed in (nil).
var (
	anyone  []string
	admins  = []string{RoleAdmin}
	readers = []string{RoleAdmin, RoleAuditor} // admins and auditors
)

// viewFunc is a page handler for a signed-in viewer.
type viewFunc func(w http.ResponseWriter, r *http.Request, v *Viewer)

// signedIn admits a signed-in viewer whose role is in roles (nil: any),
// and checks the CSRF token of every POST before the page sees it.
func (h *handler) signedIn(roles []string, next viewFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := h.b.Viewer(r)
		if v == nil {
			http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
			return
		}
		if roles != nil && !slices.Contains(roles, v.Role) {
			h.fail(w, v, http.StatusForbidden, "This page is for "+strings.Join(roles, "s and ")+"s. Ask an admin if you need something changed.")
			return
		}
		if r.Method == http.MethodPost && !h.formOK(w, r, v) {
			return
		}
		next(w, r, v)
	}
}

// maxFormBytes bounds a form's body: a whole policy, URL-encoded.
const maxFormBytes = 4*maxPolicyText + 64<<10

// formOK reads a POST's form — only URL-encoded, as the pages send it,
// and at most maxFormBytes — and checks its CSRF token. It answers the
// request itself when it returns false.
func (h *handler) formOK(w http.ResponseWriter, r *http.Request, v *Viewer) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		h.fail(w, v, http.StatusUnsupportedMediaType, "Send the page's own form.")
		return false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, v, http.StatusRequestEntityTooLarge, "The form is too large.")
		} else {
			h.fail(w, v, http.StatusBadRequest, "The form could not be read.")
		}
		return false
	}
	if !csrfOK(r, v) {
		h.fail(w, v, http.StatusForbidden, "The form expired. Go back, reload the page and try again.")
		return false
	}
	return true
}

// csrfOK checks a form's token against the session's in constant time.
func csrfOK(r *http.Request, v *Viewer) bool {
	got := r.PostFormValue("csrf")
	return v.CSRF != "" && subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) == 1
}

// page is what every template gets.
type page struct {
	Title  string
	Nav    string // the nav entry to mark current
	Viewer *Viewer
	Error  string
	Data   any
}

// render writes a page. Every value is escaped by html/template.
func (h *handler) render(w http.ResponseWriter, status int, name string, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = pages[name].ExecuteTemplate(w, "layout", p)
}

// fail shows msg as an error page.
func (h *handler) fail(w http.ResponseWriter, v *Viewer, status int, msg string) {
	h.render(w, status, "error.html", page{Title: http.StatusText(status), Viewer: v, Error: msg})
}

// failErr shows a backend error: a UserError as it is, ErrNotFound as
// 404, anything else as a generic failure (the backend logged it).
func (h *handler) failErr(w http.ResponseWriter, v *Viewer, op string, err error) {
	var ue *UserError
	switch {
	case errors.As(err, &ue):
		h.fail(w, v, http.StatusBadRequest, ue.Msg)
	case errors.Is(err, ErrNotFound):
		h.fail(w, v, http.StatusNotFound, "There is no such "+op+"; it may have been removed already.")
	default:
		h.fail(w, v, http.StatusInternalServerError, "The coordinator failed to "+op+". Try again, and tell an admin if it persists.")
	}
}

// when formats a time for a table cell.
// age is a duration as people say it: "3 days", "5 h", "12 min".
func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	case d >= 2*time.Hour:
		return fmt.Sprintf("%d h", int(d/time.Hour))
	}
	return fmt.Sprintf("%d min", int(d/time.Minute))
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
