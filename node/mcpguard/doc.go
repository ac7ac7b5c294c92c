// Package mcpguard is the guard's Model Context Protocol part: an
// http.Handler that serves a node's MCP servers (Streamable HTTP, on
// 127.0.0.1) to the mesh at /mcp/NAME under the policy's per-tool grants.
//
// Who is asking comes from the connection's source mesh address mapped
// through the newest netmap's peers, exactly as for models; headers are
// never consulted for identity, and only the MCP transport headers
// (Content-Type, Accept, Mcp-Session-Id, Mcp-Protocol-Version,
// Last-Event-ID) go upstream.
//
// What it enforces, per POSTed JSON-RPC message (batches are refused, as
// MCP 2025-06-18 and later have none):
//
//   - initialize, ping, logging/setLevel, notifications and responses to
//     the server's own requests pass through. The Mcp-Session-Id the
//     server answers initialize with is bound to the caller's WireGuard
//     key: another caller presenting it is refused (403), and an ID the
//     guard did not see issued is answered 404, which makes clients
//     initialize again.
//   - tools/list is answered with the server's list filtered to the tools
//     the caller's grants name (whatever the caller's MFA age).
//   - tools/call of a tool no grant names is refused with a JSON-RPC error
//     that says so; otherwise the first grant whose tools match and whose
//     MFA requirement the caller meets applies (else the call is refused
//     with "run moat login"), with its limits (rpm: calls a minute,
//     concurrency: calls in flight, per person or tagged device and
//     grant). Arguments are screened with the rules the grant's guard
//     settings give answers, the result with those they give prompts
//     (node/screen): redacted in place, or the call refused / the result
//     withheld when a block rule fires ("tool poisoning").
//   - resources/*, prompts/* and completion/complete are refused: the
//     policy does not govern them yet. Every other method is refused too.
//
// Responses are relayed as they come: a JSON answer is read whole (up to
// Config.MaxResultBytes), an SSE stream event by event, each flushed at
// once. One audit record per tools/call (and per refused request) goes to
// Config.Audit: caller, server, tool, a keyed hash of the arguments,
// result size, decision, findings and latency.
package mcpguard
