package mcpguard

import (
	"fmt"
	"net/http"
	"time"

	"github.com/moatmesh/moat/node/audit"
)

// Headers of the Streamable HTTP transport.
const (
	hdrSession  = "Mcp-Session-Id"
	hdrProtocol = "Mcp-Protocol-Version"
)

// exchange is one HTTP request to an MCP server through the guard.
type exchange struct {
	g      *Guard
	w      http.ResponseWriter
	r      *http.Request
	start  time.Time
	server string
	who    *caller
	msg    *message
	rec    *audit.Record // set once the request is worth a record
}

// identify finds the caller from the connection's source address.
func (x *exchange) identify() bool {
	x.who = x.g.snap.Load().lookup(x.r.RemoteAddr)
	switch {
	case x.who == nil:
		x.refuseHTTP(http.StatusForbidden, "unknown_caller", fmt.Sprintf("this node does not know the device at %s (not signed in, revoked, or without access to this node); run \"moat login\", or ask an admin for access", x.r.RemoteAddr))
		return false
	case x.who.id.Expired(x.start):
		x.refuseHTTP(http.StatusUnauthorized, "expired", "your device key has expired; run \"moat login\"")
		return false
	case len(x.who.access[x.server]) == 0:
		x.refuseHTTP(http.StatusForbidden, "not_granted", fmt.Sprintf("MCP server %q is not granted to %s; ask an admin", x.server, x.who.who()))
		return false
	}
	return true
}

// checkSession refuses a session ID bound to another caller (403) or
// never seen issued (404: the client starts a new session).
func (x *exchange) checkSession() bool {
	id := x.r.Header.Get(hdrSession)
	if id == "" {
		return true
	}
	switch owner := x.g.sessions.owner(x.server, id); owner {
	case x.who.key:
		return true
	case "":
		x.refuseHTTP(http.StatusNotFound, "session_unknown", "this MCP session is not known here (it ended, or the node restarted); start a new session")
	default:
		x.g.cfg.Logger.Warn("mcp session presented by another caller", "server", x.server, "caller", x.who.who())
		x.refuseHTTP(http.StatusForbidden, "session_hijack", "this MCP session belongs to another caller; start your own session")
	}
	return false
}

// refuseHTTP answers with status and a JSON-RPC error, and audits it.
func (x *exchange) refuseHTTP(status int, reason, msg string) {
	var id []byte
	if x.msg != nil {
		id = x.msg.ID
	}
	x.w.Header().Set("Content-Type", "application/json")
	x.w.WriteHeader(status)
	x.w.Write(errorResponse(id, codeRefused, reason, msg))
	x.auditRefusal(status, reason)
}

// refuseRPC answers a request with a JSON-RPC error in a 200 response,
// which MCP clients show to the agent, and audits it.
func (x *exchange) refuseRPC(code int, reason, msg string) {
	x.w.Header().Set("Content-Type", "application/json")
	x.w.Write(errorResponse(x.msg.ID, code, reason, msg))
	x.auditRefusal(http.StatusOK, reason)
}
