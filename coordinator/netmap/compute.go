package netmap

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// nodeKeepAlive is the persistent keepalive towards nodes, in seconds, so
// that NAT mappings stay open for callers.
const nodeKeepAlive = 25

// Snapshot is everything netmaps are computed from, read from the store
// at one moment. It is also how the web UI sees the mesh.
type Snapshot struct {
	Devices []*store.Device
	Users   map[string]*store.User // by ID
	// PromptKeys are people's public prompt keys by user ID; a person
	// without one (not made yet, or erased) has no prompt kept by nodes.
	PromptKeys map[string][]byte
	Policy     *policy.Policy
	Now        time.Time
}

// Live reports whether d takes part in the mesh at the snapshot's time
// (see store.Device.Liveness).
func (s *Snapshot) Live(d *store.Device) bool {
	return d.Liveness(s.Users[d.UserID], s.Now) == store.DeviceLive
}

// identity is what the mesh is told about the person or node behind d.
func (s *Snapshot) identity(d *store.Device) wire.Identity {
	id := wire.Identity{
		Tags: d.Tags, DeviceID: wire.DeviceID(d.ID), DeviceName: d.Hostname,
		LastMFA: d.LastMFA, MFAMethod: d.MFAMethod, Expiry: d.Expiry,
	}
	if u := s.Users[d.UserID]; u != nil && d.Kind != store.KindNode {
		id.UserID, id.Login, id.Name, id.Groups, id.Admin = u.ID, u.Email, u.Name, u.Groups, u.Admin
		id.PromptKey = s.PromptKeys[u.ID]
	}
	return id
}

// Member is d as the policy compiler sees it.
func (s *Snapshot) Member(d *store.Device) policy.Member {
	m := policy.Member{ID: d.ID, Addresses: Addresses(d)}
	if d.Kind == store.KindNode {
		m.Tags = d.Tags
		for _, ad := range d.Models {
			if ad.API == wire.APIMCP {
				m.MCP = append(m.MCP, ad.Name)
				continue
			}
			m.Models = append(m.Models, ad.Name)
			if ad.SHA256 != "" {
				if m.Pins == nil {
					m.Pins = map[string]string{}
				}
				m.Pins[ad.Name] = ad.SHA256
			}
		}
	} else if u := s.Users[d.UserID]; u != nil {
		m.Login, m.Groups, m.Admin = u.Email, u.Groups, u.Admin
	}
	return m
}

// Addresses returns d's mesh addresses, IPv4 first.
func Addresses(d *store.Device) []netip.Addr {
	var out []netip.Addr
	for _, a := range []netip.Addr{d.IPv4, d.IPv6} {
		if a.IsValid() {
			out = append(out, a)
		}
	}
	return out
}

// frames computes the netmap of every live device that want names (all
// of them when want is nil), encoded as frames whose peer entries are
// shared: each peer is encoded once per distinct view of it (a node seen
// with the same models, a caller with the same access), not once per
// device that sees it. It also returns the set of live devices and the
// earliest future expiry, when a recompute will be due.
func (s *Snapshot) frames(want map[string]bool) (map[string]*frame, map[string]bool, time.Time, error) {
	byID := map[string]*store.Device{}
	var members []policy.Member
	var nextExpiry time.Time
	for _, d := range s.Devices {
		if !s.Live(d) {
			continue
		}
		byID[d.ID] = d
		members = append(members, s.Member(d))
		if !d.Expiry.IsZero() && (nextExpiry.IsZero() || d.Expiry.Before(nextExpiry)) {
			nextExpiry = d.Expiry
		}
	}
	compiled, err := s.Policy.Compile(members)
	if err != nil {
		return nil, nil, time.Time{}, fmt.Errorf("compile policy: %w", err)
	}
	enc := &encoder{s: s, byID: byID, frags: map[string]fragment{}, keys: map[string]key.Public{}}
	n := len(byID)
	if want != nil {
		n = min(n, len(want))
	}
	out := make(map[string]*frame, n)
	live := make(map[string]bool, len(byID))
	for id, d := range byID {
		live[id] = true
		if want != nil && !want[id] {
			continue
		}
		f, err := enc.frame(d, compiled.Member(id))
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		out[id] = f
	}
	return out, live, nextExpiry, nil
}

// encoder builds frames for one recompute, caching encoded peers.
type encoder struct {
	s     *Snapshot
	byID  map[string]*store.Device
	frags map[string]fragment
	keys  map[string]key.Public
	buf   []byte // scratch for cache keys
}

