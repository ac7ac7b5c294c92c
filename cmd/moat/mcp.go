package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/llmapi"
)

// mcpCommand: moat mcp — the MCP servers this device may use, and the
// configuration that points common agents at them through the local
// endpoint, carrying only the local API key (`moat token`).
func mcpCommand() *cobra.Command {
	var agent string
	cmd := stateCommand("mcp", "Print the MCP servers you may use and how to add them to Claude Code, Cursor or VS Code; exit 3 when moat up is not running", func(cmd *cobra.Command, dir client.Dir) error {
		st, err := client.FetchStatus(cmd.Context(), dir)
		if errors.Is(err, client.ErrNotUp) {
			return &cli.ExitError{Code: cli.ExitNo, Err: fmt.Errorf("%w; the MCP servers you may use come from the mesh", err)}
		}
		if err != nil {
			return err
		}
		tok, err := dir.Token(true)
		if err != nil {
			return err
		}
		return printMCP(cmd.OutOrStdout(), agent, st.Endpoint, tok, st.MCP)
	})
	cmd.Flags().StringVar(&agent, "agent", "all", "which configuration to print: claude, cursor, vscode or all")
	return cmd
}

// printMCP prints the configuration of servers for agent.
func printMCP(w io.Writer, agent, endpoint, token string, servers []string) error {
	if len(servers) == 0 {
		_, err := fmt.Fprintln(w, "No MCP servers are granted to you on the mesh; ask an admin.")
		return err
	}
	url := func(s string) string { return endpoint + llmapi.MCPPrefix + s }
	auth := "Bearer " + token
	var b strings.Builder
	show := func(name string) bool { return agent == "all" || agent == name }
	if show("claude") {
		b.WriteString("# Claude Code\n")
		for _, s := range servers {
			fmt.Fprintf(&b, "claude mcp add --transport http %s %s --header \"Authorization: %s\"\n", s, url(s), auth)
		}
		b.WriteString("\n")
	}
	type entry struct {
		Type    string            `json:"type,omitempty"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
	}
	for _, f := range []struct{ agent, title, key, typ string }{
		{"cursor", "# Cursor: ~/.cursor/mcp.json", "mcpServers", ""},
		{"vscode", "# VS Code: .vscode/mcp.json", "servers", "http"},
	} {
		if !show(f.agent) {
			continue
		}
		m := map[string]entry{}
		for _, s := range servers {
			m[s] = entry{Type: f.typ, URL: url(s), Headers: map[string]string{"Authorization": auth}}
		}
		j, _ := json.MarshalIndent(map[string]any{f.key: m}, "", "  ")
		fmt.Fprintf(&b, "%s\n%s\n\n", f.title, j)
	}
	if b.Len() == 0 {
		return cli.Usagef("--agent %q: want claude, cursor, vscode or all", agent)
	}
	_, err := io.WriteString(w, strings.TrimSuffix(b.String(), "\n"))
	return err
}
