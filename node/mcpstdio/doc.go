// Package mcpstdio runs a node's stdio MCP servers (`moat-node --mcp
// NAME=stdio:/path/to/server,ARG…`) and bridges them to the guard's
// Streamable HTTP side (node/mcpguard), which enforces the policy exactly
// as for a Streamable HTTP server.
//
// One process per MCP session. The stdio transport is one client talking
// to one server over its stdin and stdout: initialize happens once per
// process, and what it negotiates (protocol version, capabilities), the
// server's per-connection state (logging level, subscriptions, roots)
// and the requests the server sends its client all belong to that one
// client. Multiplexing several agents' sessions into one process would
// mix them, so an initialize starts a process, its answer carries a fresh
// Mcp-Session-Id, and the session ends with the process: on DELETE, after
// Config.IdleTimeout without a request, when the node stops, or when the
// process exits (the next request of that session is answered 404, which
// makes clients initialize again, starting a new process). Processes that
// exit on their own soon after starting delay the next start with a
// backoff doubling from Config.MinBackoff to Config.MaxBackoff.
//
// Each process is started through the node's own executable (LaunchMain),
// which before running the server: empties the capability bounding set
// (needs CAP_SETPCAP, which the shipped unit grants), clears the ambient
// and inheritable sets, switches to Command.UID/GID when set (needs
// CAP_SETUID and CAP_SETGID), sets no_new_privs and executes the server
// with an environment of its own (PATH, HOME, LANG), never the node's. It
// starts in the server's own cgroup v2 (Command.Cgroup, created below the
// node's cgroup), so that the lockdown can match its sockets (per-server
// egress), and in its own process group, killed with it.
//
// The node applies MemoryDenyWriteExecute to itself with PR_SET_MDWE and
// PR_MDWE_NO_INHERIT (ProtectSelf) instead of inheriting it from its unit:
// a process started under an inherited MDWE cannot run Node.js, whose JIT
// makes pages executable (V8 aborts in SetPermissions).
//
// The server's stderr goes to the node's log, line by line, with the
// server's name.
package mcpstdio
