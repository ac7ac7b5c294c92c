package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The relay command and serve --relay refuse what a relay process cannot
// use, naming the flag; the relay takes no API or IdP flags.
func TestRelayFlagsRefused(t *testing.T) {
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"relay", "--public-url", "https://moat.example.com", "--data-dir", data}, "--relay-url"},
		{[]string{"relay", "--public-url", "https://moat.example.com", "--relay-url", "https://r.example.com/derp", "--data-dir", data}, "shares the cluster's database"},
		{[]string{"relay", "--public-url", "https://moat.example.com", "--relay-url", "http://r.example.com/derp", "--database", "postgres://db/moat"}, "--relay-url"},
		{[]string{"relay", "--public-url", "https://moat.example.com", "--relay-url", "https://r.example.com/derp", "--database", "postgres://db/moat", "--tls", "acme"}, "--tls"},
		{[]string{"relay", "--oidc-issuer", "https://idp.example.com"}, "unknown flag"},
		{[]string{"relay", "--public-url", "https://moat.example.com", "--relay-url", "https://r.example.com/derp", "--database", "postgres://db/moat", "--relay-mesh-url", "none"}, "--relay-mesh-url"},
		{[]string{"serve", "--public-url", "https://moat.example.com", "--data-dir", data, "--relay", "https://r.example.com"}, "--relay"},
		{[]string{"serve", "--public-url", "https://moat.example.com", "--data-dir", data, "--relay", "https://r.example.com:/derp"}, "empty port"},
		{[]string{"relay", "--public-url", "https://moat.example.com", "--relay-url", "https://r.example.com:/derp", "--database", "postgres://db/moat"}, "empty port"},
	} {
		code, _, stderr := runCoordinator(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want a refusal naming %q", tc.args, code, stderr, tc.want)
		}
	}
}

// TestRelaySharedConfigFile: one config file serves replicas and relay
// processes: serve skips relay-url, the relay skips serve's API and IdP
// keys.
func TestRelaySharedConfigFile(t *testing.T) {
	data := t.TempDir()
	conf := filepath.Join(t.TempDir(), "moat.conf")
	if err := os.WriteFile(conf, []byte("public-url https://moat.example.com\ndata-dir "+data+
		"\nrelay-url https://r.example.com/derp\noidc-issuer https://idp.example.com\noidc-client-id moat\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Each stops at a refusal past the file: the file itself was taken.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"relay", "--config", conf}, "shares the cluster's database"},
		{[]string{"serve", "--config", conf, "--relay", "https://r.example.com:/derp"}, "empty port"},
	} {
		code, _, stderr := runCoordinator(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "unknown key") {
			t.Errorf("%q: exit %d, %q; want a refusal naming %q", tc.args, code, stderr, tc.want)
		}
	}
	code, _, stderr := runCoordinator("users", "list", "--config", conf)
	if code != 0 {
		t.Errorf("users list with the shared file: exit %d, %q", code, stderr)
	}
}

// TestRelayFlagCommaSeparated: MOAT_RELAY takes several relays,
// comma-separated, like the other list settings; each is checked.
func TestRelayFlagCommaSeparated(t *testing.T) {
	t.Setenv("MOAT_RELAY", "https://a.example.com/derp,https://b.example.com:/derp")
	code, _, stderr := runCoordinator("serve", "--public-url", "https://moat.example.com", "--data-dir", t.TempDir())
	if code == 0 || !strings.Contains(stderr, `"https://b.example.com:/derp": an empty port`) {
		t.Errorf("exit %d, %q; want the second relay refused alone", code, stderr)
	}
}

// TestRelayHelpSaysRelay: the relay command's help tells what
// --metrics-listen, --data-dir and --relay-mesh-url mean to a relay
// process, not serve's texts; serve keeps its own.
func TestRelayHelpSaysRelay(t *testing.T) {
	_, relayHelp, _ := runCoordinator("relay", "--help")
	_, serveHelp, _ := runCoordinator("serve", "--help")
	for _, bad := range []string{"admin API token", "SQLite"} {
		if strings.Contains(relayHelp, bad) {
			t.Errorf("relay --help mentions %q:\n%s", bad, relayHelp)
		}
	}
	for _, want := range []string{"serves /metrics nowhere else", "the replicas' PostgreSQL", `"none" is refused`} {
		if !strings.Contains(relayHelp, want) {
			t.Errorf("relay --help lacks %q", want)
		}
	}
	if !strings.Contains(serveHelp, "admin API token") || !strings.Contains(serveHelp, "SQLite") {
		t.Errorf("serve --help lost its own texts:\n%s", serveHelp)
	}
}
