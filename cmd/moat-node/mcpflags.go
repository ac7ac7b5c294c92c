package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/mesh/wire"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// loadMCP returns the MCP servers of the --mcp flags (saved to
// StateDir/mcp.json for later runs) or those saved before: the
// Streamable HTTP ones by name, and the stdio ones, which run as
// --mcp-user when it is given.
func (s *nodeSettings) loadMCP(cmd *cobra.Command) (map[string]string, []mcpstdio.Command, error) {
	all, err := s.savedMCP(cmd)
	if err != nil {
		return nil, nil, err
	}
	var owner *user.User
	if s.mcpUser != "" {
		if owner, err = user.Lookup(s.mcpUser); err != nil {
			return nil, nil, cli.Invalid(cmd, "mcp-user", "%v", err)
		}
	}
	var servers map[string]string
	var stdio []mcpstdio.Command
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if !strings.HasPrefix(all[name], mcpstdio.Scheme) {
			if servers == nil {
				servers = map[string]string{}
			}
			servers[name] = all[name]
			continue
		}
		c, err := mcpstdio.Parse(name, all[name])
		if err != nil {
			return nil, nil, cli.Invalid(cmd, "mcp", "%v", err)
		}
		if owner != nil {
			uid, _ := strconv.ParseUint(owner.Uid, 10, 32)
			gid, _ := strconv.ParseUint(owner.Gid, 10, 32)
			u := uint32(uid)
			c.UID, c.GID = &u, uint32(gid)
		}
		stdio = append(stdio, c)
	}
	return servers, stdio, nil
}

// savedMCP returns the --mcp flags by name, saving them to
// StateDir/mcp.json, or those saved before.
func (s *nodeSettings) savedMCP(cmd *cobra.Command) (map[string]string, error) {
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

// parseMCP parses NAME=http://127.0.0.1:PORT/PATH or
// NAME=stdio:/PATH,ARG….
func parseMCP(v string) (name, u string, err error) {
	name, u, ok := strings.Cut(v, "=")
	if !ok || name == "" || strings.ContainsAny(name, "/ ") {
		return "", "", fmt.Errorf("%q: want NAME=http://127.0.0.1:PORT/mcp or NAME=stdio:/path/to/server,ARG…", v)
	}
	if len(name) > wire.MaxNameLen {
		return "", "", fmt.Errorf("MCP server name %q: longer than %d characters", name, wire.MaxNameLen)
	}
	if strings.HasPrefix(u, mcpstdio.Scheme) {
		_, err := mcpstdio.Parse(name, u)
		return name, u, err
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
