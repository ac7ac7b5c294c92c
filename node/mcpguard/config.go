package mcpguard

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/moatmesh/moat/node/audit"
)

// AuditSink takes the guard's audit records (the node's spool).
type AuditSink interface {
	Append(rec *audit.Record) error
}

// Config configures a Guard. Every zero value has the default given on
// its field.
type Config struct {
	// Servers maps MCP server names to their local Streamable HTTP URLs,
	// e.g. "jira" → "http://127.0.0.1:8931/mcp". Default: none.
	Servers map[string]string
	// Local maps MCP server names to servers in this process (stdio
	// servers bridged by node/mcpstdio), reached over in-memory
	// connections. A name may not be in both. Default: none.
	Local map[string]http.Handler
	// NodeName and NodeID name this node in audit records. Default: empty.
	NodeName, NodeID string
	// Audit receives one record per tool call and per refusal. Default:
	// nil, no records.
	Audit AuditSink
	// AuditKey keys the hash of tool arguments in audit records. Default:
	// nil, a random key per process.
	AuditKey []byte
	// LinkAllow lists the hosts links may point at without counting as
	// external, besides each grant's linkAllow. Default: none.
	LinkAllow []string
	// MaxBodyBytes bounds a request body. Default: 1 MiB.
	MaxBodyBytes int64
	// MaxResultBytes bounds one message of a server's answer (a JSON body
	// or one SSE event). Default: 8 MiB.
	MaxResultBytes int64
	// MaxSessionsPerCaller bounds the sessions bound to one caller; the
	// oldest is forgotten beyond it. Default: 32.
	MaxSessionsPerCaller int
	// Transport carries requests to the servers. Default: a transport
	// that never uses a proxy.
	Transport http.RoundTripper
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Logger logs. Default: slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = 8 << 20
	}
	if c.MaxSessionsPerCaller == 0 {
		c.MaxSessionsPerCaller = 32
	}
	if c.Transport == nil {
		c.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.AuditKey == nil {
		c.AuditKey = []byte(audit.NewID())
	}
}

// checkServers parses the server URLs: http on a loopback host.
func checkServers(servers map[string]string) (map[string]*url.URL, error) {
	out := make(map[string]*url.URL, len(servers))
	for name, raw := range servers {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("mcp server %q: %q is not an http:// URL", name, raw)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && h != "localhost" {
			return nil, fmt.Errorf("mcp server %q: %s is not on loopback; an MCP server must be reachable only through the guard", name, h)
		}
		out[name] = u
	}
	return out, nil
}
