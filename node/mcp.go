package node

import (
	"errors"
	"maps"
	"net/http"
	"path/filepath"
	"slices"

	"github.com/moatmesh/moat/node/lockdown"
	"github.com/moatmesh/moat/node/mcpguard"
	"github.com/moatmesh/moat/node/mcpstdio"
)

// stdioServer is a running stdio MCP server and its cgroup.
type stdioServer struct {
	*mcpstdio.Server
	cgroup string // relative to the cgroup2 mount, for the lockdown
}

// mcpNames are the names of the MCP servers the node serves, sorted.
func (n *Node) mcpNames() []string {
	names := slices.Collect(maps.Keys(n.cfg.MCP))
	for _, c := range n.cfg.MCPStdio {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	return names
}

// checkMCP drops the MCP servers listening beyond loopback: only the
// guard may reach a server, so such a one is neither advertised nor
// served. One not listening yet is only logged (it may start later).
func (n *Node) checkMCP() {
	if len(n.cfg.MCP) == 0 {
		return
	}
	servers := make(map[string]string, len(n.cfg.MCP))
	for name, u := range n.cfg.MCP {
		err := lockdown.CheckLoopbackOnly(u)
		switch {
		case errors.Is(err, lockdown.ErrNotListening):
			n.log.Warn("MCP server not listening yet", "mcp", name, "url", u)
		case err != nil:
			n.log.Error("MCP server reachable beyond loopback; not serving it", "mcp", name, "err", err)
			continue
		}
		servers[name] = u
	}
	n.cfg.MCP = servers
}

// startStdio makes each stdio server's cgroup and supervisor (processes
// start with sessions). It runs before the lockdown, which matches the
// cgroups.
func (n *Node) startStdio() error {
	for _, c := range n.cfg.MCPStdio {
		if _, dup := n.cfg.MCP[c.Name]; dup {
			return errors.New("node: MCP server " + c.Name + " is given twice")
		}
		dir, rel, err := mcpstdio.MakeCgroup(c.Name)
		if err != nil {
			return err
		}
		s, err := mcpstdio.New(mcpstdio.Config{Command: c, Cgroup: dir, Logger: n.log,
			Home: filepath.Join(n.cfg.StateDir, "mcp", c.Name)})
		if err != nil {
			return err
		}
		n.stdio = append(n.stdio, &stdioServer{Server: s, cgroup: rel})
		n.log.Info("serving a stdio MCP server", "mcp", c.Name, "command", c.Path, "cgroup", rel)
	}
	return nil
}

// startMCP makes the MCP part of the guard when the node serves MCP
// servers.
func (n *Node) startMCP(auditKey []byte) error {
	if len(n.cfg.MCP) == 0 && len(n.stdio) == 0 {
		return nil
	}
	local := map[string]http.Handler{}
	for _, s := range n.stdio {
		local[s.Name()] = s
	}
	var err error
	n.mcp, err = mcpguard.New(mcpguard.Config{Servers: n.cfg.MCP, Local: local, NodeName: n.cfg.Hostname, NodeID: string(n.st.DeviceID),
		Audit: n.spool, AuditKey: auditKey, Logger: n.log})
	return err
}

// closeMCP stops the stdio servers' processes, after the guard.
func (n *Node) closeMCP() {
	if n.mcp != nil {
		n.mcp.Close()
	}
	for _, s := range n.stdio {
		s.Close()
	}
}
