package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Member is one mesh member the policy is applied to: a person's device
// (Login set, no Tags) or a tagged device such as a GPU node.
type Member struct {
	// ID identifies the member in the output; unique and non-empty.
	ID string `json:"id"`
	Identity
	// Addresses are the member's mesh addresses; the packet filters of the
	// nodes it may reach list them as sources.
	Addresses []netip.Addr `json:"addresses,omitempty"`
	// Models are the models the member advertises, if it is a node.
	Models []string `json:"models,omitempty"`
	// Pins maps an advertised model to the sha256 the node verifies its
	// weights against (absent: none). A model the policy pins is served
	// only by nodes that verify exactly that pin.
	Pins map[string]string `json:"pins,omitempty"`
	// MCP are the MCP servers the member advertises, if it is a node.
	MCP []string `json:"mcp,omitempty"`
}

// Compiled is a policy applied to a set of members: everything the
// coordinator puts into their netmaps.
type Compiled struct {
	// Members holds one entry per input member, sorted by ID.
	Members []MemberRules `json:"members"`
}

// Member returns the rules for the member with the given ID, or nil.
func (c *Compiled) Member(id string) *MemberRules {
	i, ok := slices.BinarySearchFunc(c.Members, id, func(m MemberRules, id string) int { return strings.Compare(m.ID, id) })
	if !ok {
		return nil
	}
	return &c.Members[i]
}

// MemberRules is what one member may do and must enforce.
type MemberRules struct {
	ID string `json:"id"`
	// Peers are the IDs of the members this one may exchange packets with,
	// sorted. The relation is symmetric: a device sees a node exactly when
	// the node sees the device. A member with no grant towards another
	// never learns its key.
	Peers []string `json:"peers,omitempty"`
	// peerIndex are the positions of Peers in Compiled.Members.
	peerIndex []int
	// Uses lists, for each peer that serves this member models, which ones
	// (sorted by node, then model): the client's router table.
	Uses []NodeModels `json:"uses,omitempty"`

	// Serves are the models this node advertises and may serve, sorted.
	Serves []string `json:"serves,omitempty"`
	// Refused are the models it advertises but may not serve: unknown to
	// the policy, the node has none of their servedBy tags, or the policy
	// pins a sha256 the node does not verify.
	Refused []string `json:"refused,omitempty"`
	// Rules are set for every tagged member: the grants Access points into
	// and the packet filter for mesh traffic. Empty rules mean "accept
	// nothing".
	Rules *NodeRules `json:"rules,omitempty"`
	// Access lists, per caller, the models it may use on this node and
	// under which grants, sorted by caller ID. See ModelAccess for the
	// order of entries.
	Access []CallerAccess `json:"access,omitempty"`
	// MCP is the member's share of the MCP part of the policy; nil when
	// it neither serves nor may use an MCP server.
	MCP *MCPRules `json:"mcp,omitempty"`
}

// AccessOf returns the model access of caller on this node, or nil.
func (m *MemberRules) AccessOf(caller string) []ModelAccess {
	i, ok := slices.BinarySearchFunc(m.Access, caller, func(a CallerAccess, id string) int { return strings.Compare(a.Caller, id) })
	if !ok {
		return nil
	}
	return m.Access[i].Access
}

// PeerIndex returns the positions in Compiled.Members of the members
// Peers names, in the same order. Treat it as read-only.
func (m *MemberRules) PeerIndex() []int { return m.peerIndex }

// NodeModels names the models a caller may use on one node.
type NodeModels struct {
	Node   string   `json:"node"`
	Models []string `json:"models"`
}

// CallerAccess is one caller's access to a node's models.
type CallerAccess struct {
	Caller string `json:"caller"`
	// Access holds, for each model, the grants a request tries in order:
	// the first whose MFA requirement the caller meets applies. Entries
	// are sorted by model; one model may have several.
	// Access may be shared with other callers of the same class (same
	// grants); treat it as read-only.
	Access []ModelAccess `json:"access"`
}

// Compile applies the policy to members. The result depends only on its
// inputs, and its order only on member IDs and model names. It fails only
// for malformed input: an empty or repeated member ID.
func (p *Policy) Compile(members []Member) (*Compiled, error) {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	for i := range ms {
		if ms[i].ID == "" {
			return nil, fmt.Errorf("compile policy: member with login %q and tags %v has no ID", ms[i].Login, ms[i].Tags)
		}
		if i > 0 && ms[i].ID == ms[i-1].ID {
			return nil, fmt.Errorf("compile policy: member ID %q appears twice", ms[i].ID)
		}
	}
	c := newCompiler(p, ms)
	c.models()
	for n := range ms {
		if len(ms[n].Tags) > 0 {
			c.node(n)
		}
	}
	c.mcp()
	return c.result(), nil
}
