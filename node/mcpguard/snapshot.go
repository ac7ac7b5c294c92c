package mcpguard

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/guard"
	"github.com/moatmesh/moat/node/screen"
	"github.com/moatmesh/moat/policy"
)

// grant is one MCP grant of the netmap as the guard enforces it.
type grant struct {
	rule   policy.GrantRule
	screen *screen.Screen // nil: screens nothing
}

// caller is one peer of the netmap as the guard knows it.
type caller struct {
	id       wire.Identity
	key      string // the peer's WireGuard key: what sessions are bound to
	limitKey string // whose limits calls count against
	access   map[string][]access
}

// access is one MCPAccess entry, resolved.
type access struct {
	tools []string
	grant *grant
}

// snapshot is what the guard reads per request from one netmap; it is
// never modified once built.
type snapshot struct {
	seq     uint64
	callers map[netip.Addr]*caller
}

// buildSnapshot compiles nm. A grant whose screening settings do not
// compile fails the netmap: the previous one stays in force.
func buildSnapshot(nm *wire.NetMap, linkAllow []string) (*snapshot, error) {
	var grants []*grant
	if nm.Rules != nil {
		for _, g := range nm.Rules.MCPGrants {
			pg := guard.PolicyGrant(g)
			scr, err := screen.Compile(screen.FromGuard(pg.Guard, linkAllow))
			if err != nil {
				return nil, fmt.Errorf("mcpguard: netmap %d: %s: %w", nm.Seq, g.ID, err)
			}
			grants = append(grants, &grant{rule: pg, screen: scr})
		}
	}
	s := &snapshot{seq: nm.Seq, callers: map[netip.Addr]*caller{}}
	for i := range nm.Peers {
		p := &nm.Peers[i]
		c := &caller{id: p.Identity, key: p.Key.String(), limitKey: guard.LimitKey(p), access: map[string][]access{}}
		for _, a := range p.MCPAccess {
			if a.Grant < 0 || a.Grant >= len(grants) {
				return nil, fmt.Errorf("mcpguard: netmap %d: peer %s: MCP grant %d does not exist", nm.Seq, c.key, a.Grant)
			}
			c.access[a.Server] = append(c.access[a.Server], access{tools: a.Tools, grant: grants[a.Grant]})
		}
		for _, a := range p.Addresses {
			s.callers[a.Unmap()] = c
		}
	}
	return s, nil
}

// lookup returns the caller behind a connection's remote address, or nil.
func (s *snapshot) lookup(remoteAddr string) *caller {
	a, ok := guard.PeerAddr(remoteAddr)
	if s == nil || !ok {
		return nil
	}
	return s.callers[a]
}

// who names a caller in messages.
func (c *caller) who() string { return guard.Who(&c.id) }

// mayList reports whether any grant names tool of server for the caller.
func (c *caller) mayList(server, tool string) bool {
	for _, a := range c.access[server] {
		if matchAny(a.tools, tool) {
			return true
		}
	}
	return false
}

// decide returns the grant a call of tool on server applies under: the
// first matching entry whose MFA requirement the caller meets. named
// reports whether any entry names the tool at all (false: not granted;
// true with a nil grant: the caller's MFA is too old).
func (c *caller) decide(server, tool string, now time.Time) (g *grant, named bool) {
	for _, a := range c.access[server] {
		if !matchAny(a.tools, tool) {
			continue
		}
		named = true
		if mfa := time.Duration(a.grant.rule.MFA); mfa == 0 || (!c.id.LastMFA.IsZero() && now.Sub(c.id.LastMFA) <= mfa) {
			return a.grant, true
		}
	}
	return nil, named
}

func matchAny(patterns []string, tool string) bool {
	for _, p := range patterns {
		if policy.MCPToolMatch(p, tool) {
			return true
		}
	}
	return false
}
