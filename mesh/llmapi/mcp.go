package llmapi

import "strings"

// MCPPrefix is where the Model Context Protocol servers of a mesh member
// are served, one per name: MCPPrefix + NAME, on a node's guard and on the
// client's local endpoint alike (Streamable HTTP).
const MCPPrefix = "/mcp/"

// MCPServerOf returns the server name of an MCP path, "/mcp/NAME", and
// whether path is one.
func MCPServerOf(path string) (string, bool) {
	name, ok := strings.CutPrefix(path, MCPPrefix)
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", false
	}
	return name, true
}
