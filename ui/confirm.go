package ui

import (
	"context"
	"net/http"
	"strings"
)

// Destructive actions always ask first: a GET shows a confirmation page
// whose one form POSTs the action (with the CSRF token), and the POST
// sends the browser on with a redirect.

// confirmation is what confirm.html asks.
type confirmation struct {
	Title         string // the page's heading: "Revoke a device"
	Verb, Subject string // "Revoke", "laptop": "Revoke laptop?"
	Detail        string // more about the subject, shown after it
	Consequences  []string
	Action        string // where the form posts
	Button        string
	Cancel        string // where "Cancel" leads
	Danger        bool   // the button is red
}

// confirm renders a confirmation page under nav.
func (h *handler) confirm(w http.ResponseWriter, v *Viewer, nav string, c confirmation) {
	h.render(w, http.StatusOK, "confirm.html", page{Title: c.Title, Nav: nav, Viewer: v, Data: c})
}

// confirmSignOut asks before signing out: GET /ui/logout. The sign-out
// itself is the coordinator's POST /ui/logout, with the CSRF token, so
// another site cannot sign a person out.
func (h *handler) confirmSignOut(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.confirm(w, v, "", confirmation{Title: "Sign out", Verb: "Sign out", Subject: v.Email,
		Action: "/ui/logout", Button: "Sign out", Cancel: "/ui/",
		Consequences: []string{"This browser's session ends, here and on every coordinator replica. Your devices stay connected."}})
}

