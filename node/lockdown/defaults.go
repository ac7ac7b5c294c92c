package lockdown

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// This file reads the host's own settings, so that the command layer
// can default the Config to what keeps the node manageable: its
// resolvers, time servers and DHCP.

// Files the system defaults are read from; tests point them elsewhere.
var (
	resolvConf        = "/etc/resolv.conf"
	resolvedUpstreams = "/run/systemd/resolve/resolv.conf" // systemd-resolved's real servers
	ntpConfigs        = []string{
		"/etc/chrony/chrony.conf", "/etc/chrony.conf", "/etc/systemd/timesyncd.conf",
		"/etc/ntpsec/ntp.conf", "/etc/ntp.conf",
	}
	ntpDropIns = []string{"/etc/chrony/sources.d/*.sources", "/etc/chrony/conf.d/*.conf", "/etc/systemd/timesyncd.conf.d/*.conf"}
	dhcpLeases = []string{
		"/run/systemd/netif/leases/*", "/var/lib/dhcp/dhclient*.lease*", "/var/lib/dhclient/*.lease*",
		"/var/lib/NetworkManager/*.lease", "/var/lib/dhcpcd/*.lease*", "/run/dhcpcd/*.lease*",
	}
)

// SystemResolvers returns the resolvers of /etc/resolv.conf. When that
// names only loopback (systemd-resolved's stub 127.0.0.53), it returns
// resolved's upstream servers as well, since those are what leave the
// host. An empty result with a nil error means none are configured.
func SystemResolvers() ([]netip.Addr, error) {
	addrs, err := readNameservers(resolvConf)
	if err != nil {
		return nil, fmt.Errorf("system resolvers: %w", err)
	}
	if slices.ContainsFunc(addrs, func(a netip.Addr) bool { return !a.IsLoopback() }) {
		return addrs, nil
	}
	up, err := readNameservers(resolvedUpstreams)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("system resolvers: %w", err)
	}
	return append(addrs, up...), nil
}

func readNameservers(path string) ([]netip.Addr, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseNameservers(f)
}

// parseNameservers reads the nameserver lines of a resolv.conf.
func parseNameservers(r io.Reader) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		if a, err := netip.ParseAddr(f[1]); err == nil && !slices.Contains(out, a.WithZone("")) {
			out = append(out, a.WithZone(""))
		}
	}
	return out, sc.Err()
}

// SystemNTPServers returns the time servers named in chrony's,
// systemd-timesyncd's or ntpd's configuration (server, pool, peer, NTP=
// and FallbackNTP= entries), as written: names or addresses.
func SystemNTPServers() ([]string, error) {
	files := slices.Clone(ntpConfigs)
	for _, g := range ntpDropIns {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	var out []string
	for _, path := range files {
		f, err := os.Open(path)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("system NTP servers: %w", err)
		}
		servers, err := parseNTPConfig(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("system NTP servers: %s: %w", path, err)
		}
		for _, s := range servers {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out, nil
}

// parseNTPConfig reads chrony/ntpd lines ("server NAME ...", "pool
// NAME ...") and timesyncd lines ("NTP=a b", "FallbackNTP=c").
func parseNTPConfig(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && (k == "NTP" || k == "FallbackNTP") {
			out = append(out, strings.Fields(v)...)
			continue
		}
		f := strings.Fields(line)
		if len(f) >= 2 && (f[0] == "server" || f[0] == "pool" || f[0] == "peer") {
			out = append(out, strings.Trim(f[1], "[]"))
		}
	}
	return out, sc.Err()
}

// UsesDHCP reports whether this host holds a DHCP lease from one of the
// common clients (systemd-networkd, dhclient, NetworkManager, dhcpcd).
func UsesDHCP() bool {
	for _, g := range dhcpLeases {
		if m, _ := filepath.Glob(g); len(m) > 0 {
			return true
		}
	}
	return false
}

// InferencePorts returns the ports of the model servers' URLs (such as
// the node's --model upstreams), without repeats, for
// Config.InferencePorts.
func InferencePorts(urls ...string) ([]uint16, error) {
	var out []uint16
	for _, u := range urls {
		_, port, err := splitUpstream(u)
		if err != nil {
			return nil, fmt.Errorf("model URL %q: %w", u, err)
		}
		if !slices.Contains(out, port) {
			out = append(out, port)
		}
	}
	return out, nil
}

// ServiceUser returns the uid of a user given by name or number, for
// Config.ServiceUID and CoordinatorUIDs.
func ServiceUser(name string) (uint32, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("service user: %w", err)
	}
	n, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("service user %q: uid %q: %w", name, u.Uid, err)
	}
	return uint32(n), nil
}
