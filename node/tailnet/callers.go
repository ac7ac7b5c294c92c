package tailnet

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	tskey "tailscale.com/types/key"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/mesh/wirepolicy"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/policy"
)

// selfID is the node's member ID when the policy is compiled.
const selfID = "self"

// caller is one tailnet peer that has called the guard, as WhoIs named it.
type caller struct {
	key   tskey.NodePublic
	addrs []netip.Addr
	id    wire.Identity
}

// same reports whether c and o would give the guard the same netmap entry.
func (c *caller) same(o *caller) bool {
	return c.key == o.key && slices.Equal(c.addrs, o.addrs) && c.id.Login == o.id.Login && c.id.Name == o.id.Name &&
		slices.Equal(c.id.Tags, o.id.Tags) && slices.Equal(c.id.Groups, o.id.Groups) && c.id.Expiry.Equal(o.id.Expiry) &&
		c.id.DeviceName == o.id.DeviceName
}

// netmapSink is the part of the guard the table drives.
type netmapSink interface {
	SetNetMap(*wire.NetMap) error
}

// callers is the table of the callers the guard knows, compiled against
// the local policy (or mapped through the coordinator's view, with pol
// nil) into the netmap the guard enforces. Callers enter it
// when they connect (WhoIs of the source address) and leave or change
// when the tailnet's netmap says so.
type callers struct {
	pol    *policy.Policy
	models []node.Model
	sink   netmapSink

	mu struct {
		sync.Mutex
		self  wire.Self
		peers map[tskey.NodePublic]*caller
		seq   uint64
		// view is the coordinator's map when the node is enrolled (pol
		// nil; enrolled.go); people indexes its People by login.
		view   *wire.TailnetMap
		people map[string]int
	}
}

func newCallers(pol *policy.Policy, models []node.Model, sink netmapSink) *callers {
	t := &callers{pol: pol, models: models, sink: sink}
	t.mu.peers = map[tskey.NodePublic]*caller{}
	return t
}

// setSelf records the node's own identity and recompiles.
func (t *callers) setSelf(s wire.Self) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.mu.self = s
	return t.applyLocked()
}

// put adds or replaces c (and drops any other caller holding one of its
// addresses: the tailnet gave it to c), recompiling when that changed
// anything.
func (t *callers) put(c *caller) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.mu.peers[c.key]; old != nil && old.same(c) {
		return nil
	}
	for k, o := range t.mu.peers {
		if k != c.key && overlaps(o.addrs, c.addrs) {
			delete(t.mu.peers, k)
		}
	}
	t.mu.peers[c.key] = c
	return t.applyLocked()
}

// drop removes the caller with key k, recompiling if it was known.
func (t *callers) drop(k tskey.NodePublic) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.peers[k] == nil {
		return nil
	}
	delete(t.mu.peers, k)
	return t.applyLocked()
}

// keys returns the keys of the known callers.
func (t *callers) keys() []tskey.NodePublic {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]tskey.NodePublic, 0, len(t.mu.peers))
	for k := range t.mu.peers {
		out = append(out, k)
	}
	return out
}

// applyLocked compiles the policy for the node and its callers and gives
// the guard the result.
func (t *callers) applyLocked() error {
	nm, err := t.netmapLocked()
	if err != nil {
		return err
	}
	return t.sink.SetNetMap(nm)
}

func (t *callers) netmapLocked() (*wire.NetMap, error) {
	if t.pol == nil {
		return t.viewNetmapLocked(), nil
	}
	self := t.mu.self
	members := []policy.Member{t.selfMember()}
	peers := make([]*caller, 0, len(t.mu.peers))
	for _, c := range t.mu.peers {
		peers = append(peers, c)
		members = append(members, policy.Member{ID: string(c.id.DeviceID), Addresses: c.addrs,
			Identity: policy.Identity{Login: c.id.Login, Groups: c.id.Groups, Tags: c.id.Tags}})
	}
	compiled, err := t.pol.Compile(members)
	if err != nil {
		return nil, fmt.Errorf("tailnet: compile the policy: %w", err)
	}
	mr := compiled.Member(selfID)
	t.mu.seq++
	nm := &wire.NetMap{Version: wire.Version, Seq: t.mu.seq, Created: time.Now(), Self: self, Rules: wirepolicy.Rules(mr.Rules)}
	for _, c := range peers {
		nm.Peers = append(nm.Peers, wire.Peer{Key: key.PublicFromRaw(c.key.Raw32()), Addresses: c.addrs, Identity: c.id,
			Access: wirepolicy.Access(mr.AccessOf(string(c.id.DeviceID)))})
	}
	return nm, nil
}

// selfMember is the node as the policy compiler sees it: its tailnet tags
// and the models it serves, with their pins.
func (t *callers) selfMember() policy.Member {
	m := policy.Member{ID: selfID, Identity: policy.Identity{Tags: t.mu.self.Identity.Tags}}
	for _, md := range t.models {
		m.Models = append(m.Models, md.Name)
		if md.SHA256 != "" {
			if m.Pins == nil {
				m.Pins = map[string]string{}
			}
			m.Pins[md.Name] = md.SHA256
		}
	}
	return m
}

// served reports the models the policy lets this node serve and those it
// refuses, for the log.
func (t *callers) served() (serves, refused []string, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	compiled, err := t.pol.Compile([]policy.Member{t.selfMember()})
	if err != nil {
		return nil, nil, err
	}
	mr := compiled.Member(selfID)
	return mr.Serves, mr.Refused, nil
}

func overlaps(a, b []netip.Addr) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}
