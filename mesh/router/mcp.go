package router

import (
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/moatmesh/moat/mesh/llmapi"
	"github.com/moatmesh/moat/mesh/wire"
)

// mcpHeaders are the headers an MCP request and its answer carry across
// (Streamable HTTP's own); the local API token and every other header
// stay on the device.
var (
	mcpRequestHeaders  = []string{"Content-Type", "Accept", "Mcp-Session-Id", "Mcp-Protocol-Version", "Last-Event-ID"}
	mcpResponseHeaders = []string{"Content-Type", "Mcp-Session-Id", "Mcp-Protocol-Version", "Retry-After"}
)

// serveMCP relays a request for MCP server name (POST, GET or DELETE of
// Streamable HTTP) to the guard of the node serving it, and its answer
// back as it comes, event streams flushed chunk by chunk. One node
// serves each server name: the first of the netmap's peers that serves
// it, so that a session stays on the node that opened it.
func (r *Router) serveMCP(w http.ResponseWriter, req *http.Request, s *snapshot, name string) {
	if s == nil || s.nm == nil {
		writeError(w, req, unavailable("moat is not connected to the mesh yet; check `moat status`", "not_connected"))
		return
	}
	if why := r.loginProblem(s); why != "" {
		writeError(w, req, loginRequired(why))
		return
	}
	addr, ok := mcpNode(s, name, r.cfg.GuardPort)
	if !ok {
		writeError(w, req, &apiError{status: http.StatusNotFound, code: "mcp_server_not_found",
			msg: fmt.Sprintf("MCP server %q is not served to you on the mesh; servers you may use: %s", name, orNone(MCPServers(s.nm.Peers)))})
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+addr.String()+llmapi.MCPPrefix+name, http.MaxBytesReader(w, req.Body, r.cfg.MaxBodyBytes))
	if err != nil {
		writeError(w, req, badRequest(err.Error()))
		return
	}
	out.ContentLength = req.ContentLength
	copyHeaders(out.Header, req.Header, mcpRequestHeaders)
	resp, err := r.tr.RoundTrip(out)
	if err != nil {
		r.log.Warn("mcp request failed", "server", name, "node", addr, "err", err)
		writeError(w, req, &apiError{status: http.StatusBadGateway, code: "node_unreachable",
			msg: fmt.Sprintf("the node serving MCP server %q did not answer; try again, or check `moat status`", name)})
		return
	}
	defer resp.Body.Close()
	copyHeaders(w.Header(), resp.Header, mcpResponseHeaders)
	w.WriteHeader(resp.StatusCode)
	relay(w, resp.Body)
}

// mcpNode returns the guard address of the first peer serving server.
func mcpNode(s *snapshot, server string, port uint16) (netip.AddrPort, bool) {
	for i := range s.nm.Peers {
		p := &s.nm.Peers[i]
		if len(p.Addresses) > 0 && slices.Contains(p.MCP, server) {
			return netip.AddrPortFrom(guardAddr(p.Addresses), port), true
		}
	}
	return netip.AddrPort{}, false
}

func copyHeaders(dst, src http.Header, names []string) {
	for _, h := range names {
		if v := src.Values(h); len(v) > 0 {
			dst[h] = slices.Clone(v)
		}
	}
}

// relay copies body to w, flushing after every read.
func relay(w http.ResponseWriter, body io.Reader) {
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// MCPServers returns the MCP servers peers serve to this device, sorted.
func MCPServers(peers []wire.Peer) []string {
	var out []string
	for _, p := range peers {
		out = append(out, p.MCP...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
