// Package meshbench measures bulk TCP throughput across moat's mesh and
// its baselines, side by side in one run: the engine's netstack pair
// against two tsnet servers, and the engine's TUN pair across two network
// namespaces against the raw veth that joins them. `make bench` runs it
// through cmd/meshbench; nothing here is part of the pass/fail tests.
package meshbench
