#!/usr/bin/env bash
# bench-mcp.sh — a tools/call through the MCP guard against the same call
# made straight to the server (node/mcpguard BenchmarkToolsCall, the
# official Go SDK on both ends, screening on). Prints the guard's added
# p50 and p99 at concurrency 1 and calls/s at concurrency 32 with the
# ratio to direct, the median of COUNT runs (default 3) of N calls each
# (default 3000). The target is an added p50 of at most 150 µs.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-3}
n=${N:-3000}
go test -run '^$' -bench 'BenchmarkToolsCall' -benchtime "${n}x" -count "$count" ./node/mcpguard/ |
awk -v target=150 '
  # BenchmarkToolsCall/guard/c1-2  3000  ...  412.0 p50-µs  ...  900.0 p99-µs  2400 calls/s
  /^BenchmarkToolsCall\// {
    split($1, part, "/"); path = part[2]; conc = part[3]; sub(/-[0-9]+$/, "", conc)
    for (i = 3; i < NF; i++) {
      if ($(i+1) == "p50-µs")  v[path, conc, "p50"] = v[path, conc, "p50"] " " $i
      if ($(i+1) == "p99-µs")  v[path, conc, "p99"] = v[path, conc, "p99"] " " $i
      if ($(i+1) == "calls/s") v[path, conc, "cps"] = v[path, conc, "cps"] " " $i
    }
  }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n ? a[int((n + 1) / 2)] : 0
  }
  END {
    d50 = median(v["direct", "c1", "p50"]); g50 = median(v["guard", "c1", "p50"])
    d99 = median(v["direct", "c1", "p99"]); g99 = median(v["guard", "c1", "p99"])
    dc = median(v["direct", "c32", "cps"]); gc = median(v["guard", "c32", "cps"])
    if (d50 == 0 || dc == 0) { print "bench-mcp: no results"; exit 1 }
    printf "mcp tools/call c=1  p50: direct %d µs, guard %d µs, added %d µs (target <= %d)\n", d50, g50, g50 - d50, target
    printf "mcp tools/call c=1  p99: direct %d µs, guard %d µs, added %d µs\n", d99, g99, g99 - d99
    printf "mcp tools/call c=32 calls/s: direct %.0f, guard %.0f, ratio %.2f\n", dc, gc, gc / dc
    printf "metric mcp_added_p50_us %d\n", g50 - d50
  }'
