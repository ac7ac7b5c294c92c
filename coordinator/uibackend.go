package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/moatmesh/moat/coordinator/netmap"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/ui"
)

// uiBackend is the coordinator as the web UI sees it (ui.Backend). It
// shares its logic with the admin API: changeDeviceAs, newEnrollKey and
// recordAs do the work and write the admin trail for both.
type uiBackend struct{ s *Server }

var _ ui.Backend = uiBackend{}

// maxOverviewAudit bounds the audit records the overview counts.
const maxOverviewAudit = 10000

func (b uiBackend) Viewer(r *http.Request) *ui.Viewer { return b.s.uiViewer(r) }

// Overview counts devices, nodes and models from the store and the
// requests of the last day from the audit store.
func (b uiBackend) Overview(ctx context.Context) (*ui.Overview, error) {
	ds, err := b.s.store.Devices(ctx)
	if err != nil {
		return nil, b.fail("list devices", err)
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, b.fail("read who is online", err)
	}
	now := b.s.cfg.Now()
	o := &ui.Overview{Hourly: make([]int, 24), HourlyRefused: make([]int, 24)}
	if p, since := b.s.auth.health.Problem(); p != "" {
		o.IdPProblem = fmt.Sprintf("since %s: %s", stamp(since), p)
	}
	models := map[string]bool{}
	for _, d := range ds {
		switch {
		case d.Revoked:
		case d.Kind == store.KindNode:
			o.Nodes++
			for _, m := range d.Models {
				models[m.Name] = m.API != wire.APIMCP // an MCP server is no model
			}
		case !d.Expired(now):
			o.Devices++
			if online[d.ID] {
				o.DevicesOnline++
			}
		}
	}
	for _, isModel := range models {
		if isModel {
			o.Models++
		}
	}
	recs, err := b.s.store.Audit(ctx, store.AuditFilter{Since: now.Add(-24 * time.Hour), Limit: maxOverviewAudit})
	if err != nil {
		return nil, b.fail("query audit records", err)
	}
	o.Capped = len(recs) == maxOverviewAudit
	for _, r := range recs {
		if r.API == wire.APIMCP {
			continue // tool calls, not model requests
		}
		age := now.Sub(r.Time)
		refused := r.Decision != "allow"
		o.RequestsDay++
		if refused {
			o.RefusalsDay++
		}
		if age < time.Hour {
			o.RequestsHour++
			if refused {
				o.RefusalsHour++
			}
		}
		if i := 23 - int(age/time.Hour); i >= 0 && i < 24 {
			o.Hourly[i]++
			if refused {
				o.HourlyRefused[i]++
			}
		}
	}
	return o, nil
}

// Devices lists people's live (not revoked) devices with their owners.
func (b uiBackend) Devices(ctx context.Context) ([]ui.Device, error) {
	ds, err := b.s.store.Devices(ctx)
	if err != nil {
		return nil, b.fail("list devices", err)
	}
	email, err := b.emails(ctx)
	if err != nil {
		return nil, err
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, b.fail("read who is online", err)
	}
	paths, err := b.memberPaths(ctx, ds)
	if err != nil {
		return nil, err
	}
	var out []ui.Device
	for _, d := range ds {
		if d.Kind == store.KindNode || d.Revoked {
			continue
		}
		out = append(out, ui.Device{ID: d.ID, Hostname: d.Hostname, OS: d.OS, OwnerID: d.UserID, Owner: email[d.UserID],
			Addresses: addrStrings(d), Expiry: d.Expiry, LastSeen: d.LastSeen, Online: online[d.ID], Kind: string(d.Kind), Software: d.Software, Paths: paths[d.ID]})
	}
	return out, nil
}

// RevokeDevice revokes a person's device as the admin API does; nodes
// are revoked from the nodes page.
func (b uiBackend) RevokeDevice(ctx context.Context, actor *ui.Viewer, id string) error {
	return b.changeDevice(ctx, actor, id, "device.revoke", revokeDevice, func(d *store.Device) bool { return d.Kind != store.KindNode })
}

