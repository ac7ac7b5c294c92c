package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/client"
	"github.com/moatmesh/moat/mesh/wire"
)

func TestPrintStatus(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	st := &client.Status{
		Coordinator: "https://moat.example.com", Endpoint: "http://127.0.0.1:4000", Backend: "netstack",
		Identity: wire.Identity{Login: "alice@example.com", DeviceID: "d1", DeviceName: "laptop",
			LastMFA: now.Add(-90 * time.Second), Expiry: now.Add(11 * time.Hour)},
		Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.2")},
		Nodes: []client.NodeStatus{{Name: "gpu-1", Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.3")},
			Models: []string{"llama", "qwen"}, LastHandshake: now.Add(-12 * time.Second),
			Path: "direct", Endpoint: "192.0.2.7:51820", RTTMillis: 1.25}},
		Models: []string{"llama", "qwen"},
	}
	var b strings.Builder
	printStatus(&b, st, now)
	for _, want := range []string{"alice@example.com", "laptop (d1) 100.64.0.2", "(in 11h0m0s)", "1m30s ago",
		"https://moat.example.com: connected", "gpu-1", "handshake 12s ago", "Models:        llama, qwen",
		"path: direct 192.0.2.7:51820, round trip 1.2 ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
	st.Identity.Expiry = now.Add(-time.Minute)
	b.Reset()
	printStatus(&b, st, now)
	if !strings.Contains(b.String(), "EXPIRED; run `moat login`") {
		t.Errorf("expired key not flagged:\n%s", b.String())
	}
	st.Nodes[0].Path, st.Nodes[0].Relay = "relay", "https://moat.example.com/derp"
	b.Reset()
	printStatus(&b, st, now)
	if !strings.Contains(b.String(), "path: relayed through https://moat.example.com/derp") {
		t.Errorf("relayed path not shown:\n%s", b.String())
	}
}
