package ui

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AuditBackend is what the audit and admin-trail pages need.
type AuditBackend interface {
	// Audit returns the audit records f selects, newest first.
	Audit(ctx context.Context, f AuditFilter) ([]AuditRecord, error)
	// AuditRecord returns record id (ErrNotFound when there is none),
	// with HashOK set.
	AuditRecord(ctx context.Context, id string) (*AuditRecord, error)
	// AuditChains checks the hash chain of the records held from each
	// node.
	AuditChains(ctx context.Context) ([]ChainState, error)
	// AdminTrail returns up to n admin actions older than action before
	// (0: from the newest), newest first.
	AdminTrail(ctx context.Context, before int64, n int) ([]AdminAction, error)
}

// AuditFilter selects audit records; zero fields do not filter.
type AuditFilter struct {
	Person   string // an email (the record's login) or a user id
	Model    string
	API      string // "mcp": MCP tool calls only
	Node     string // a node's name or id
	Decision string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	Before   string    // only records older than this record (a page cursor)
	Limit    int       // at most this many (the backend may cap it)
}

// AuditRecord is one model request as a node reported it.
type AuditRecord struct {
	ID, NodeID, Node    string // Node: the node's name where known
	Time                time.Time
	UserID, Login       string
	DeviceID            string
	Model, API          string
	MCP                 string // SERVER:TOOL of an MCP call (API "mcp")
	Decision, Reason    string
	Grant               string
	TokensIn, TokensOut int64
	LatencyMS           int64
	Status              int
	// Body is the record as the node sent it: JSON with every field,
	// including the hash chain's (seq, prev, hash).
	Body []byte
	// HashOK reports whether Body matches its own hash (set by
	// Backend.AuditRecord only).
	HashOK bool
}

// ChainState is how the hash chain of the records held from one node
// checks out.
type ChainState struct {
	NodeID, Node string
	// Records counts the records checked; with Removed, their sequence
	// numbers run from First to Last.
	Records     int
	First, Last uint64
	// Removed counts the records retention deleted, covered by sealed
	// checkpoints, within First to Last.
	Removed uint64
	// Partial is set when only the newest records were checked.
	Partial bool
	// Problems are the gaps and breaks found, oldest first (at most a
	// few); none means the chain holds.
	Problems []string
}

// AdminAction is one entry of the admin trail.
type AdminAction struct {
	ID     int64
	Time   time.Time
	Actor  string // for display (an email where known)
	Action string // e.g. "policy.save"
	Target string
	Detail string
}

const (
	auditPage = 50
	trailPage = 50
)

// Decisions the audit filter offers (a node may report others).
var decisions = []string{"allow", "deny", "deny-mfa", "limit", "invalid", "unavailable"}

// auditRoutes adds the audit and admin-trail pages.
func (h *handler) auditRoutes() {
	h.mux.HandleFunc("GET /ui/audit", h.signedIn(readers, h.audit))
	h.mux.HandleFunc("GET /ui/audit/records/{id}", h.signedIn(readers, h.auditRecord))
	h.mux.HandleFunc("GET /ui/audit/chains", h.signedIn(readers, h.auditChains))
	h.mux.HandleFunc("GET /ui/audit/export.csv", h.signedIn(readers, h.exportCSV))
	h.mux.HandleFunc("GET /ui/audit/export.jsonl", h.signedIn(readers, h.exportJSONL))
	h.mux.HandleFunc("GET /ui/trail", h.signedIn(readers, h.trail))
}

// filterForm is the audit filter as the form shows it.
type filterForm struct {
	Person, Model, API, Node, Decision, Since, Until string
}

