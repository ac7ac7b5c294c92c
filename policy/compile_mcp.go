package policy

import "slices"

// mcp compiles the MCP part for every member: what each node serves, who
// may call which tools there, and which servers each caller uses where.
// It does nothing for a policy without "mcp", so model-only meshes pay
// nothing for it.
func (c *compiler) mcp() {
	if len(c.p.MCP) == 0 {
		return
	}
	sets := make([]grantSet, len(c.ms))
	for i := range c.ms {
		sets[i] = c.p.grantsFor(&c.ms[i].Identity)
	}
	for n := range c.ms {
		if len(c.ms[n].Tags) > 0 && len(c.ms[n].MCP) > 0 {
			c.mcpNode(n, sets)
		}
	}
}

// mcpNode compiles what tagged member n serves over MCP and to whom.
func (c *compiler) mcpNode(n int, sets []grantSet) {
	r := c.mcpRules(n)
	r.Serves, r.Refused = c.mcpServed(n)
	for _, name := range r.Serves {
		if dst := c.p.MCP[c.p.mcpIndex[name]].Egress; len(dst) > 0 {
			r.Egress = append(r.Egress, MCPEgress{Server: name, Dst: dst})
		}
	}
	pos := map[int]int{} // grant index in the policy → in r.Grants
	for caller := range c.ms {
		if caller == n {
			continue
		}
		access := c.mcpAccess(sets[caller], r.Serves, pos)
		if len(access) == 0 {
			continue
		}
		r.Access = append(r.Access, MCPCallerAccess{Caller: c.ms[caller].ID, Access: access})
		cr := c.mcpRules(caller)
		cr.Uses = append(cr.Uses, NodeServers{Node: c.ms[n].ID, Servers: serversOf(access)})
		c.link(caller, n)
	}
	c.mcpGrants(r, pos)
}

// mcpRules returns member i's MCP rules, creating them.
func (c *compiler) mcpRules(i int) *MCPRules {
	if c.out[i].MCP == nil {
		c.out[i].MCP = &MCPRules{}
	}
	return c.out[i].MCP
}

// mcpServed splits node n's advertised servers into those it may serve
// and those it may not, both sorted.
func (c *compiler) mcpServed(n int) (serves, refused []string) {
	m := &c.ms[n]
	for _, name := range m.MCP {
		i, known := c.p.mcpIndex[name]
		if known && hasAny(m.Tags, c.p.MCP[i].ServedBy) {
			serves = append(serves, name)
		} else {
			refused = append(refused, name)
		}
	}
	slices.Sort(serves)
	slices.Sort(refused)
	return slices.Compact(serves), slices.Compact(refused)
}

// mcpAccess returns the access a caller holding set has to servers, with
// grants numbered by pos (provisionally: policy index, renumbered by
// mcpGrants).
func (c *compiler) mcpAccess(set grantSet, servers []string, pos map[int]int) []MCPAccess {
	var out []MCPAccess
	for _, s := range servers {
		for _, g := range c.p.rank {
			if !set.has(g) {
				continue
			}
			if tools := c.p.Grants[g].mcpTools(s); len(tools) > 0 {
				out = append(out, MCPAccess{Server: s, Tools: tools, Grant: g})
				pos[g] = 0
			}
		}
	}
	return out
}

// mcpGrants fills r.Grants with the grants r.Access uses, in file order,
// and points the access entries at them.
func (c *compiler) mcpGrants(r *MCPRules, pos map[int]int) {
	used := make([]int, 0, len(pos))
	for g := range pos {
		used = append(used, g)
	}
	slices.Sort(used)
	for i, g := range used {
		pos[g] = i
		r.Grants = append(r.Grants, c.p.Grants[g].Rule())
	}
	for _, ca := range r.Access {
		for i := range ca.Access {
			ca.Access[i].Grant = pos[ca.Access[i].Grant]
		}
	}
}

func serversOf(access []MCPAccess) []string {
	var out []string
	for _, a := range access {
		if len(out) == 0 || out[len(out)-1] != a.Server {
			out = append(out, a.Server)
		}
	}
	return out
}
