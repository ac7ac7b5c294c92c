package idp

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
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

// TestStateLimits checks the caps, expiry and one-code-per-sign-in rule
// of the protocol state in the store.
func TestStateLimits(t *testing.T) {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "moat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	m := &state{st: st, maxRequests: 5, maxTokens: 2}
	now := time.Unix(1_700_000_000, 0)
	for i := range m.maxRequests {
		if err := m.addRequest(ctx, &authRequest{id: fmt.Sprint(i), expires: now.Add(time.Minute)}, now); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if err := m.addRequest(ctx, &authRequest{id: "one-too-many", expires: now.Add(time.Minute)}, now); err != errBusy {
		t.Fatalf("over the cap: %v", err)
	}
	later := now.Add(time.Minute) // all expired: they no longer count
	if err := m.addRequest(ctx, &authRequest{id: "fresh", expires: later.Add(time.Minute), done: true}, later); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := m.request(ctx, "0", later); err != errExpired {
		t.Fatalf("expired request: %v", err)
	}
	if err := m.saveCode(ctx, "fresh", "c1", later); err != nil {
		t.Fatal(err)
	}
	if err := m.saveCode(ctx, "fresh", "c2", later); err != errCodeIssued {
		t.Fatalf("second code: %v", err)
	}
	if _, ok := m.takeCode(ctx, "c1", later.Add(codeTTL)); ok {
		t.Fatal("expired code taken")
	}
	if _, ok := m.takeCode(ctx, "c1", later); ok {
		t.Fatal("code taken twice (after an expired attempt)")
	}
	for i := range m.maxTokens {
		if err := m.addToken(ctx, fmt.Sprint(i), accessToken{subject: "u", expires: later.Add(time.Minute)}, later); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if err := m.addToken(ctx, "x", accessToken{subject: "u", expires: later.Add(time.Minute)}, later); err != errBusy {
		t.Fatalf("token over the cap: %v", err)
	}
	if _, ok := m.token(ctx, "0", later); !ok {
		t.Fatal("live token not found")
	}
	if _, ok := m.token(ctx, "0", later.Add(time.Minute)); ok {
		t.Fatal("expired token found")
	}
}

// TestStateAtRest checks that the store holds no id, code or token in
// the clear.
func TestStateAtRest(t *testing.T) {
	dir := t.TempDir()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(dir, "moat.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, now := t.Context(), time.Unix(1_700_000_000, 0)
	m := &state{st: st}
	id, code, tok := randomID(), randomID(), randomID()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(m.addRequest(ctx, &authRequest{id: id, clientID: "c", expires: now.Add(time.Minute), done: true}, now))
	must(m.saveCode(ctx, id, code, now))
	must(m.addToken(ctx, tok, accessToken{subject: "u", expires: now.Add(time.Minute)}, now))
	st.Close()
	files, err := os.ReadDir(dir)
	must(err)
	for _, f := range files {
		raw, err := os.ReadFile(filepath.Join(dir, f.Name()))
		must(err)
		for _, secret := range []string{id, code, tok} {
			if bytes.Contains(raw, []byte(secret)) {
				t.Fatalf("%s holds an id, code or token in the clear", f.Name())
			}
		}
	}
}
