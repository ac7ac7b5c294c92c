package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
	"github.com/moatmesh/moat/ui"
)

// The people, models, device-expiry and node parts of the UI backend
// (ui.PeopleBackend). Changes go through setUserDisabledAs and
// changeDeviceAs, as the admin API's do, and land in the admin trail.

// People lists everyone with their MFA state and live devices.
func (b uiBackend) People(ctx context.Context) ([]ui.Person, error) {
	st, err := b.s.netmaps.Snapshot(ctx)
	if err != nil {
		return nil, b.fail("read the mesh", err)
	}
	live := map[string]int{}
	for _, d := range st.Devices {
		if d.Kind != store.KindNode && st.Live(d) {
			live[d.UserID]++
		}
	}
	passkeys, err := b.s.store.PasskeyCounts(ctx)
	if err != nil {
		return nil, b.fail("count passkeys", err)
	}
	out := make([]ui.Person, 0, len(st.Users))
	for _, u := range st.Users {
		out = append(out, ui.Person{ID: u.ID, Email: u.Email, Name: u.Name, Groups: u.Groups, Role: uiRole(u.Role),
			Disabled: u.Disabled, LastLogin: u.LastLogin, TOTP: u.TOTPSecret != nil, LastMFA: u.LastMFA,
			Devices: live[u.ID], IdPMFA: u.MFAVia == store.MFAViaIdP, Passkeys: passkeys[b.s.passkeyOwner(u).ID]})
	}
	slices.SortFunc(out, func(a, b ui.Person) int { return strings.Compare(a.Email, b.Email) })
	return out, nil
}

// uiRole is a stored role as the UI names it.
func uiRole(role string) string {
	if role != ui.RoleAdmin && role != ui.RoleAuditor {
		return ui.RoleMember
	}
	return role
}

// SetDisabled disables or enables a person as the admin API does. An
// admin cannot disable themselves (and so lock the last admin out).
func (b uiBackend) SetDisabled(ctx context.Context, actor *ui.Viewer, id string, disabled bool) error {
	if disabled && id == actor.ID {
		return &ui.UserError{Msg: "You cannot disable yourself. Ask another admin."}
	}
	_, err := b.s.setUserDisabledAs(ctx, actor.ID, id, disabled)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s: %w", id, ui.ErrNotFound)
	}
	return b.fail("change user", err)
}

// ExpireDevice expires a person's device key now, as the admin API does.
func (b uiBackend) ExpireDevice(ctx context.Context, actor *ui.Viewer, id string) error {
	return b.changeDevice(ctx, actor, id, "device.expire", expireDevice, func(d *store.Device) bool { return d.Kind != store.KindNode })
}

// RevokeOwnDevice revokes one of actor's own devices.
func (b uiBackend) RevokeOwnDevice(ctx context.Context, actor *ui.Viewer, id string) error {
	return b.changeDevice(ctx, actor, id, "device.revoke", revokeDevice, func(d *store.Device) bool {
		return d.Kind != store.KindNode && d.UserID == actor.ID && !d.Revoked
	})
}

// RevokeEnrollKey revokes an enrollment key as the admin API does.
func (b uiBackend) RevokeEnrollKey(ctx context.Context, actor *ui.Viewer, id string) error {
	err := b.s.revokeEnrollKeyAs(ctx, actor.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("enrollment key %s: %w", id, ui.ErrNotFound)
	}
	if err != nil {
		return b.fail("revoke enrollment key", err)
	}
	return nil
}

// RevokeNode revokes a node as the admin API revokes a device.
func (b uiBackend) RevokeNode(ctx context.Context, actor *ui.Viewer, id string) error {
	return b.changeDevice(ctx, actor, id, "device.revoke", revokeDevice, func(d *store.Device) bool { return d.Kind == store.KindNode })
}

// changeDevice applies change to device id through changeDeviceAs when
// ok accepts the device; a device it refuses is not found.
func (b uiBackend) changeDevice(ctx context.Context, actor *ui.Viewer, id, action string, change func(*store.Device, time.Time), ok func(*store.Device) bool) error {
	d, err := b.s.store.Device(ctx, id)
	if err == nil && !ok(d) {
		err = store.ErrNotFound
	}
	if err == nil {
		_, err = b.s.changeDeviceAs(ctx, actor.ID, id, action, change)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("device %s: %w", id, ui.ErrNotFound)
	}
	return b.fail(action, err)
}

