package lockdown

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSystemResolvers(t *testing.T) {
	dir := t.TempDir()
	stub, up := filepath.Join(dir, "resolv.conf"), filepath.Join(dir, "upstream.conf")
	check(t, os.WriteFile(stub, []byte("# stub\nnameserver 127.0.0.53\noptions edns0\n"), 0o644))
	check(t, os.WriteFile(up, []byte("nameserver 198.18.0.53\nnameserver 2001:2::53\nsearch example\n"), 0o644))
	defer func(a, b string) { resolvConf, resolvedUpstreams = a, b }(resolvConf, resolvedUpstreams)
	resolvConf, resolvedUpstreams = stub, up
	got, err := SystemResolvers()
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.53"), netip.MustParseAddr("198.18.0.53"), netip.MustParseAddr("2001:2::53")}
	if !slices.Equal(got, want) {
		t.Errorf("behind systemd-resolved: %v, want %v", got, want)
	}
	resolvConf = up // a plain resolv.conf is taken as it is
	if got, _ := SystemResolvers(); len(got) != 2 {
		t.Errorf("plain: %v", got)
	}
}

func TestParseNTPConfig(t *testing.T) {
	in := "# chrony\npool 2.debian.pool.ntp.org iburst\nserver 198.18.0.123 iburst\n[Time]\nNTP=time.example.org 198.18.0.124\nFallbackNTP=ntp.ubuntu.com\n"
	got, err := parseNTPConfig(strings.NewReader(in))
	want := []string{"2.debian.pool.ntp.org", "198.18.0.123", "time.example.org", "198.18.0.124", "ntp.ubuntu.com"}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v %v, want %v", got, err, want)
	}
}

func TestInferencePorts(t *testing.T) {
	got, err := InferencePorts("http://127.0.0.1:11434", "http://127.0.0.1:8000/v1", "http://localhost:8000", "https://[::1]")
	if err != nil || !slices.Equal(got, []uint16{11434, 8000, 443}) {
		t.Errorf("got %v %v", got, err)
	}
	if _, err := InferencePorts("http://127.0.0.1:0"); err == nil {
		t.Error("port 0 accepted")
	}
	if uid, err := ServiceUser("65534"); err != nil || uid != 65534 {
		t.Errorf("ServiceUser: %d %v", uid, err)
	}
}

func TestResolveNames(t *testing.T) {
	lookups := 0
	cfg := Config{CoordinatorURL: "https://coord.example:8443/", NTPServers: []string{"198.18.0.123", "time.example"},
		Lookup: func(_ context.Context, host string) ([]netip.Addr, error) {
			lookups++
			switch host {
			case "coord.example":
				return []netip.Addr{netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("::ffff:198.18.0.9")}, nil
			case "time.example":
				return []netip.Addr{netip.MustParseAddr("2001:2::123")}, nil
			}
			return nil, errors.New("no such host")
		}}
	coord, ntp, err := resolveNames(t.Context(), cfg)
	if err != nil || lookups != 2 {
		t.Fatalf("%v after %d lookups", err, lookups)
	}
	if want := []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:8443"), netip.MustParseAddrPort("198.18.0.9:8443")}; !slices.Equal(coord, want) {
		t.Errorf("coordinator %v, want %v", coord, want)
	}
	if len(ntp) != 1 || ntp[0] != netip.MustParseAddr("2001:2::123") {
		t.Errorf("ntp %v", ntp)
	}
	e := wantElems(cfg, dynamic{coordinator: coord, ntp: ntp})
	if len(e[setCoordinator4]) != 2 || len(e[setNTP4]) != 1 || len(e[setNTP6]) != 1 {
		t.Errorf("sets: %v", e)
	}
	cfg.NTPServers = []string{"missing.example"}
	if _, _, err := resolveNames(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "missing.example") {
		t.Errorf("an unresolvable name: %v", err)
	}
}
