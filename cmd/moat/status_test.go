package main

import (
	"errors"
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
	if !strings.Contains(b.String(), "path: relayed via https://moat.example.com/derp") {
		t.Errorf("relayed path not shown:\n%s", b.String())
	}
	st.Nodes[0].Path, st.Nodes[0].Endpoint, st.Nodes[0].LastHandshake = "unproven", "", time.Time{}
	b.Reset()
	printStatus(&b, st, now)
	if !strings.Contains(b.String(), "handshake never") || !strings.Contains(b.String(), "path: no contact") {
		t.Errorf("a node out of contact not shown so:\n%s", b.String())
	}
}

// TestPrintUsage: status shows what the person used of their limits and
// budgets, what is left and when it resets, and says when it cannot.
func TestPrintUsage(t *testing.T) {
	resets := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	u := &wire.Usage{
		Grants: []wire.GrantUsage{
			{Grant: "grants[0]", Models: []string{"llama", "qwen"}, Limits: wire.Limits{RPM: 60, TokensPerDay: 100000, MaxTokens: 2048}, UsedToday: 1200, Resets: resets},
			{Grant: "grants[2]", Models: []string{"small"}},
		},
		Budgets: []wire.BudgetState{
			{Name: "group:ml's budget of 500.00 EUR a month", Unit: "money", Currency: "EUR", Used: 412_500_000, Warn: 400_000_000, Limit: 500_000_000, Resets: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
			{Name: "each person's under grants[2] budget of 2000 tokens a day", Unit: "tokens", Used: 2100, Limit: 2000, Resets: resets},
		},
	}
	var b strings.Builder
	printUsage(&b, u, nil)
	want := `Use:
  grants[0] (llama, qwen): 1200 of 100000 tokens used today, 98800 left (resets 2026-11-23 00:00 UTC); 60 requests/min; answers up to 2048 tokens
  grants[2] (small): no limits
  group:ml's budget of 500.00 EUR a month: 412.50 EUR used, 87.50 EUR left; past its warning at 400.00 EUR; resets 2026-12-01 00:00 UTC
  each person's under grants[2] budget of 2000 tokens a day: 2100 tokens used, 0 tokens left (USED UP: requests it counts are refused); resets 2026-11-23 00:00 UTC
`
	if b.String() != want {
		t.Errorf("usage:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	printUsage(&b, nil, errors.New("coordinator unreachable"))
	if b.String() != "Use:\n  (unknown: coordinator unreachable)\n" {
		t.Errorf("usage without the coordinator:\n%s", b.String())
	}
}
