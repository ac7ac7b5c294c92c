#!/usr/bin/env bash
# bench.sh — what `make bench` runs: the Go benchmarks (with a throwaway
# PostgreSQL), the screening corpus beside gitleaks, the mesh throughput
# bench and the guard side by side with nginx; everything it prints also
# goes to artifacts/bench.log, and at the end one table shows every
# figure an issue sets a target for, the target, and whether it is met
# (internal/benchsummary). Benchmarks never decide pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
mkdir -p artifacts
log=${BENCH_LOG:-artifacts/bench.log}
: >"$log"

step() { echo "== $*" | tee -a "$log"; "$@" 2>&1 | tee -a "$log"; }

step ./scripts/with-postgres.sh "$GO" test -run '^$' -bench . -benchmem ./...
# moat beside gitleaks on the same inputs, with recall per family: its own
# module, so gitleaks stays out of go.mod.
(cd node/screen/corpus && "$GO" test -run '^$' -bench . -benchtime 3x ./...) 2>&1 | tee -a "$log"
step "$GO" run ./internal/meshbench/cmd/meshbench
step ./scripts/bench-guard.sh
# A tools/call through the MCP guard against the same call direct: added
# p50/p99 at concurrency 1, calls/s at 32 and the ratio.
step ./scripts/bench-mcp.sh

echo
echo "== summary (medians where a figure was measured more than once; the whole output is in $log)"
"$GO" run ./internal/benchsummary/cmd/benchsummary <"$log"
