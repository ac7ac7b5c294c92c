package ui

import (
	"context"
	"net/http"
)

// MCPBackend is what the MCP page needs.
type MCPBackend interface {
	// MCPServers lists the policy's MCP servers, then those only nodes
	// advertise.
	MCPServers(ctx context.Context) ([]MCPServer, error)
}

// MCPServer is one MCP server of the mesh, as the MCP page shows it.
type MCPServer struct {
	Name, Description string
	// Declared is false for a server nodes advertise but the policy does
	// not declare: nobody may call it.
	Declared bool
	// Egress is what its stdio server may reach (the policy's "egress").
	Egress []string
	// Grants say who may call which of its tools.
	Grants []MCPGrant
	// Nodes advertise it (Allowed: the policy lets them serve it).
	Nodes []ModelNode
	// Tools are the tools called through the guards lately, by name, as
	// the audit records them.
	Tools []MCPTool
}

// MCPGrant is a grant of some of a server's tools.
type MCPGrant struct {
	Grant
	Tools []string // tool names or globs
}

// MCPTool is one tool as the audit saw it called.
type MCPTool struct {
	Name             string
	Allowed, Refused int
}

// mcpServers lists the MCP servers, their tools and who may call which:
// GET /ui/mcp.
func (h *handler) mcpServers(w http.ResponseWriter, r *http.Request, v *Viewer) {
	ss, err := h.b.MCPServers(r.Context())
	if err != nil {
		h.failErr(w, v, "list MCP servers", err)
		return
	}
	h.render(w, http.StatusOK, "mcp.html", page{Title: "MCP servers", Nav: "mcp", Viewer: v, Data: ss})
}
