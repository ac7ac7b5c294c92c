package coordinator

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/ui"
)

// mcpWindow is how far back the MCP page counts tool calls.
const mcpWindow = 7 * 24 * time.Hour

// MCPServers lists the policy's MCP servers (who may call which tools,
// what they may reach, the nodes that advertise them, the tools called
// lately), then those only nodes advertise.
func (b uiBackend) MCPServers(ctx context.Context) ([]ui.MCPServer, error) {
	st, err := b.s.netmaps.Snapshot(ctx)
	if err != nil {
		return nil, b.fail("read the mesh", err)
	}
	c, err := compileNodes(st)
	if err != nil {
		return nil, b.fail("compile the policy", err)
	}
	online, err := b.s.netmaps.Online(ctx)
	if err != nil {
		return nil, b.fail("read who is online", err)
	}
	tools, err := b.mcpTools(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]*ui.MCPServer{}
	var out []*ui.MCPServer
	add := func(s *ui.MCPServer) { byName[s.Name] = s; out = append(out, s) }
	for _, m := range st.Policy.MCP {
		s := &ui.MCPServer{Name: m.Name, Description: m.Description, Declared: true, Egress: m.Egress}
		for i := range st.Policy.Grants {
			g := &st.Policy.Grants[i]
			if t := toolsOf(g.MCP, m.Name); len(t) > 0 {
				s.Grants = append(s.Grants, ui.MCPGrant{Grant: uiGrant(g), Tools: t})
			}
		}
		add(s)
	}
	for _, d := range st.Devices {
		if d.Kind != store.KindNode || d.Revoked {
			continue
		}
		for _, ad := range d.Models {
			if ad.API != wire.APIMCP {
				continue
			}
			if byName[ad.Name] == nil {
				add(&ui.MCPServer{Name: ad.Name})
			}
			n := ui.ModelNode{ID: d.ID, Hostname: d.Hostname, Online: online[d.ID]}
			if r := c.Member(d.ID); r != nil && r.MCP != nil {
				n.Allowed = slices.Contains(r.MCP.Serves, ad.Name)
			}
			if !n.Allowed {
				n.Why = "it has none of the server's servedBy tags, or the policy does not declare it"
			}
			byName[ad.Name].Nodes = append(byName[ad.Name].Nodes, n)
		}
	}
	res := make([]ui.MCPServer, 0, len(out))
	for _, s := range out {
		slices.SortFunc(s.Nodes, func(a, b ui.ModelNode) int { return cmp.Compare(a.Hostname, b.Hostname) })
		s.Tools = tools[s.Name]
		res = append(res, *s)
	}
	return res, nil
}

// toolsOf returns the tool patterns of server among a grant's
// SERVER:TOOL patterns.
func toolsOf(patterns []string, server string) []string {
	var out []string
	for _, p := range patterns {
		if t, ok := strings.CutPrefix(p, server+":"); ok {
			out = append(out, t)
		}
	}
	return out
}

// mcpTools counts, per server and tool, the tool calls the audit holds
// from the last mcpWindow (at most the newest 10,000).
func (b uiBackend) mcpTools(ctx context.Context) (map[string][]ui.MCPTool, error) {
	recs, err := b.s.store.Audit(ctx, store.AuditFilter{API: wire.APIMCP, Since: time.Now().Add(-mcpWindow), Limit: 10000})
	if err != nil {
		return nil, b.fail("query MCP calls", err)
	}
	counts := map[string]map[string]*ui.MCPTool{}
	for _, r := range recs {
		server, tool, ok := strings.Cut(mcpCallOf(r), ":")
		if !ok || tool == "" {
			continue
		}
		if counts[server] == nil {
			counts[server] = map[string]*ui.MCPTool{}
		}
		t := counts[server][tool]
		if t == nil {
			t = &ui.MCPTool{Name: tool}
			counts[server][tool] = t
		}
		if r.Decision == "allow" {
			t.Allowed++
		} else {
			t.Refused++
		}
	}
	out := map[string][]ui.MCPTool{}
	for server, ts := range counts {
		for _, t := range ts {
			out[server] = append(out[server], *t)
		}
		slices.SortFunc(out[server], func(a, b ui.MCPTool) int { return cmp.Compare(a.Name, b.Name) })
	}
	return out, nil
}

// mcpCallOf is "SERVER:TOOL" (or "SERVER:" for a request that is not a
// tool call) of an MCP audit record, from the record as the node sent it;
// "" for other records.
func mcpCallOf(r *store.AuditRecord) string {
	if r.API != wire.APIMCP {
		return ""
	}
	var body struct {
		MCP *struct{ Server, Tool string } `json:"mcp"`
	}
	if json.Unmarshal(r.Body, &body) != nil || body.MCP == nil {
		return ""
	}
	return body.MCP.Server + ":" + body.MCP.Tool
}
