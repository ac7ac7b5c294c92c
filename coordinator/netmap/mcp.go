package netmap

import (
	"slices"
	"strconv"
	"strings"

	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/policy"
)

// mcpView is what one viewer's netmap says about one peer's MCP servers.
type mcpView struct {
	servers []string           // the peer's servers the viewer may call
	access  []policy.MCPAccess // in a node's netmap: the tools the peer may call there
}

// mcpViewOf returns what viewer mr is told about peer pid.
func mcpViewOf(mr *policy.MemberRules, pid string) mcpView {
	var v mcpView
	if mr.MCP == nil {
		return v
	}
	if i, ok := slices.BinarySearchFunc(mr.MCP.Uses, pid, func(u policy.NodeServers, id string) int { return strings.Compare(u.Node, id) }); ok {
		v.servers = mr.MCP.Uses[i].Servers
	}
	if i, ok := slices.BinarySearchFunc(mr.MCP.Access, pid, func(a policy.MCPCallerAccess, id string) int { return strings.Compare(a.Caller, id) }); ok {
		v.access = mr.MCP.Access[i].Access
	}
	return v
}

// appendKey appends v to a peer fragment's cache key.
func (v mcpView) appendKey(ck []byte) []byte {
	if len(v.servers) == 0 && len(v.access) == 0 {
		return ck
	}
	ck = append(ck, '|', 'm')
	for _, s := range v.servers {
		ck = appendKeyPart(ck, s)
	}
	for _, a := range v.access {
		ck = strconv.AppendInt(appendKeyPart(append(ck, '/'), a.Server), int64(a.Grant), 10)
		for _, t := range a.Tools {
			ck = appendKeyPart(ck, t)
		}
	}
	return ck
}

// apply sets the MCP fields of wp.
func (v mcpView) apply(wp *wire.Peer) {
	wp.MCP = v.servers
	for _, a := range v.access {
		wp.MCPAccess = append(wp.MCPAccess, wire.MCPAccess(a))
	}
}

// withMCPGrants adds a node's MCP grants to its wire rules.
func withMCPGrants(r *wire.NodeRules, m *policy.MCPRules) *wire.NodeRules {
	if m == nil {
		return r
	}
	for _, g := range m.Grants {
		r.MCPGrants = append(r.MCPGrants, wireGrant(g))
	}
	for _, e := range m.Egress {
		r.MCPEgress = append(r.MCPEgress, wire.MCPEgress(e))
	}
	return r
}
