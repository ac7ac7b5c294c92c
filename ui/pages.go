package ui

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// home is the overview for admins and auditors, and a person's own
// access for members: GET /ui/.
func (h *handler) home(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if v.Role != RoleAdmin && v.Role != RoleAuditor {
		h.mine(w, r, v)
		return
	}
	o, err := h.b.Overview(r.Context())
	if err != nil {
		h.failErr(w, v, "count the overview", err)
		return
	}
	h.render(w, http.StatusOK, "overview.html", page{Title: "Overview", Nav: "overview", Viewer: v,
		Data: map[string]any{"O": o, "Chart": newChart(o.Hourly, o.HourlyRefused), "Install": h.b.Connection().Install}})
}

// mineData is what the my-access page shows.
type mineData struct {
	Devices []Device
	Models  []ModelUse
	Steps   []command // how to connect
	Limits  []wire.GrantUsage
	Budgets []budgetRow
}

// command is a shell command shown with a copy button.
type command struct {
	ID    string // the element id the copy button names
	Label string // what it does
	Text  string
}

// mine shows a person their devices, the models they may use and how to
// connect: GET /ui/ for members, GET /ui/my for everyone.
func (h *handler) mine(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ctx := r.Context()
	ds, err := h.ownDevices(ctx, v.ID)
	if err != nil {
		h.failErr(w, v, "list devices", err)
		return
	}
	ms, err := h.b.Access(ctx, v.ID)
	if err != nil {
		h.failErr(w, v, "work out model access", err)
		return
	}
	use, err := h.b.MyUsage(ctx, v.ID)
	if err != nil {
		h.failErr(w, v, "read your use", err)
		return
	}
	h.render(w, http.StatusOK, "mine.html", page{Title: "My access", Nav: "overview", Viewer: v,
		Data: mineData{Devices: ds, Models: ms, Steps: connectSteps(h.b.Connection(), ms), Limits: use.Grants, Budgets: budgetRows(use.Budgets)}})
}

// connectSteps are the commands that connect a device to the
// coordinator at c and use a model of ms.
func connectSteps(c Connection, ms []ModelUse) []command {
	u := strings.TrimSuffix(c.URL, "/")
	if c.Fingerprint != "" {
		u += " --coordinator-fingerprint " + c.Fingerprint
	}
	model := "MODEL"
	if len(ms) > 0 {
		model = ms[0].Model
	}
	body, _ := json.Marshal(map[string]any{"model": model, "messages": []map[string]string{{"role": "user", "content": "Hello"}}})
	return []command{
		{ID: "cmd-login", Label: "Sign this computer in (opens your browser for sign-in and MFA):", Text: "moat login --coordinator " + u},
		{ID: "cmd-up", Label: "Connect, and serve the models on a local OpenAI-compatible endpoint:", Text: "moat up"},
		{ID: "cmd-curl", Label: "Ask a model, from any tool on this computer:",
			Text: "curl http://127.0.0.1:4000/v1/chat/completions -H 'Content-Type: application/json' -d '" +
				strings.ReplaceAll(string(body), "'", `'\''`) + "'"},
		{ID: "cmd-wg", Label: "No moat client (a phone, a stock WireGuard app)? Make a WireGuard configuration that expires like a sign-in:",
			Text: "moat wg-config --coordinator " + u + " --name my-phone"},
	}
}

// devices lists people's devices: GET /ui/devices.
func (h *handler) devices(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.deviceList(w, r, page{Title: "Devices", Nav: "devices", Viewer: v}, "devices.html", nil)
}

// deviceList renders p with the devices that keep accepts (nil: all).
func (h *handler) deviceList(w http.ResponseWriter, r *http.Request, p page, tmpl string, keep func(Device) bool) {
	ds, err := h.b.Devices(r.Context())
	if err != nil {
		h.failErr(w, p.Viewer, "list devices", err)
		return
	}
	var out []Device
	for _, d := range ds {
		if keep == nil || keep(d) {
			out = append(out, d)
		}
	}
	p.Data = out
	h.render(w, http.StatusOK, tmpl, p)
}

// nodesData is what the nodes page shows.
type nodesData struct {
	Nodes   []Node
	Status  map[string]NodeStatus // by node ID
	Keys    []EnrollKey
	New     *NewKey // the key just made, shown once
	Install string  // the install command with a placeholder for the key
}

// nodes lists nodes and enrollment keys: GET /ui/nodes.
func (h *handler) nodes(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.renderNodes(w, r, v, http.StatusOK, nil, "")
}

func (h *handler) renderNodes(w http.ResponseWriter, r *http.Request, v *Viewer, status int, nk *NewKey, msg string) {
	ns, ks, err := h.b.Nodes(r.Context())
	if err != nil {
		h.failErr(w, v, "list nodes", err)
		return
	}
	st, err := h.b.NodeStatus(r.Context())
	if err != nil {
		h.failErr(w, v, "read node status", err)
		return
	}
	h.render(w, status, "nodes.html", page{Title: "Nodes", Nav: "nodes", Viewer: v, Error: msg,
		Data: nodesData{Nodes: ns, Status: st, Keys: ks, New: nk, Install: h.b.Connection().Install}})
}

// models lists the models, who may use them and where they are served:
// GET /ui/models.
func (h *handler) models(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ms, err := h.b.Models(r.Context())
	if err != nil {
		h.failErr(w, v, "list models", err)
		return
	}
	h.render(w, http.StatusOK, "models.html", page{Title: "Models", Nav: "models", Viewer: v, Data: ms})
}

// keyTTLs are the expiries the create form offers.
var keyTTLs = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

// createKey makes an enrollment key and shows it once: POST /ui/nodes/keys.
func (h *handler) createKey(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ttl, ok := keyTTLs[r.PostFormValue("expiry")]
	if !ok {
		ttl = 24 * time.Hour
	}
	tags := strings.FieldsFunc(r.PostFormValue("tags"), func(c rune) bool { return c == ',' || c == ' ' })
	nk, err := h.b.CreateEnrollKey(r.Context(), v, tags, r.PostFormValue("reusable") != "", ttl)
	var ue *UserError
	if errors.As(err, &ue) {
		h.renderNodes(w, r, v, http.StatusBadRequest, nil, ue.Msg)
		return
	}
	if err != nil {
		h.failErr(w, v, "create an enrollment key", err)
		return
	}
	h.renderNodes(w, r, v, http.StatusOK, nk, "")
}
