package ui

import (
	"context"
	"net/http"
	"time"
)

// PeopleBackend is what the people and models pages need, and the
// device and node details beyond Backend's. Actions taken on behalf of
// an actor are recorded in the admin trail, as the admin API records
// them.
type PeopleBackend interface {
	// People lists everyone who signed in to moat at least once.
	People(ctx context.Context) ([]Person, error)
	// SetDisabled disables (or enables again) person id on behalf of
	// actor. Disabling takes their devices out of the mesh, refuses
	// their credentials and ends their UI sessions; an actor disabling
	// themselves is a *UserError.
	SetDisabled(ctx context.Context, actor *Viewer, id string, disabled bool) error
	// ExpireDevice ends the key of a person's device now, on behalf of
	// actor: the device leaves the mesh until its owner signs in again
	// (which keeps its addresses). A node is ErrNotFound.
	ExpireDevice(ctx context.Context, actor *Viewer, id string) error
	// RevokeOwnDevice revokes device id for good when it belongs to
	// actor; any other device is ErrNotFound.
	RevokeOwnDevice(ctx context.Context, actor *Viewer, id string) error
	// RevokeNode revokes GPU node id for good, on behalf of actor; it has
	// to join again with a new enrollment key. A person's device is
	// ErrNotFound.
	RevokeNode(ctx context.Context, actor *Viewer, id string) error
	// RevokeEnrollKey revokes enrollment key id on behalf of actor: no
	// node can join with it any more; nodes that joined with it stay.
	RevokeEnrollKey(ctx context.Context, actor *Viewer, id string) error
	// NodeStatus returns what each node last reported about itself, by
	// node ID; nodes that reported nothing are missing.
	NodeStatus(ctx context.Context) (map[string]NodeStatus, error)
	// Models lists the models the policy declares and those nodes
	// advertise without the policy declaring them.
	Models(ctx context.Context) ([]Model, error)
	// Access lists the models person userID may use under the policy in
	// force, and on what terms.
	Access(ctx context.Context, userID string) ([]ModelUse, error)
	// Connection is what the commands the UI shows need to reach the
	// coordinator.
	Connection() Connection
}

// Connection is how devices and GPU hosts reach the coordinator.
type Connection struct {
	URL string // the coordinator's public URL
	// Fingerprint is the hex SHA-256 of the coordinator's self-signed
	// certificate; empty when clients verify its certificate against
	// their system roots.
	Fingerprint string
	// Install is the install command for a GPU host, with
	// ENROLLMENT_KEY in place of a key's secret.
	Install string
}

// Person is someone who signed in to moat at least once.
type Person struct {
	ID, Email, Name string
	Groups          []string // IdP groups at the last sign-in
	Role            string   // RoleAdmin, RoleAuditor or RoleMember
	Disabled        bool
	LastLogin       time.Time
	// TOTP is true when the person enrolled in the coordinator's own
	// TOTP, which it asks for when the IdP's amr does not prove MFA.
	TOTP bool
	// IdPMFA is true when the identity provider proved their last
	// second factor (amr) rather than the coordinator's TOTP.
	IdPMFA bool
	// Passkeys is how many passkeys the person signs in with (at the
	// embedded IdP, or the coordinator's step-up).
	Passkeys int
	// LastMFA is their newest second factor on any sign-in (device or
	// web UI); zero when none.
	LastMFA time.Time
	// Devices counts their live devices (not revoked, not expired).
	Devices int
}

// ModelUse is one model a person may use, and on what terms.
type ModelUse struct {
	Model string
	// Grants are the grants a request tries, in order: the first whose
	// MFA requirement the caller meets applies.
	Grants []Grant
	// Nodes counts the online nodes serving the model.
	Nodes int
}

// Grant is one grant of the policy, as people read it.
type Grant struct {
	ID  string   // "grants[2]"
	Src []string // whom it is for, as the policy writes it
	// Terms are its conditions in words ("MFA within 12h", "120
	// requests/min"); empty when it has none.
	Terms []string
}

// Model is one model of the mesh, as the models page shows it.
type Model struct {
	Name, Description string
	SHA256            string // the pinned hash of its weights, or ""
	// Declared is false for a model that nodes advertise but the policy
	// does not declare: nobody may use it and no node serves it.
	Declared bool
	// EncryptedAtRest is true when the policy lets nodes serve it only
	// from encrypted storage.
	EncryptedAtRest bool
	Grants          []Grant // who may use it
	Nodes           []ModelNode
}

