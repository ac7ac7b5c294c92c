package mcpguard

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/wire"
)

// Guard serves a node's MCP servers to the mesh. Create it with New, give
// it netmaps with SetNetMap and mount it at llmapi.MCPPrefix on the
// guard's listener (guard.Config.MCP).
type Guard struct {
	cfg      Config
	servers  map[string]*url.URL
	local    *local
	snap     atomic.Pointer[snapshot]
	sessions *sessions
	limits   *limiter
}

// New checks cfg and returns a guard that refuses everyone until its
// first netmap.
func New(cfg Config) (*Guard, error) {
	servers, err := checkServers(cfg.Servers)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	g := &Guard{cfg: cfg, servers: servers, sessions: newSessions(cfg.MaxSessionsPerCaller), limits: newLimiter()}
	if len(cfg.Local) > 0 {
		if g.local, err = newLocal(cfg.Local, servers); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// Close stops serving Config.Local's servers; the guard answers 502 for
// them afterwards.
func (g *Guard) Close() { g.local.close() }

// Names returns the names of the servers, sorted: what the node
// advertises.
func (g *Guard) Names() []string {
	names := make([]string, 0, len(g.servers))
	for n := range g.servers {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SetNetMap makes nm the netmap the guard enforces. A netmap that cannot
// be compiled is refused and the previous one stays in force.
func (g *Guard) SetNetMap(nm *wire.NetMap) error {
	if nm == nil {
		return errors.New("mcpguard: nil netmap")
	}
	s, err := buildSnapshot(nm, g.cfg.LinkAllow)
	if err != nil {
		return err
	}
	g.snap.Store(s)
	callers := make(map[string]bool, len(s.callers))
	for _, c := range s.callers {
		callers[c.limitKey] = true
	}
	g.limits.keep(callers)
	return nil
}

// ServeHTTP answers /mcp/NAME.
func (g *Guard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := &exchange{g: g, w: w, r: r, start: g.cfg.Now()}
	defer x.finish()
	name, ok := llmapi.MCPServerOf(r.URL.Path)
	x.server = name
	if !ok || g.servers[name] == nil {
		x.refuseHTTP(http.StatusNotFound, "not_found", "this node serves no MCP server at "+r.URL.Path+"; run \"moat mcp\" to see the servers you may use")
		return
	}
	if !x.identify() || !x.checkSession() {
		return
	}
	switch r.Method {
	case http.MethodPost:
		x.post()
	case http.MethodGet, http.MethodDelete:
		x.passStream()
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		x.refuseHTTP(http.StatusMethodNotAllowed, "method", r.Method+" is not an MCP method; use POST, GET or DELETE")
	}
}