// fragment is one encoded JSON value and its digest; for a peer entry,
// also the device it describes.
type fragment struct {
	json   []byte
	digest [sha256.Size]byte
	device string
}

func newFragment(v any) (fragment, error) {
	b, err := json.Marshal(v)
	return fragment{json: b, digest: sha256.Sum256(b)}, err
}

func (e *encoder) key(d *store.Device) (key.Public, error) {
	if k, ok := e.keys[d.ID]; ok {
		return k, nil
	}
	k, err := key.ParsePublic(d.PublicKey)
	if err != nil {
		return k, fmt.Errorf("device %s: stored key: %w", d.ID, err)
	}
	e.keys[d.ID] = k
	return k, nil
}

func (e *encoder) frame(d *store.Device, mr *policy.MemberRules) (*frame, error) {
	k, err := e.key(d)
	if err != nil {
		return nil, err
	}
	f := &frame{peers: make([]fragment, 0, len(mr.Peers))}
	if f.self, err = newFragment(wire.Self{Key: k, Addresses: Addresses(d), Identity: e.s.identity(d)}); err != nil {
		return nil, err
	}
	if d.Kind == store.KindNode {
		if f.rules, err = newFragment(withMCPGrants(wireRules(mr.Rules), mr.MCP)); err != nil {
			return nil, err
		}
	}
	// Peers, Uses and Access are all sorted by member ID: walk them together.
	ui, ai := 0, 0
	for _, pid := range mr.Peers {
		p := e.byID[pid]
		var models []string
		for ui < len(mr.Uses) && mr.Uses[ui].Node < pid {
			ui++
		}
		if ui < len(mr.Uses) && mr.Uses[ui].Node == pid {
			models = mr.Uses[ui].Models
		}
		var access []policy.ModelAccess
		for d.Kind == store.KindNode && ai < len(mr.Access) && mr.Access[ai].Caller < pid {
			ai++
		}
		if d.Kind == store.KindNode && ai < len(mr.Access) && mr.Access[ai].Caller == pid {
			access = mr.Access[ai].Access
		}
		frag, err := e.peer(p, models, access, mcpViewOf(mr, pid), p.Kind == store.KindNode && d.Kind != store.KindNode)
		if err != nil {
			return nil, err
		}
		f.peers = append(f.peers, frag)
	}
	f.seal()
	return f, nil
}

// peer encodes device p as one viewer sees it, reusing an earlier
// encoding of the same view.
func (e *encoder) peer(p *store.Device, models []string, access []policy.ModelAccess, mcp mcpView, keepAlive bool) (fragment, error) {
	// Every part is length-prefixed: names may contain any separator.
	ck := appendKeyPart(e.buf[:0], p.ID)
	for _, m := range models {
		ck = appendKeyPart(ck, m)
	}
	ck = append(ck, '|')
	for _, a := range access {
		ck = strconv.AppendInt(appendKeyPart(ck, a.Model), int64(a.Grant), 10)
	}
	ck = mcp.appendKey(ck)
	if keepAlive {
		ck = append(ck, '|', 'k')
	}
	e.buf = ck
	if f, ok := e.frags[string(ck)]; ok {
		return f, nil
	}
	k, err := e.key(p)
	if err != nil {
		return fragment{}, err
	}
	wp := wire.Peer{Key: k, Addresses: Addresses(p), Endpoints: p.Endpoints, Identity: e.s.identity(p), Models: slices.Sorted(slices.Values(models)), APIs: modelAPIs(p, models), Access: wireAccess(access)}
	mcp.apply(&wp)
	if keepAlive {
		wp.KeepAlive = nodeKeepAlive
	}
	f, err := newFragment(wp)
	if err != nil {
		return f, err
	}
	f.device = p.ID
	e.frags[string(ck)] = f
	return f, nil
}

// modelAPIs is the API family of each of models as node p advertised it.
func modelAPIs(p *store.Device, models []string) map[string]string {
	var out map[string]string
	for _, ad := range p.Models {
		if ad.API != "" && ad.API != wire.APIMCP && slices.Contains(models, ad.Name) {
			if out == nil {
				out = map[string]string{}
			}
			out[ad.Name] = ad.API
		}
	}
	return out
}

// appendKeyPart appends v to a cache key as LEN:v, so that no choice of
// names can make two different views share a key.
func appendKeyPart(b []byte, v string) []byte {
	b = strconv.AppendInt(b, int64(len(v)), 10)
	return append(append(b, ':'), v...)
}
