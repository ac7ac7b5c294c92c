package node

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/moatmesh/moat/node/guard"
)

// TestServeLocalMetrics: once registered, the audit shipping lag is
// served on the node's local listener.
func TestServeLocalMetrics(t *testing.T) {
	g, err := guard.New(guard.Config{Models: map[string]guard.Upstream{"m1": {URL: "http://127.0.0.1:1", Kind: "openai"}}})
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{cfg: Config{StateDir: t.TempDir()}, guard: g}
	if err := n.registerMetrics(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go n.ServeLocal(ln)
	defer g.Close()
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"moat_node_audit_unshipped_bytes 0", "moat_node_audit_oldest_unshipped_age_seconds 0"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
