// Package guardbench measures what the on-node guard adds to a request,
// side by side with a direct connection and with nginx's proxy_pass, all
// over loopback against the same stand-in upstream (Upstream, written for
// this: OpenAI-style JSON answers and SSE streams whose chunks carry the
// time they were sent).
//
// The guard runs in this process with a realistic policy (limits, a
// max_tokens cap, prompt hashes, secrets and personal data redacted,
// injection flagged) and the audit spool on, twice:
//
//   - "guard": behind a pair of netstack WireGuard engines, which is how
//     callers reach it; the caller's identity comes from the WireGuard
//     peer. This figure includes the mesh's own cost (userspace
//     WireGuard and TCP in both directions).
//   - "guard_lo": on 127.0.0.1, with a netmap that gives the caller the
//     address 127.0.0.1, so the difference to "direct" is the guard's own
//     overhead, comparable with nginx's.
//
// Run it with scripts/bench-guard.sh, which also starts nginx.
package guardbench
