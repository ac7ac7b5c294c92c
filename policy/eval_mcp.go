package policy

import "fmt"

// mcpCovers reports whether one of g's MCP patterns names tool of server.
func (g *Grant) mcpCovers(server, tool string) bool {
	for _, m := range g.mcp {
		if m.server == server && globMatch(m.tool, tool) {
			return true
		}
	}
	return false
}

// mcpTools returns g's tool globs for server, nil when it grants none.
func (g *Grant) mcpTools(server string) []string {
	var out []string
	for _, m := range g.mcp {
		if m.server == server {
			out = append(out, m.tool)
		}
	}
	return out
}

// mcpChain returns the grants in set that let a call of tool on server
// through, in the order a call tries them (see eval.go).
func (p *Policy) mcpChain(set grantSet, server, tool string) []int {
	var out []int
	for _, g := range p.rank {
		if set.has(g) && p.Grants[g].mcpCovers(server, tool) {
			out = p.extendChain(out, g)
		}
	}
	return out
}

// parseMCPTarget checks a parsed "mcp:SERVER:TOOL" target.
func (p *Policy) parseMCPTarget(server, tool string, err error) (target, error) {
	if err != nil {
		return target{}, err
	}
	if _, known := p.mcpIndex[server]; !known {
		return target{}, fmt.Errorf("unknown MCP server %q: it is not under \"mcp\"", server)
	}
	return target{isMCP: true, server: server, tool: tool}, nil
}
