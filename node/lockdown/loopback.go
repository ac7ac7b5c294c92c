package lockdown

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// ErrNotListening is returned by CheckLoopbackOnly when nothing listens on
// the upstream's port (yet): the caller may retry once the server is up.
var ErrNotListening = errors.New("nothing listens on the upstream's port")

// fixHint says how to make the common inference servers listen on
// loopback only.
func fixHint(port uint16) string {
	return fmt.Sprintf("make it listen on loopback only "+
		"(ollama: OLLAMA_HOST=127.0.0.1:%[1]d; vLLM: --host 127.0.0.1 --port %[1]d; "+
		"llama.cpp llama-server: --host 127.0.0.1 --port %[1]d) and restart it", port)
}

// CheckLoopbackOnly verifies that the inference server behind upstream (a
// URL such as "http://127.0.0.1:11434" or a host:port) is on loopback and
// that every TCP socket listening on its port in this network namespace
// is bound to 127.0.0.0/8 or ::1, as /proc/net/tcp and /proc/net/tcp6
// show. A server bound to 0.0.0.0 or :: would be reachable from the
// network, so the node must refuse to serve its models; the error says
// how to fix it. It returns an error wrapping ErrNotListening when no
// socket listens on the port.
func CheckLoopbackOnly(upstream string) error {
	host, port, err := splitUpstream(upstream)
	if err != nil {
		return fmt.Errorf("upstream %q: %w", upstream, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("upstream %q is not on loopback: run the inference server on this node, %s, and point the upstream at http://127.0.0.1:%d",
			upstream, fixHint(port), port)
	}
	var socks []netip.AddrPort
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		s, err := readListeners(f, port)
		if err != nil {
			return fmt.Errorf("upstream %q: %w", upstream, err)
		}
		socks = append(socks, s...)
	}
	return judgeListeners(upstream, port, socks)
}

func judgeListeners(upstream string, port uint16, socks []netip.AddrPort) error {
	if len(socks) == 0 {
		return fmt.Errorf("upstream %q: %w %d; start the inference server first", upstream, ErrNotListening, port)
	}
	for _, s := range socks {
		if !s.Addr().Unmap().IsLoopback() {
			return fmt.Errorf("upstream %q: the inference server listens on %v, reachable from the network; %s",
				upstream, s, fixHint(port))
		}
	}
	return nil
}

// splitUpstream returns the host and port of a URL or host:port.
func splitUpstream(upstream string) (string, uint16, error) {
	hostport := upstream
	defPort := ""
	if strings.Contains(upstream, "://") {
		u, err := url.Parse(upstream)
		if err != nil {
			return "", 0, err
		}
		hostport, defPort = u.Host, map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if defPort == "" {
			return "", 0, fmt.Errorf("want a URL or host:port: %w", err)
		}
		host, port = strings.Trim(hostport, "[]"), defPort
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, uint16(p), nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// readListeners returns the local addresses of the LISTEN sockets on
// port in a /proc/net/tcp-format file.
func readListeners(file string, port uint16) ([]netip.AddrPort, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(file, "6") {
		return nil, nil // no IPv6 in this kernel
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseListeners(f, port)
}

const tcpListen = "0A"

func parseListeners(r io.Reader, port uint16) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	sc := bufio.NewScanner(r)
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != tcpListen {
			continue
		}
		local, err := parseProcAddr(f[1])
		if err != nil {
			return nil, err
		}
		if local.Port() == port {
			out = append(out, local)
		}
	}
	return out, sc.Err()
}

// parseProcAddr parses "0100007F:2CAA": the address as 32-bit words in
// host byte order, then the port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	addrHex, portHex, ok := strings.Cut(s, ":")
	raw, err := hex.DecodeString(addrHex)
	if !ok || err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad socket address %q", s)
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad socket port %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each word from host to network order
		binary.BigEndian.PutUint32(raw[i:], binary.NativeEndian.Uint32(raw[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(a, uint16(port)), nil
}
