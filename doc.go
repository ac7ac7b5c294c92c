// Package moat is the root of the moat module. It holds no code, only the
// architecture test that keeps the import rules of docs and DESIGN honest:
//
//	policy       imports nothing of moat (pure)
//	mesh/...     may import policy
//	node/...     may import mesh, policy; never coordinator or ui
//	coordinator  may import mesh, policy, ui; never node
//	ui/...       may import mesh, policy; never coordinator or node
//	cmd/...      may import anything
package moat
