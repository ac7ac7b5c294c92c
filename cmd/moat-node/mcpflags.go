package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/wire"
)

// loadMCP returns the MCP servers of the --mcp flags, saved to
// StateDir/mcp.json for later runs, or those saved before.
func (s *nodeSettings) loadMCP(cmd *cobra.Command) (map[string]string, error) {
	path := filepath.Join(s.state, "mcp.json")
	if len(s.mcp) == 0 {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		var out map[string]string
		if err == nil {
			err = json.Unmarshal(b, &out)
		}
		return out, err
	}
	out := map[string]string{}
	for _, v := range s.mcp {
		name, u, err := parseMCP(v)
		if err != nil {
			return nil, cli.Invalid(cmd, "mcp", "%v", err)
		}
		if _, dup := out[name]; dup {
			return nil, cli.Invalid(cmd, "mcp", "MCP server %q is given twice", name)
		}
		out[name] = u
	}
	if err := os.MkdirAll(s.state, 0o700); err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	return out, os.WriteFile(path, b, 0o600)
}

// parseMCP parses NAME=http://127.0.0.1:PORT/PATH.
func parseMCP(v string) (name, u string, err error) {
	name, u, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.ContainsAny(name, "/ ") {
		return "", "", fmt.Errorf("%q: want NAME=http://127.0.0.1:PORT/mcp", v)
	}
	if strings.HasPrefix(u, "stdio:") {
		return "", "", fmt.Errorf("MCP server %s: stdio servers are not supported yet; run it behind a Streamable HTTP adapter on 127.0.0.1 and give its URL", name)
	}
	if len(name) > wire.MaxNameLen {
		return "", "", fmt.Errorf("MCP server name %q: longer than %d characters", name, wire.MaxNameLen)
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "http" || pu.Port() == "" {
		return "", "", fmt.Errorf("MCP server %s: %q is not an http://HOST:PORT/PATH URL", name, u)
	}
	if h := pu.Hostname(); h != "127.0.0.1" && h != "::1" && h != "localhost" {
		return "", "", fmt.Errorf("MCP server %s: %s is not on loopback; run the server on this node bound to 127.0.0.1, so that only the guard reaches it", name, h)
	}
	return name, u, nil
}
