// Package meshbench measures bulk TCP throughput across moat's mesh and
// its baselines, side by side in one run: the engine's netstack pair
// against two tsnet servers and against itself through the relay, and the
// engine's TUN pairs across two network namespaces (one over direct UDP,
// one through the relay) against the raw veth that joins them, each with
// the CPU it spent per byte. `make bench` runs it through cmd/meshbench;
// nothing here is part of the pass/fail tests.
package meshbench
