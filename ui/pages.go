package ui

import (
	"errors"
	"net/http"
	"strings"
	"time"
)

// home is the overview for admins and auditors, and a person's own
// devices for members: GET /ui/.
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
		Data: map[string]any{"O": o, "Chart": newChart(o.Hourly)}})
}

// mine lists a member's own devices.
func (h *handler) mine(w http.ResponseWriter, r *http.Request, v *Viewer) {
	own := func(d Device) bool { return d.OwnerID == v.ID }
	h.deviceList(w, r, page{Title: "My access", Nav: "overview", Viewer: v}, "mine.html", own)
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

// confirmRevoke asks before revoking: GET /ui/devices/{id}/revoke.
func (h *handler) confirmRevoke(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ds, err := h.b.Devices(r.Context())
	if err != nil {
		h.failErr(w, v, "list devices", err)
		return
	}
	for _, d := range ds {
		if d.ID == r.PathValue("id") {
			h.render(w, http.StatusOK, "revoke.html", page{Title: "Revoke a device", Nav: "devices", Viewer: v, Data: d})
			return
		}
	}
	h.failErr(w, v, "device", ErrNotFound)
}

// revoke revokes a device: POST /ui/devices/{id}/revoke.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if err := h.b.RevokeDevice(r.Context(), v, r.PathValue("id")); err != nil {
		h.failErr(w, v, "device", err)
		return
	}
	http.Redirect(w, r, "/ui/devices", http.StatusSeeOther)
}

// nodesData is what the nodes page shows.
type nodesData struct {
	Nodes []Node
	Keys  []EnrollKey
	New   *NewKey // the key just made, shown once
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
	h.render(w, status, "nodes.html", page{Title: "Nodes", Nav: "nodes", Viewer: v, Error: msg,
		Data: nodesData{Nodes: ns, Keys: ks, New: nk}})
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
