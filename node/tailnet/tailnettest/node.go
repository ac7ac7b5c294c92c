package tailnettest

import (
	"context"
	"testing"

	"tailscale.com/tsnet"

	"github.com/moatmesh/moat/internal/standin"
	"github.com/moatmesh/moat/node"
	"github.com/moatmesh/moat/node/guard"
)

// Node is what the harness needs of a running tailnet node
// (*tailnet.Node; this package cannot name it, as node/tailnet's own
// tests import it).
type Node interface {
	Run(ctx context.Context) error
	Close() error
	Tailnet() *tsnet.Server
}

// Models starts one stand-in OpenAI server for the test and returns the
// models "standin", "private" and "grouped", all served by it.
func Models(t testing.TB) []node.Model {
	t.Helper()
	up, err := standin.Start(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	var ms []node.Model
	for _, name := range []string{"standin", "private", "grouped"} {
		ms = append(ms, node.Model{Name: name, Upstream: guard.Upstream{URL: up.URL, Kind: guard.KindOpenAI}})
	}
	return ms
}

// Run runs n until the test ends (a Run error fails the test), waits
// until it has its home relay, and returns its guard's base URL on the
// tailnet.
func Run(t testing.TB, ctx context.Context, n Node) string {
	t.Helper()
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() { done <- n.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		n.Close()
	})
	if err := WaitForHomeDERP(ctx, n.Tailnet()); err != nil {
		t.Fatal(err)
	}
	ip4, _ := n.Tailnet().TailscaleIPs()
	return "http://" + ip4.String()
}
