package mcpstdio

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Scheme prefixes a stdio server in --mcp: NAME=stdio:/path,ARG….
const Scheme = "stdio:"

// Command is one stdio MCP server.
type Command struct {
	// Name is the server's name on the mesh (the policy's "mcp" key).
	Name string `json:"name"`
	// Path is the server's executable, an absolute path.
	Path string `json:"path"`
	// Args are its arguments. Default: none.
	Args []string `json:"args,omitempty"`
	// UID and GID, when UID is set, are the user and group the server runs
	// as (the node needs CAP_SETUID and CAP_SETGID). Default: nil, the
	// node's own.
	UID *uint32 `json:"uid,omitempty"`
	GID uint32  `json:"gid,omitempty"`
}

// Parse parses the part of --mcp after NAME=: "stdio:/path,ARG,…". An
// argument cannot contain a comma.
func Parse(name, spec string) (Command, error) {
	rest, ok := strings.CutPrefix(spec, Scheme)
	if !ok {
		return Command{}, fmt.Errorf("MCP server %s: %q is not stdio:/PATH,ARG…", name, spec)
	}
	parts := strings.Split(rest, ",")
	if !filepath.IsAbs(parts[0]) || filepath.Clean(parts[0]) != parts[0] {
		return Command{}, fmt.Errorf("MCP server %s: %q is not an absolute path; give stdio:/path/to/server,ARG…", name, parts[0])
	}
	return Command{Name: name, Path: parts[0], Args: parts[1:]}, nil
}

// String is the --mcp form of c, without the name.
func (c Command) String() string {
	return Scheme + strings.Join(append([]string{c.Path}, c.Args...), ",")
}