// Nodes lists the nodes and the enrollment keys.
func (b uiBackend) Nodes(ctx context.Context) ([]ui.Node, []ui.EnrollKey, error) {
	ds, err := b.s.store.Devices(ctx)
	if err != nil {
		return nil, nil, b.fail("list devices", err)
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, nil, b.fail("read who is online", err)
	}
	paths, err := b.memberPaths(ctx, ds)
	if err != nil {
		return nil, nil, err
	}
	creds, err := b.s.store.CurrentNodeCredentials(ctx)
	if err != nil {
		return nil, nil, b.fail("list node credentials", err)
	}
	var nodes []ui.Node
	for _, d := range ds {
		if d.Kind != store.KindNode {
			continue
		}
		n := ui.Node{ID: d.ID, Hostname: d.Hostname, Tags: d.Tags, Addresses: addrStrings(d), LastSeen: d.LastSeen, Software: d.Software,
			Online: online[d.ID], Revoked: d.Revoked, Paths: paths[d.ID], Expiry: d.Expiry}
		if c := creds[d.ID]; c != nil {
			n.KeyIssued, n.KeyExpiry, n.KeyAge = c.Issued, c.Expires, b.s.cfg.Now().Sub(c.Issued)
		}
		for _, m := range d.Models {
			if m.API == wire.APIMCP {
				n.MCP = append(n.MCP, m.Name)
			} else {
				n.Models = append(n.Models, m.Name)
			}
		}
		nodes = append(nodes, n)
	}
	ks, err := b.s.store.EnrollKeys(ctx)
	if err != nil {
		return nil, nil, b.fail("list enrollment keys", err)
	}
	email, err := b.emails(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys := make([]ui.EnrollKey, 0, len(ks))
	for _, k := range ks {
		keys = append(keys, ui.EnrollKey{ID: k.ID, Tags: k.Tags, Reusable: k.Reusable, Expiry: k.Expiry,
			Uses: k.Uses, Revoked: k.Revoked, CreatedBy: actorName(k.CreatedBy, email)})
	}
	return nodes, keys, nil
}

// CreateEnrollKey makes a key as the admin API does and returns the
// install command that uses it.
func (b uiBackend) CreateEnrollKey(ctx context.Context, actor *ui.Viewer, tags []string, reusable bool, ttl time.Duration) (*ui.NewKey, error) {
	k, secret, err := b.s.newEnrollKey(ctx, actor.ID, tags, reusable, ttl)
	var refusal *userError
	if errors.As(err, &refusal) {
		return nil, &ui.UserError{Msg: refusal.msg}
	}
	if err != nil {
		return nil, b.fail("create enrollment key", err)
	}
	return &ui.NewKey{ID: k.ID, Secret: secret, Install: b.s.installCommand(), Expiry: k.Expiry}, nil
}

// emails maps user IDs to emails and "token:ID" actors to API token names.
func (b uiBackend) emails(ctx context.Context) (map[string]string, error) {
	us, err := b.s.store.Users(ctx)
	if err != nil {
		return nil, b.fail("list users", err)
	}
	ts, err := b.s.store.APITokens(ctx)
	if err != nil {
		return nil, b.fail("list API tokens", err)
	}
	m := make(map[string]string, len(us)+len(ts))
	for _, u := range us {
		m[u.ID] = u.Email
	}
	for _, t := range ts {
		m["token:"+t.ID] = "API token “" + t.Name + "”"
	}
	return m, nil
}

// actorName is how the UI names actor, a user id or "token:ID" as the
// admin trail records it: an email, an API token's name, or actor itself.
func actorName(actor string, names map[string]string) string {
	return cmp.Or(names[actor], actor)
}

// fail logs an unexpected error for the UI, which shows a generic message.
func (b uiBackend) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	b.s.log.Error("ui: "+op, "err", err)
	return fmt.Errorf("%s: %w", op, err)
}

// addrStrings is a device's mesh addresses as text.
func addrStrings(d *store.Device) []string {
	var out []string
	for _, a := range netmap.Addresses(d) {
		out = append(out, a.String())
	}
	return out
}
