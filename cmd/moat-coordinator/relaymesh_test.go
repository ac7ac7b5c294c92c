package main

import (
	"net"
	"testing"
)

// The relay mesh URL: the flag when given, none for SQLite or "none",
// else this host's address at the --listen port.
func TestRelayMeshURL(t *testing.T) {
	host := hostAddress()
	for _, tc := range []struct {
		flag, database, listen string
		tls                    bool
		want                   string
	}{
		{"", "", ":8443", true, ""},
		{"none", "postgres://db/moat", ":8443", true, ""},
		{"https://10.1.2.3:8443/derp", "postgres://db/moat", ":8443", true, "https://10.1.2.3:8443/derp"},
		{"", "postgres://db/moat", "10.9.8.7:8443", true, "https://10.9.8.7:8443/derp"},
		{"", "postgres://db/moat", "10.9.8.7:8080", false, "http://10.9.8.7:8080/derp"},
		{"", "postgres://db/moat", ":8443", true, "https://" + net.JoinHostPort(host, "8443") + "/derp"},
	} {
		if tc.want == "https://:8443/derp" || tc.want == "https://[]:8443/derp" {
			continue // this host has no address to announce
		}
		s := &serveSettings{relayMesh: tc.flag, listen: tc.listen}
		s.store.database = tc.database
		got, err := s.relayMeshURL(tc.tls)
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q, %v; want %q", tc, got, err, tc.want)
		}
	}
}
