package coordinator

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// nodeKeepAlive is the persistent keepalive towards nodes, in seconds, so
// that NAT mappings stay open for callers.
const nodeKeepAlive = 25

// meshState is everything netmaps are computed from, read from the store
// at one moment.
type meshState struct {
	devices []*store.Device
	users   map[string]*store.User
	policy  *policy.Policy
	now     time.Time
}

// live reports whether d takes part in the mesh at now: not revoked, not
// expired, and (for people's devices) owned by an enabled user.
func (s *meshState) live(d *store.Device) bool {
	if d.Revoked || (!d.Expiry.IsZero() && !s.now.Before(d.Expiry)) {
		return false
	}
	if d.Kind == store.KindNode {
		return true
	}
	u := s.users[d.UserID]
	return u != nil && !u.Disabled
}

// identity is what the mesh is told about the person or node behind d.
func (s *meshState) identity(d *store.Device) wire.Identity {
	id := wire.Identity{
		Tags: d.Tags, DeviceID: wire.DeviceID(d.ID), DeviceName: d.Hostname,
		LastMFA: d.LastMFA, Expiry: d.Expiry,
	}
	if u := s.users[d.UserID]; u != nil && d.Kind != store.KindNode {
		id.UserID, id.Login, id.Name, id.Groups, id.Admin = u.ID, u.Email, u.Name, u.Groups, u.Admin
	}
	return id
}

func (s *meshState) member(d *store.Device) policy.Member {
	m := policy.Member{ID: d.ID, Addresses: addrs(d)}
	if d.Kind == store.KindNode {
		m.Tags = d.Tags
		for _, ad := range d.Models {
			m.Models = append(m.Models, ad.Name)
		}
	} else if u := s.users[d.UserID]; u != nil {
		m.Login, m.Groups, m.Admin = u.Email, u.Groups, u.Admin
	}
	return m
}

func addrs(d *store.Device) []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{d.IPv4, d.IPv6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// netmaps computes the netmap of every live device (Seq and Created left
// for the caller) and the earliest future expiry among them, when a
// recompute will be due.
func (s *meshState) netmaps() (map[string]*wire.NetMap, time.Time, error) {
	byID := map[string]*store.Device{}
	var members []policy.Member
	var nextExpiry time.Time
	for _, d := range s.devices {
		if !s.live(d) {
			continue
		}
		byID[d.ID] = d
		members = append(members, s.member(d))
		if !d.Expiry.IsZero() && (nextExpiry.IsZero() || d.Expiry.Before(nextExpiry)) {
			nextExpiry = d.Expiry
		}
	}
	compiled, err := s.policy.Compile(members)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("compile policy: %w", err)
	}
	out := make(map[string]*wire.NetMap, len(byID))
	for id, d := range byID {
		nm, err := s.netmap(d, compiled.Member(id), compiled, byID)
		if err != nil {
			return nil, time.Time{}, err
		}
		out[id] = nm
	}
	return out, nextExpiry, nil
}

func (s *meshState) netmap(d *store.Device, mr *policy.MemberRules, all *policy.Compiled, byID map[string]*store.Device) (*wire.NetMap, error) {
	k, err := key.ParsePublic(d.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device %s: stored key: %w", d.ID, err)
	}
	nm := &wire.NetMap{Version: wire.Version, Self: wire.Self{Key: k, Addresses: addrs(d), Identity: s.identity(d)}}
	if d.Kind == store.KindNode {
		nm.Rules = mr.Rules
		if nm.Rules == nil {
			nm.Rules = &policy.NodeRules{}
		}
	}
	for _, pid := range mr.Peers {
		p, err := s.peer(byID[pid], d, mr, all)
		if err != nil {
			return nil, err
		}
		nm.Peers = append(nm.Peers, p)
	}
	return nm, nil
}

// peer describes device p as seen from self.
func (s *meshState) peer(p, self *store.Device, selfRules *policy.MemberRules, all *policy.Compiled) (wire.Peer, error) {
	k, err := key.ParsePublic(p.PublicKey)
	if err != nil {
		return wire.Peer{}, fmt.Errorf("device %s: stored key: %w", p.ID, err)
	}
	wp := wire.Peer{Key: k, Addresses: addrs(p), Endpoints: p.Endpoints, Identity: s.identity(p)}
	for _, u := range selfRules.Uses {
		if u.Node == p.ID {
			wp.Models = u.Models
		}
	}
	if self.Kind == store.KindNode {
		wp.Access = selfRules.AccessOf(p.ID)
	}
	if p.Kind == store.KindNode && self.Kind != store.KindNode {
		wp.KeepAlive = nodeKeepAlive
	}
	slices.Sort(wp.Models)
	return wp, nil
}
