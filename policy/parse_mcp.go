package policy

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/tailscale/hujson"
)

// refMCPServer is a reference to a key of "mcp". It sits apart from the
// other kinds so that the MCP part stays in this file.
const refMCPServer refKind = 100

// mcpServers decodes the top-level "mcp": server name → servedBy and
// description.
func (d *decoder) mcpServers(v *hujson.Value, p *Policy) {
	d.entries(v, `"mcp"`, func(name string, key, val *hujson.Value) {
		if !validName(name) {
			d.errorf(key.StartOffset, "%q is not a valid MCP server name; use letters, digits, '.', '_' or '-'", name)
			return
		}
		s := MCPServer{Name: name, Pos: d.lines.pos(key.StartOffset)}
		what := fmt.Sprintf("mcp server %q", name)
		d.fields(val, what,
			field{"servedBy", func(v *hujson.Value) { s.ServedBy = d.tagList(v, what+".servedBy") }},
			field{"description", func(v *hujson.Value) { s.Description, _ = d.str(v, what+".description") }},
			field{"egress", func(v *hujson.Value) { s.Egress = d.mcpEgress(v, what+".egress") }},
		)
		if len(s.ServedBy) == 0 {
			d.errorf(key.StartOffset, `%s has no servedBy; list the tags whose nodes may serve it, e.g. "servedBy": ["tag:tools"]`, what)
		}
		p.MCP = append(p.MCP, s)
	})
}

// mcpEgress decodes a server's "egress": HOST:PORT, IP or CIDR entries.
func (d *decoder) mcpEgress(v *hujson.Value, what string) []string {
	return d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		if err := CheckEgress(s); err != nil {
			d.errorf(el.StartOffset, "%s: %v", w, err)
			return false
		}
		return true
	})
}

// CheckEgress checks one entry of an MCP server's "egress": HOST:PORT
// (HOST a DNS name or an IP address, PORT 1-65535), an IP address or a
// network in CIDR form. The node parses them again with ParseEgress.
func CheckEgress(s string) error {
	_, _, err := ParseEgress(s)
	return err
}

// ParseEgress parses an egress entry into a network (any port) or a
// host and port (host a DNS name or an IP address).
func ParseEgress(s string) (network netip.Prefix, hostPort string, err error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		if p.Masked() != p {
			return netip.Prefix{}, "", fmt.Errorf("%q has host bits set; write the network, %s", s, p.Masked())
		}
		return p, "", nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()), "", nil
	}
	host, port, err := net.SplitHostPort(s)
	n, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || n == 0 {
		return netip.Prefix{}, "", fmt.Errorf("%q is not an egress destination; write HOST:PORT (e.g. \"jira.corp.example:443\"), an IP address or a network (e.g. \"10.2.0.0/16\")", s)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(host) {
		return netip.Prefix{}, "", fmt.Errorf("%q: %q is neither an IP address nor a DNS name", s, host)
	}
	return netip.Prefix{}, s, nil
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits and '-', not starting or ending with '-'.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// mcpPatterns decodes a grant's "mcp": SERVER:TOOL entries where TOOL is
// a tool name, a glob such as "search_*", or "*".
func (d *decoder) mcpPatterns(v *hujson.Value, what string) ([]string, []mcpPattern) {
	var parsed []mcpPattern
	texts := d.strs(v, what, func(s string, el *hujson.Value, w string) bool {
		server, tool, ok := strings.Cut(s, ":")
		if !ok || !validName(server) || !validToolPattern(tool) {
			d.errorf(el.StartOffset, "%s: %q is not an MCP tool pattern; write SERVER:TOOL with a server from \"mcp\" and a tool name or glob, e.g. \"jira:search_*\" or \"jira:*\"", w, s)
			return false
		}
		d.refer(refMCPServer, server, el, w)
		parsed = append(parsed, mcpPattern{server: server, tool: tool, off: el.StartOffset})
		return true
	})
	return texts, parsed
}

// checkMCPGrant refuses limits that only mean something for models in a
// grant that grants MCP tools and no models.
func (d *decoder) checkMCPGrant(v *hujson.Value, g *Grant, hasModels bool) {
	if hasModels || len(g.mcp) == 0 {
		return
	}
	var bad []string
	for name, set := range map[string]bool{"tpm": g.Limits.TPM != 0, "tokensPerDay": g.Limits.TokensPerDay != 0, "maxTokens": g.Limits.MaxTokens != 0} {
		if set {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		d.errorf(v.StartOffset, `%s grants MCP tools only and sets limits %s, which count model tokens; MCP calls take "rpm" (calls a minute) and "concurrency"`, g.ID(), quoteList(bad))
	}
}

// checkMCPRef checks a reference to an MCP server.
func (d *decoder) checkMCPRef(p *Policy, r ref) {
	if _, ok := p.mcpIndex[r.name]; !ok {
		d.errorf(r.off, "%s: unknown MCP server %q; declare it under \"mcp\" or fix the name", r.what, r.name)
	}
}

// indexMCP builds the server index references are checked against.
func (p *Policy) indexMCP() {
	p.mcpIndex = make(map[string]int, len(p.MCP))
	for i, s := range p.MCP {
		p.mcpIndex[s.Name] = i
	}
}

// mcpTarget parses a test or explain target "mcp:SERVER:TOOL" (a tool
// name, not a glob). ok is false when s does not start with "mcp:".
func mcpTarget(s string) (server, tool string, ok bool, err error) {
	rest, ok := strings.CutPrefix(s, "mcp:")
	if !ok {
		return "", "", false, nil
	}
	server, tool, cut := strings.Cut(rest, ":")
	if !cut || !validName(server) || !validToolPattern(tool) || strings.Contains(tool, "*") {
		return "", "", true, fmt.Errorf("%q is not an MCP target; write mcp:SERVER:TOOL with a tool name (no globs)", s)
	}
	return server, tool, true, nil
}

// mcpTestTarget decodes an "mcp:SERVER:TOOL" test target; handled is
// false for other targets.
func (d *decoder) mcpTestTarget(s string, el *hujson.Value, what string) (handled, ok bool) {
	server, _, isMCP, err := mcpTarget(s)
	if !isMCP {
		return false, false
	}
	if err != nil {
		d.errorf(el.StartOffset, "%s: %v", what, err)
		return true, false
	}
	d.refer(refMCPServer, server, el, what)
	return true, true
}
