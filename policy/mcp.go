package policy

import "strings"

// MCPServer is one entry of "mcp": a Model Context Protocol tool server
// that mesh members may serve behind their guard.
type MCPServer struct {
	Name string
	// ServedBy lists the tags whose nodes may serve the server. A node
	// without one of them may not serve it, whatever it advertises.
	ServedBy []string
	// Description is free text for people.
	Description string
	// Egress lists what the server may reach when a node runs it as a
	// stdio server under the lockdown: "HOST:PORT" (a DNS name or an IP
	// address), an IP address or a network in CIDR form (any port).
	// Default: nothing but DNS.
	Egress []string
	Pos    Pos
}

// mcpPattern is one parsed entry of a grant's "mcp": SERVER:TOOLGLOB.
type mcpPattern struct {
	server string // a declared server name
	tool   string // a tool name or *-glob
	off    int    // offset of the pattern in the source, for errors
}

// MCPToolMatch reports whether tool matches the tool glob pattern, where
// each '*' stands for any run of characters. The guard uses it to apply
// MCPAccess.Tools.
func MCPToolMatch(pattern, tool string) bool { return globMatch(pattern, tool) }

// MCPRules is a member's share of the policy's MCP part: for a node, the
// servers it may serve and who may call which of their tools; for a
// caller, the servers it may use on each node.
type MCPRules struct {
	// Serves are the MCP servers this node advertises and may serve,
	// sorted.
	Serves []string `json:"serves,omitempty"`
	// Refused are those it advertises but may not serve: unknown to the
	// policy, or the node has none of their servedBy tags.
	Refused []string `json:"refused,omitempty"`
	// Uses lists, per node this member may call MCP servers on (sorted by
	// node), which servers.
	Uses []NodeServers `json:"uses,omitempty"`
	// Grants are the grants the entries of Access point into, in file
	// order.
	Grants []GrantRule `json:"grants,omitempty"`
	// Access lists, per caller (sorted by caller ID), the tools it may
	// call on this node.
	Access []MCPCallerAccess `json:"access,omitempty"`
	// Egress lists, for the servers in Serves whose entry declares any
	// (sorted by server), what each may reach.
	Egress []MCPEgress `json:"egress,omitempty"`
}

// MCPEgress is what one MCP server may reach (MCPServer.Egress).
type MCPEgress struct {
	Server string   `json:"server"`
	Dst    []string `json:"dst"`
}

// NodeServers names the MCP servers a caller may use on one node.
type NodeServers struct {
	Node    string   `json:"node"`
	Servers []string `json:"servers"`
}

// MCPCallerAccess is one caller's access to a node's MCP servers.
type MCPCallerAccess struct {
	Caller string      `json:"caller"`
	Access []MCPAccess `json:"access"`
}

// MCPAccess lets a caller call the tools of Server that match one of
// Tools under the grant at index Grant of MCPRules.Grants. Entries are
// sorted by server; the entries of one server are in the order a call
// tries them (most generous limits first): the first whose tools match
// and whose MFA requirement the caller meets applies.
type MCPAccess struct {
	Server string   `json:"server"`
	Tools  []string `json:"tools"`
	Grant  int      `json:"grant"`
}

// validToolPattern reports whether s is a tool name or glob: 1 to 128
// letters, digits, '_', '-', '.', '/' or '*'.
func validToolPattern(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-./*", c)) {
			return false
		}
	}
	return true
}