// done runs a confirmed action and sends the browser to next.
func (h *handler) done(w http.ResponseWriter, r *http.Request, v *Viewer, what, next string, err error) {
	if err != nil {
		h.failErr(w, v, what, err)
		return
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// findDevice returns device id among the devices keep accepts (nil: all).
func (h *handler) findDevice(ctx context.Context, id string, keep func(Device) bool) (*Device, error) {
	ds, err := h.b.Devices(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ds {
		if ds[i].ID == id && (keep == nil || keep(ds[i])) {
			return &ds[i], nil
		}
	}
	return nil, ErrNotFound
}

// deviceDetail describes a device for a confirmation.
func deviceDetail(d *Device) string {
	s := "of " + d.Owner
	if len(d.Addresses) > 0 {
		s += " (" + strings.Join(d.Addresses, ", ") + ")"
	}
	return s
}

// confirmRevoke asks before revoking: GET /ui/devices/{id}/revoke.
func (h *handler) confirmRevoke(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d, err := h.findDevice(r.Context(), r.PathValue("id"), nil)
	if err != nil {
		h.failErr(w, v, "device", err)
		return
	}
	h.confirm(w, v, "devices", confirmation{Title: "Revoke a device", Verb: "Revoke", Subject: d.Hostname, Detail: deviceDetail(d),
		Action: "/ui/devices/" + d.ID + "/revoke", Button: "Revoke " + d.Hostname, Cancel: "/ui/devices", Danger: true,
		Consequences: []string{
			"The device loses its mesh access at once, and every peer drops its key.",
			"This cannot be undone: the person has to sign the device in again, and it gets new addresses.",
		}})
}

// revoke revokes a device: POST /ui/devices/{id}/revoke.
func (h *handler) revoke(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.done(w, r, v, "device", "/ui/devices", h.b.RevokeDevice(r.Context(), v, r.PathValue("id")))
}

// confirmExpire asks before expiring a device's key:
// GET /ui/devices/{id}/expire.
func (h *handler) confirmExpire(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d, err := h.findDevice(r.Context(), r.PathValue("id"), nil)
	if err != nil {
		h.failErr(w, v, "device", err)
		return
	}
	h.confirm(w, v, "devices", confirmation{Title: "Expire a device's key", Verb: "Expire", Subject: d.Hostname, Detail: deviceDetail(d),
		Action: "/ui/devices/" + d.ID + "/expire", Button: "Expire " + d.Hostname + " now", Cancel: "/ui/devices", Danger: true,
		Consequences: []string{
			"The device's key expires now: it leaves the mesh at once and peers drop its key.",
			"Its owner gets back in by signing in again (with MFA); the device keeps its addresses.",
		}})
}

// expire expires a device's key: POST /ui/devices/{id}/expire.
func (h *handler) expire(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.done(w, r, v, "device", "/ui/devices", h.b.ExpireDevice(r.Context(), v, r.PathValue("id")))
}

// confirmRevokeOwn asks a person before revoking one of their own
// devices: GET /ui/my/devices/{id}/revoke.
func (h *handler) confirmRevokeOwn(w http.ResponseWriter, r *http.Request, v *Viewer) {
	d, err := h.findDevice(r.Context(), r.PathValue("id"), func(d Device) bool { return d.OwnerID == v.ID })
	if err != nil {
		h.failErr(w, v, "device of yours", err)
		return
	}
	h.confirm(w, v, "overview", confirmation{Title: "Revoke one of your devices", Verb: "Revoke", Subject: d.Hostname, Detail: strings.Join(d.Addresses, ", "),
		Action: "/ui/my/devices/" + d.ID + "/revoke", Button: "Revoke " + d.Hostname, Cancel: "/ui/my", Danger: true,
		Consequences: []string{
			"The device loses its mesh access at once. Do this for a lost or retired device.",
			"This cannot be undone: to use the device again, sign it in again with moat login.",
		}})
}

// revokeOwn revokes one of the viewer's devices:
// POST /ui/my/devices/{id}/revoke.
func (h *handler) revokeOwn(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.done(w, r, v, "device of yours", "/ui/my", h.b.RevokeOwnDevice(r.Context(), v, r.PathValue("id")))
}

// confirmRevokeNode asks before revoking a node: GET /ui/nodes/{id}/revoke.
func (h *handler) confirmRevokeNode(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ns, _, err := h.b.Nodes(r.Context())
	if err != nil {
		h.failErr(w, v, "list nodes", err)
		return
	}
	for _, n := range ns {
		if n.ID != r.PathValue("id") || n.Revoked {
			continue
		}
		h.confirm(w, v, "nodes", confirmation{Title: "Revoke a node", Verb: "Revoke", Subject: n.Hostname,
			Detail: "(" + strings.Join(n.Tags, ", ") + "; serves " + strings.Join(n.Models, ", ") + ")",
			Action: "/ui/nodes/" + n.ID + "/revoke", Button: "Revoke " + n.Hostname, Cancel: "/ui/nodes", Danger: true,
			Consequences: []string{
				"The node leaves the mesh at once: every device drops its key, and nobody reaches its models through it.",
				"This cannot be undone: the host has to join again with a new enrollment key.",
			}})
		return
	}
	h.failErr(w, v, "node", ErrNotFound)
}

// confirmRevokeKey asks before revoking an enrollment key:
// GET /ui/nodes/keys/{id}/revoke.
func (h *handler) confirmRevokeKey(w http.ResponseWriter, r *http.Request, v *Viewer) {
	_, ks, err := h.b.Nodes(r.Context())
	if err != nil {
		h.failErr(w, v, "list enrollment keys", err)
		return
	}
	for _, k := range ks {
		if k.ID != r.PathValue("id") || k.Revoked {
			continue
		}
		h.confirm(w, v, "nodes", confirmation{Title: "Revoke an enrollment key", Verb: "Revoke", Subject: k.ID,
			Detail: "(" + strings.Join(k.Tags, ", ") + ")",
			Action: "/ui/nodes/keys/" + k.ID + "/revoke", Button: "Revoke " + k.ID, Cancel: "/ui/nodes", Danger: true,
			Consequences: []string{
				"No host can join with this key any more, even where the install command was already copied.",
				"Nodes that joined with it stay in the mesh; revoke them one by one if they should go too.",
			}})
		return
	}
	h.failErr(w, v, "enrollment key", ErrNotFound)
}

// revokeKey revokes an enrollment key: POST /ui/nodes/keys/{id}/revoke.
func (h *handler) revokeKey(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.done(w, r, v, "enrollment key", "/ui/nodes", h.b.RevokeEnrollKey(r.Context(), v, r.PathValue("id")))
}

// revokeNode revokes a node: POST /ui/nodes/{id}/revoke.
func (h *handler) revokeNode(w http.ResponseWriter, r *http.Request, v *Viewer) {
	h.done(w, r, v, "node", "/ui/nodes", h.b.RevokeNode(r.Context(), v, r.PathValue("id")))
}