// ModelNode is a node that advertises a model.
type ModelNode struct {
	ID, Hostname string
	Online       bool
	// Allowed is true when the policy lets the node serve the model (it
	// has one of the model's servedBy tags and verifies its pinned
	// sha256); otherwise the mesh does not use it for the model.
	Allowed bool
	// Why says why the node may not serve the model; empty when Allowed.
	Why string
	// Stopped says why the node stopped the model (its weights failed
	// their integrity check); empty when it serves it.
	Stopped string
	// AtRest says whether the node keeps the model's weights, its audit
	// spool and its state on encrypted storage: "encrypted", "not
	// encrypted: REASON", or "" when the node does not report it.
	AtRest string
}

// NodeStatus is what a node last reported about itself.
type NodeStatus struct {
	Integrity []ModelCheck // models with pinned weights, by name
	// Lockdown is nil when the node does not report its lockdown.
	Lockdown *Lockdown
	// AtRest is nil when the node does not report where its data sits.
	AtRest *AtRest
}

// AtRest is whether a node's data sits on encrypted storage.
type AtRest struct {
	State, Spool Storage
	Weights      []Storage // one per model, sorted by model name
	Checked      time.Time
}

// Storage is whether one path is on encrypted storage.
type Storage struct {
	What      string // "state directory", "audit spool", "weights of MODEL"
	Path      string
	Encrypted bool
	How       string // e.g. "fscrypt v2 (AES-256-XTS)", "dm-crypt LUKS2 (dm-0)"
	Reason    string // why it counts as not encrypted
}

// Plain counts the paths that are not on encrypted storage.
func (a *AtRest) Plain() int {
	n := 0
	for _, s := range append([]Storage{a.State, a.Spool}, a.Weights...) {
		if !s.Encrypted {
			n++
		}
	}
	return n
}

// Stopped counts the models whose integrity check failed.
func (s NodeStatus) Stopped() int {
	n := 0
	for _, c := range s.Integrity {
		if !c.OK {
			n++
		}
	}
	return n
}

// ModelCheck is the integrity check of one pinned weights file.
type ModelCheck struct {
	Model   string
	OK      bool
	Reason  string // why the model is stopped
	Warning string // an exposure worth fixing that does not stop it
	Checked time.Time
}

// Lockdown is a node's nftables lockdown as it reported it.
type Lockdown struct {
	Active  bool
	Scope   string // "host" or "service"
	Error   string // why the node could not read it back
	Drops   []Drop // what each category refused since it was applied
	Checked time.Time
	Mode    string // what the node was started with: "off", "host", "service"; "" from older nodes
	Problem string // why a configured lockdown is not in force now
	Events  []LockdownEvent
}

// LockdownEvent is a loss, restore or failure of a node's lockdown.
type LockdownEvent struct {
	Time   time.Time
	Kind   string // "lost", "restored", "failed", "interfaces", "resolved"
	Reason string
}

// Drop is what one category of the lockdown refused.
type Drop struct {
	Category       string
	Packets, Bytes uint64
}

// peopleRoutes adds the people and models pages, device expiry, node
// revocation and a person's own devices.
func (h *handler) peopleRoutes() {
	h.mux.HandleFunc("GET /ui/my", h.signedIn(anyone, h.mine))
	h.mux.HandleFunc("GET /ui/my/devices/{id}/revoke", h.signedIn(anyone, h.confirmRevokeOwn))
	h.mux.HandleFunc("POST /ui/my/devices/{id}/revoke", h.signedIn(anyone, h.revokeOwn))
	h.mux.HandleFunc("GET /ui/people", h.signedIn(admins, h.people))
	h.mux.HandleFunc("GET /ui/people/{id}", h.signedIn(admins, h.person))
	for _, disable := range []bool{true, false} {
		path := "/ui/people/{id}/" + map[bool]string{true: "disable", false: "enable"}[disable]
		h.mux.HandleFunc("GET "+path, h.signedIn(admins, h.confirmDisable(disable)))
		h.mux.HandleFunc("POST "+path, h.signedIn(admins, h.setDisabled(disable)))
	}
	h.factorRoutes()
	h.mux.HandleFunc("GET /ui/devices/{id}/expire", h.signedIn(admins, h.confirmExpire))
	h.mux.HandleFunc("POST /ui/devices/{id}/expire", h.signedIn(admins, h.expire))
	h.mux.HandleFunc("GET /ui/nodes/keys/{id}/revoke", h.signedIn(admins, h.confirmRevokeKey))
	h.mux.HandleFunc("POST /ui/nodes/keys/{id}/revoke", h.signedIn(admins, h.revokeKey))
	h.mux.HandleFunc("GET /ui/nodes/{id}/revoke", h.signedIn(admins, h.confirmRevokeNode))
	h.mux.HandleFunc("POST /ui/nodes/{id}/revoke", h.signedIn(admins, h.revokeNode))
	h.mux.HandleFunc("GET /ui/models", h.signedIn(admins, h.models))
	h.mux.HandleFunc("GET /ui/mcp", h.signedIn(admins, h.mcpServers))
}

