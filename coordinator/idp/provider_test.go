package idp

import (
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
)

func TestConfigRefused(t *testing.T) {
	box := seal.New([32]byte{})
	good := func() Config {
		return Config{
			Issuer:  "https://moat.example.com/idp",
			Clients: []Client{{ID: "c", Secret: "s", RedirectURIs: []string{"https://moat.example.com/oidc/callback"}}},
			DataDir: t.TempDir(), Box: box,
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"http issuer", func(c *Config) { c.Issuer = "http://moat.example.com/idp" }, "https"},
		{"http non-loopback even insecure", func(c *Config) { c.Issuer, c.Insecure = "http://moat.example.com/idp", true }, "https"},
		{"http loopback without insecure", func(c *Config) { c.Issuer = "http://127.0.0.1:8080/idp" }, "https"},
		{"trailing slash", func(c *Config) { c.Issuer = "https://moat.example.com/idp/" }, "slash"},
		{"query", func(c *Config) { c.Issuer = "https://moat.example.com/idp?x=1" }, "query"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "DataDir"},
		{"no box", func(c *Config) { c.Box = nil }, "Box"},
		{"no clients", func(c *Config) { c.Clients = nil }, "client"},
		{"duplicate client", func(c *Config) { c.Clients = append(c.Clients, c.Clients[0]) }, "not unique"},
		{"no redirect", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "no redirect"},
		{"relative redirect", func(c *Config) { c.Clients[0].RedirectURIs = []string{"/cb"} }, "absolute"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good()
			tt.mutate(&c)
			_, err := New(t.Context(), c, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want it to mention %q", err, tt.want)
			}
		})
	}
	c := good()
	c.Issuer, c.Insecure = "http://localhost:8080/idp", true
	if _, err := c.validate(); err != nil {
		t.Fatalf("loopback http with Insecure: %v", err)
	}
}

func TestMemoryLimits(t *testing.T) {
	m := newMemory()
	now := time.Unix(1_700_000_000, 0)
	for i := range maxRequests {
		if err := m.addRequest(&authRequest{id: string(rune(i)) + "x", expires: now.Add(time.Minute)}, now); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := m.addRequest(&authRequest{id: "one-too-many", expires: now.Add(time.Minute)}, now); err != errBusy {
		t.Fatalf("over the cap: %v", err)
	}
	later := now.Add(time.Minute) // all expired: swept to make room
	if err := m.addRequest(&authRequest{id: "fresh", expires: later.Add(time.Minute), done: true}, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if err := m.saveCode("fresh", "c1", later); err != nil {
		t.Fatal(err)
	}
	if err := m.saveCode("fresh", "c2", later); err != errCodeIssued {
		t.Fatalf("second code: %v", err)
	}
	if _, ok := m.takeCode("c1", later.Add(codeTTL)); ok {
		t.Fatal("expired code taken")
	}
	if _, ok := m.takeCode("c1", later); ok {
		t.Fatal("code taken twice (after an expired attempt)")
	}
}
