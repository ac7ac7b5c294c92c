package guard

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// caller is one peer of the netmap as the guard knows it.
type caller struct {
	id wire.Identity
	// key identifies the peer in the guard table (its public key).
	key string
	// limitKey is whose limits the caller's requests count against: the
	// person for people's devices, the device for tagged callers.
	limitKey string
	// models are the models the peer has access entries for and this node
	// serves, sorted.
	models []string
	// grants are the grants of those entries, each once: the limits that
	// can apply to the caller's model requests here.
	grants []*policy.GrantRule
}

// snapshot is everything the guard reads per request from one netmap. It
// is built once per netmap and never modified.
type snapshot struct {
	seq     uint64
	created time.Time // the netmap's
	callers map[netip.Addr]*caller
	table   *policy.GuardTable
	rules   *policy.NodeRules // nm.Rules, as the policy package reads them
	// output holds each served model's output rule under a grant without
	// maxTokens; a model not in it has the defaults.
	output map[string]outputRule
}

// buildSnapshot compiles nm for a node serving served.
func buildSnapshot(nm *wire.NetMap, served map[string]*upstream) (*snapshot, error) {
	s := &snapshot{seq: nm.Seq, created: nm.Created, callers: make(map[netip.Addr]*caller, 2*len(nm.Peers)), rules: policyRules(nm.Rules)}
	access := make(map[string][]policy.ModelAccess, len(nm.Peers))
	for i := range nm.Peers {
		p := &nm.Peers[i]
		c := newCaller(p, served, s.rules)
		access[c.key] = policyAccess(p.Access)
		for _, a := range p.Addresses {
			a = a.Unmap()
			if _, dup := s.callers[a]; dup {
				return nil, fmt.Errorf("guard: netmap %d: address %s belongs to two peers", nm.Seq, a)
			}
			s.callers[a] = c
		}
	}
	t, err := policy.NewGuardTable(s.rules, access)
	if err != nil {
		return nil, fmt.Errorf("guard: netmap %d: %w", nm.Seq, err)
	}
	s.table = t
	s.output = outputRules(s.rules)
	return s, nil
}

func newCaller(p *wire.Peer, served map[string]*upstream, rules *policy.NodeRules) *caller {
	c := &caller{id: p.Identity, key: p.Key.String(), limitKey: LimitKey(p)}
	for _, a := range p.Access {
		if served[a.Model] == nil {
			continue
		}
		if !slices.Contains(c.models, a.Model) {
			c.models = append(c.models, a.Model)
		}
		if rules != nil && a.Grant >= 0 && a.Grant < len(rules.Grants) && !slices.Contains(c.grants, &rules.Grants[a.Grant]) {
			c.grants = append(c.grants, &rules.Grants[a.Grant]) // out of range: the netmap is refused anyway
		}
	}
	slices.Sort(c.models)
	return c
}

// lookup returns the caller behind a connection's remote address
// ("ip:port" as the listener reports it), or nil.
func (s *snapshot) lookup(remoteAddr string) *caller {
	a, ok := PeerAddr(remoteAddr)
	if s == nil || !ok {
		return nil
	}
	return s.callers[a]
}

// who names a caller in messages: the person's login, else the device.
func (c *caller) who() string { return Who(&c.id) }