// people lists everyone: GET /ui/people.
func (h *handler) people(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ps, err := h.b.People(r.Context())
	if err != nil {
		h.failErr(w, v, "list people", err)
		return
	}
	h.render(w, http.StatusOK, "people.html", page{Title: "People", Nav: "people", Viewer: v, Data: ps})
}

// findPerson returns person id from the backend's list.
func (h *handler) findPerson(ctx context.Context, id string) (*Person, error) {
	ps, err := h.b.People(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ps {
		if ps[i].ID == id {
			return &ps[i], nil
		}
	}
	return nil, ErrNotFound
}

// personData is what the person page shows.
type personData struct {
	Person  *Person
	Factors []Factor
	Devices []Device
	Models  []ModelUse
	Self    bool // the viewer is this person
}

// person shows one person, their devices and the models they may use:
// GET /ui/people/{id}.
func (h *handler) person(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ctx := r.Context()
	p, err := h.findPerson(ctx, r.PathValue("id"))
	if err != nil {
		h.failErr(w, v, "person", err)
		return
	}
	ds, err := h.ownDevices(ctx, p.ID)
	if err != nil {
		h.failErr(w, v, "list devices", err)
		return
	}
	ms, err := h.b.Access(ctx, p.ID)
	if err != nil {
		h.failErr(w, v, "work out model access", err)
		return
	}
	fs, err := h.b.Factors(ctx, p.ID)
	if err != nil {
		h.failErr(w, v, "list second factors", err)
		return
	}
	h.render(w, http.StatusOK, "person.html", page{Title: p.Email, Nav: "people", Viewer: v,
		Data: personData{Person: p, Factors: fs, Devices: ds, Models: ms, Self: p.ID == v.ID}})
}

// ownDevices lists the devices of person userID.
func (h *handler) ownDevices(ctx context.Context, userID string) ([]Device, error) {
	ds, err := h.b.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var out []Device
	for _, d := range ds {
		if d.OwnerID == userID {
			out = append(out, d)
		}
	}
	return out, nil
}

// confirmDisable asks before disabling or enabling a person:
// GET /ui/people/{id}/disable and /enable.
func (h *handler) confirmDisable(disable bool) viewFunc {
	return func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		p, err := h.findPerson(r.Context(), r.PathValue("id"))
		if err != nil {
			h.failErr(w, v, "person", err)
			return
		}
		c := confirmation{Title: "Enable a person", Verb: "Enable", Subject: p.Email, Action: "/ui/people/" + p.ID + "/enable",
			Button: "Enable " + p.Email, Cancel: "/ui/people/" + p.ID,
			Consequences: []string{"They can sign in again, and their devices whose keys have not expired rejoin the mesh at once."}}
		if disable {
			c = confirmation{Title: "Disable a person", Verb: "Disable", Subject: p.Email, Action: "/ui/people/" + p.ID + "/disable",
				Button: "Disable " + p.Email, Cancel: "/ui/people/" + p.ID, Danger: true,
				Consequences: []string{
					"Every device of theirs leaves the mesh at once, and the coordinator refuses their credentials.",
					"They are signed out of this UI and cannot sign in again until an admin enables them.",
				}}
		}
		h.confirm(w, v, "people", c)
	}
}

// setDisabled disables or enables a person: POST /ui/people/{id}/disable
// and /enable.
func (h *handler) setDisabled(disable bool) viewFunc {
	return func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		id := r.PathValue("id")
		if err := h.b.SetDisabled(r.Context(), v, id, disable); err != nil {
			h.failErr(w, v, "person", err)
			return
		}
		http.Redirect(w, r, "/ui/people/"+id, http.StatusSeeOther)
	}
}