// NodeStatus decodes what each node last reported about itself.
func (b uiBackend) NodeStatus(ctx context.Context) (map[string]ui.NodeStatus, error) {
	ds, err := b.s.store.Devices(ctx)
	if err != nil {
		return nil, b.fail("list devices", err)
	}
	out := map[string]ui.NodeStatus{}
	for _, d := range ds {
		if st, ok := nodeStatus(d); ok {
			out[d.ID] = uiNodeStatus(st)
		}
	}
	return out, nil
}

// nodeStatus decodes a node's last report; ok is false when there is
// none (or it does not decode: the node's word is not trusted further).
func nodeStatus(d *store.Device) (st wire.NodeStatus, ok bool) {
	if d.Kind != store.KindNode || len(d.NodeStatus) == 0 {
		return st, false
	}
	return st, json.Unmarshal(d.NodeStatus, &st) == nil
}

func uiNodeStatus(st wire.NodeStatus) ui.NodeStatus {
	var out ui.NodeStatus
	for name, c := range st.Integrity {
		out.Integrity = append(out.Integrity, ui.ModelCheck{Model: name, OK: c.OK, Reason: c.Reason, Warning: c.Warning, Checked: c.Checked})
	}
	slices.SortFunc(out.Integrity, func(a, b ui.ModelCheck) int { return strings.Compare(a.Model, b.Model) })
	out.AtRest = uiAtRest(st.AtRest)
	if l := st.Lockdown; l != nil {
		out.Lockdown = &ui.Lockdown{Active: l.Active, Scope: l.Scope, Error: l.Error, Checked: l.Checked, Mode: l.Mode, Problem: l.Problem}
		for _, e := range l.Events {
			out.Lockdown.Events = append(out.Lockdown.Events, ui.LockdownEvent{Time: e.Time, Kind: e.Kind, Reason: e.Reason})
		}
		for _, d := range l.Dropped {
			out.Lockdown.Drops = append(out.Lockdown.Drops, ui.Drop{Category: d.Category, Packets: d.Packets, Bytes: d.Bytes})
		}
	}
	return out
}

// compileNodes compiles the policy for the live nodes alone.
func compileNodes(st *netmap.Snapshot) (*policy.Compiled, error) {
	var nodes []policy.Member
	for _, d := range st.Devices {
		if d.Kind == store.KindNode && st.Live(d) {
			nodes = append(nodes, st.Member(d))
		}
	}
	return st.Policy.Compile(nodes)
}

// servers returns, for each live node, the models the policy lets it
// serve of those it advertises.
func servers(st *netmap.Snapshot) (map[string][]string, error) {
	c, err := compileNodes(st)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]string, len(c.Members))
	for _, m := range c.Members {
		out[m.ID] = m.Serves
	}
	return out, nil
}

// Models lists the policy's models, then those only nodes advertise.
func (b uiBackend) Models(ctx context.Context) ([]ui.Model, error) {
	st, err := b.s.netmaps.Snapshot(ctx)
	if err != nil {
		return nil, b.fail("read the mesh", err)
	}
	serves, err := servers(st)
	if err != nil {
		return nil, b.fail("compile the policy", err)
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, b.fail("read who is online", err)
	}
	byName := map[string]*ui.Model{}
	var out []*ui.Model
	for _, m := range st.Policy.Models {
		um := &ui.Model{Name: m.Name, Description: m.Description, SHA256: m.SHA256, Declared: true, EncryptedAtRest: m.EncryptedAtRest}
		for _, g := range st.Policy.GrantsOf(m.Name) {
			um.Grants = append(um.Grants, uiGrant(g))
		}
		byName[m.Name] = um
		out = append(out, um)
	}
	var undeclared []*ui.Model
	for _, d := range st.Devices {
		if d.Kind != store.KindNode || d.Revoked {
			continue
		}
		status, _ := nodeStatus(d)
		for _, ad := range d.Models {
			um := byName[ad.Name]
			if um == nil {
				um = &ui.Model{Name: ad.Name}
				byName[ad.Name] = um
				undeclared = append(undeclared, um)
			}
			n := ui.ModelNode{ID: d.ID, Hostname: d.Hostname, Online: online[d.ID], Allowed: slices.Contains(serves[d.ID], ad.Name)}
			if !n.Allowed {
				n.Why = whyNotServed(st.Policy, d, ad)
			}
			if c, ok := status.Integrity[ad.Name]; ok && !c.OK {
				n.Stopped = c.Reason
			}
			n.AtRest = modelAtRest(status, ad.Name)
			um.Nodes = append(um.Nodes, n)
		}
	}
	slices.SortFunc(undeclared, func(a, b *ui.Model) int { return strings.Compare(a.Name, b.Name) })
	res := make([]ui.Model, 0, len(out)+len(undeclared))
	for _, m := range append(out, undeclared...) {
		slices.SortFunc(m.Nodes, func(a, b ui.ModelNode) int { return cmp.Compare(a.Hostname, b.Hostname) })
		res = append(res, *m)
	}
	return res, nil
}

