package wire

import "fmt"

// APIMCP is the ModelAd.API of an MCP server a node advertises: the ad
// names the server, not a model. A coordinator from before MCP takes it
// for a model of that name, which its policy does not declare, so the
// server is refused rather than misrouted.
const APIMCP = "mcp"

// MCPAccess says that a caller may call the tools of Server on the
// receiving node whose names match one of Tools (names or *-globs) under
// the grant at index Grant of NodeRules.MCPGrants. A caller's entries for
// one server are in the order a call tries them: the first whose tools
// match and whose MFA requirement the caller meets applies.
type MCPAccess struct {
	Server string   `json:"server"`
	Tools  []string `json:"tools"`
	Grant  int      `json:"grant"`
}

// MCPEgress is what one MCP server may reach (NodeRules.MCPEgress).
type MCPEgress struct {
	Server string   `json:"server"`
	Dst    []string `json:"dst"`
}

// Limits of the MCP part of a netmap.
const (
	MaxMCPServers = 256  // MCP servers per peer
	MaxMCPTools   = 1024 // tool patterns per access entry
	MaxMCPEgress  = 256  // destinations per server
)

// validateMCP checks the MCP fields of the peers against the netmap's
// MCP grants.
func (nm *NetMap) validateMCP() error {
	grants := 0
	if nm.Rules != nil {
		grants = len(nm.Rules.MCPGrants)
	}
	if nm.Rules != nil {
		if err := validateMCPEgress(nm.Rules.MCPEgress); err != nil {
			return err
		}
	}
	for i := range nm.Peers {
		p := &nm.Peers[i]
		where := fmt.Sprintf("peers[%d]", i)
		if err := checkNames(where+".mcp", p.MCP, MaxMCPServers); err != nil {
			return err
		}
		for j, a := range p.MCPAccess {
			w := fmt.Sprintf("%s.mcpAccess[%d]", where, j)
			if a.Grant < 0 || a.Grant >= grants {
				return fmt.Errorf("%s: grant %d does not exist (the netmap has %d MCP grants)", w, a.Grant, grants)
			}
			if err := checkName(a.Server); err != nil {
				return fmt.Errorf("%s.server: %w", w, err)
			}
			if err := checkNames(w+".tools", a.Tools, MaxMCPTools); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateMCPEgress bounds NodeRules.MCPEgress; the node parses each
// destination when it applies them.
func validateMCPEgress(eg []MCPEgress) error {
	if len(eg) > MaxMCPServers {
		return fmt.Errorf("rules.mcpEgress: %d servers, at most %d", len(eg), MaxMCPServers)
	}
	for i, e := range eg {
		w := fmt.Sprintf("rules.mcpEgress[%d]", i)
		if err := checkName(e.Server); err != nil {
			return fmt.Errorf("%s.server: %w", w, err)
		}
		if len(e.Dst) > MaxMCPEgress {
			return fmt.Errorf("%s.dst: %d destinations, at most %d", w, len(e.Dst), MaxMCPEgress)
		}
		for j, d := range e.Dst {
			if d == "" || len(d) > 300 {
				return fmt.Errorf("%s.dst[%d]: empty or longer than 300 bytes", w, j)
			}
		}
	}
	return nil
}
