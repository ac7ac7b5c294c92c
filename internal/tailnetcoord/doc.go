// Package tailnetcoord tests a tailnet node (node/tailnet) enrolled at a
// real moat coordinator: a whole-system test that lives outside node/,
// which may not import the coordinator (DESIGN.md). It has no code of
// its own.
package tailnetcoord