// Query is the filter as a URL query (without a page cursor).
func (f filterForm) Query() string {
	q := url.Values{}
	for k, v := range map[string]string{"person": f.Person, "model": f.Model, "api": f.API, "node": f.Node,
		"decision": f.Decision, "since": f.Since, "until": f.Until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q.Encode()
}

// parseFilter reads the audit filter from the query. Times are
// datetime-local values (UTC) or RFC 3339.
func parseFilter(q url.Values) (filterForm, AuditFilter, string) {
	ff := filterForm{Person: strings.TrimSpace(q.Get("person")), Model: strings.TrimSpace(q.Get("model")),
		Node: strings.TrimSpace(q.Get("node")), Decision: q.Get("decision"), Since: q.Get("since"), Until: q.Get("until")}
	if q.Get("api") == "mcp" {
		ff.API = "mcp"
	}
	f := AuditFilter{Person: ff.Person, Model: ff.Model, API: ff.API, Node: ff.Node, Decision: ff.Decision, Before: q.Get("before")}
	for _, t := range []struct {
		name, v string
		dst     *time.Time
	}{{"From", ff.Since, &f.Since}, {"To", ff.Until, &f.Until}} {
		if t.v == "" {
			continue
		}
		v, err := parseTime(t.v)
		if err != nil {
			return ff, f, t.name + ": want a date and time like 2026-11-22T10:00 (UTC)."
		}
		*t.dst = v
	}
	return ff, f, ""
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Parse(time.RFC3339, s)
}

// audit lists audit records, filtered, newest first, a page at a time:
// GET /ui/audit?person=&model=&node=&decision=&since=&until=&before=ID.
func (h *handler) audit(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ff, f, msg := parseFilter(r.URL.Query())
	q := ff.Query()
	d := map[string]any{"F": ff, "Filtered": q != "", "Decisions": decisions, "Paged": f.Before != "",
		"Newest": "/ui/audit?" + q, "CSV": "/ui/audit/export.csv?" + q, "JSONL": "/ui/audit/export.jsonl?" + q}
	if msg != "" {
		h.render(w, http.StatusBadRequest, "audit.html", page{Title: "Audit", Nav: "audit", Viewer: v, Error: msg, Data: d})
		return
	}
	f.Limit = auditPage + 1
	recs, err := h.b.Audit(r.Context(), f)
	if err != nil {
		h.failErr(w, v, "query audit records", err)
		return
	}
	if len(recs) > auditPage {
		recs = recs[:auditPage]
		older := url.Values{"before": {recs[len(recs)-1].ID}}.Encode()
		if q != "" {
			older = q + "&" + older
		}
		d["Older"] = "/ui/audit?" + older
	}
	d["Records"] = recs
	h.render(w, http.StatusOK, "audit.html", page{Title: "Audit", Nav: "audit", Viewer: v, Data: d})
}

// field is one field of a record's JSON, its value as JSON text unless
// it is a string.
type field struct{ Name, Value string }

// auditRecord shows one record with every field it carries:
// GET /ui/audit/records/{id}.
func (h *handler) auditRecord(w http.ResponseWriter, r *http.Request, v *Viewer) {
	rec, err := h.b.AuditRecord(r.Context(), r.PathValue("id"))
	if err != nil {
		h.failErr(w, v, "audit record", err)
		return
	}
	fields, chain, prompt := recordFields(rec.Body)
	h.render(w, http.StatusOK, "audit_record.html", page{Title: "Audit record", Nav: "audit", Viewer: v,
		Data: map[string]any{"R": rec, "Fields": fields, "Chain": chain, "PromptHash": prompt}})
}

// auditChains shows the hash-chain state of each node's records:
// GET /ui/audit/chains.
func (h *handler) auditChains(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if !h.startHeavy(w, v) {
		return
	}
	defer h.endHeavy()
	cs, err := h.b.AuditChains(r.Context())
	if err != nil {
		h.failErr(w, v, "check the audit chains", err)
		return
	}
	h.render(w, http.StatusOK, "audit_chains.html", page{Title: "Audit hash chains", Nav: "audit", Viewer: v, Data: cs})
}

// trail lists the admin trail, newest first: GET /ui/trail?before=ID.
func (h *handler) trail(w http.ResponseWriter, r *http.Request, v *Viewer) {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	as, err := h.b.AdminTrail(r.Context(), max(before, 0), trailPage+1)
	if err != nil {
		h.failErr(w, v, "load the admin trail", err)
		return
	}
	d := map[string]any{"Paged": before > 0}
	if len(as) > trailPage {
		as = as[:trailPage]
		d["Older"] = as[len(as)-1].ID
	}
	d["Actions"] = as
	h.render(w, http.StatusOK, "trail.html", page{Title: "Admin trail", Nav: "trail", Viewer: v, Data: d})
}