// whyNotServed explains, for an admin, why the policy does not let node
// d serve the model it advertises as ad (policy.Compile decides it).
func whyNotServed(p *policy.Policy, d *store.Device, ad wire.ModelAd) string {
	i := slices.IndexFunc(p.Models, func(m policy.Model) bool { return m.Name == ad.Name })
	switch {
	case i < 0:
		return "the policy does not declare the model"
	case !slices.ContainsFunc(d.Tags, func(t string) bool { return slices.Contains(p.Models[i].ServedBy, t) }):
		return "it has none of the servedBy tags (" + strings.Join(p.Models[i].ServedBy, ", ") + ")"
	case p.Models[i].SHA256 != ad.SHA256:
		return "it does not verify the pinned sha256"
	}
	return "the node is not live"
}

// Access lists the models person userID may use, with the grants a
// request tries in order, as policy.Explain finds them.
func (b uiBackend) Access(ctx context.Context, userID string) ([]ui.ModelUse, error) {
	st, err := b.s.netmaps.Snapshot(ctx)
	if err != nil {
		return nil, b.fail("read the mesh", err)
	}
	u := st.Users[userID]
	if u == nil {
		return nil, fmt.Errorf("user %s: %w", userID, ui.ErrNotFound)
	}
	if u.Disabled {
		return nil, nil
	}
	serves, err := servers(st)
	if err != nil {
		return nil, b.fail("compile the policy", err)
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, b.fail("read who is online", err)
	}
	who := policy.Identity{Login: u.Email, Groups: u.Groups, Admin: u.Admin}
	var out []ui.ModelUse
	for _, m := range st.Policy.Models {
		e, err := st.Policy.Explain(who, "model:"+m.Name)
		if err != nil {
			return nil, b.fail("explain model access", err)
		}
		if !e.Allowed {
			continue
		}
		use := ui.ModelUse{Model: m.Name}
		for _, g := range e.Chain {
			use.Grants = append(use.Grants, uiGrant(g))
		}
		for id, names := range serves {
			if slices.Contains(names, m.Name) && online[id] {
				use.Nodes++
			}
		}
		out = append(out, use)
	}
	return out, nil
}

// Connection is the coordinator's public URL, its self-signed
// certificate's fingerprint if it has one, and the install command.
func (b uiBackend) Connection() ui.Connection {
	fp, _, _ := certPins(b.s.cfg.SelfSignedCert) // one that does not parse was logged at start
	return ui.Connection{URL: b.s.cfg.PublicURL, Fingerprint: fp, Install: b.s.installCommand()}
}

// uiGrant describes a grant's conditions in words.
func uiGrant(g *policy.Grant) ui.Grant {
	var terms []string
	if g.MFA != 0 {
		terms = append(terms, "MFA within "+g.MFA.Short())
	}
	l := g.Limits
	for _, t := range []struct {
		n    int64
		unit string
	}{{int64(l.RPM), "requests/min"}, {int64(l.TPM), "tokens/min"}, {int64(l.Concurrency), "requests at once"},
		{l.TokensPerDay, "tokens/day"}, {int64(l.MaxTokens), "max tokens per request"}} {
		if t.n != 0 {
			terms = append(terms, strconv.FormatInt(t.n, 10)+" "+t.unit)
		}
	}
	if v := g.Guard.Injection; v != "" && v != "off" {
		terms = append(terms, "prompt injection: "+v)
	}
	if len(g.Guard.Redact) > 0 {
		terms = append(terms, "redacts "+strings.Join(g.Guard.Redact, " and "))
	}
	if g.Guard.Links == "block-external" {
		terms = append(terms, "external links blocked")
	}
	if v := g.Audit.Prompts; v != "" && v != "off" {
		terms = append(terms, "prompts audited: "+v)
	}
	return ui.Grant{ID: g.ID(), Src: g.Src, Terms: terms}
}
