package main

import (
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
		{[]string{"serve", "--public-url", "https://moat.example.com", "--data-dir", data, "--relay", "https://r.example.com"}, "--relay"},
	} {
		code, _, stderr := runCoordinator(tc.args...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%q: exit %d, %q; want a refusal naming %q", tc.args, code, stderr, tc.want)
		}
	}
}
