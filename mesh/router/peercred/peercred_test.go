package peercred

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"testing"
)

// connect returns both ends of a TCP connection on network at addr.
func connect(t *testing.T, network, addr string) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer ln.Close()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

func ends(c net.Conn) (local, remote netip.AddrPort) {
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

func TestLoopbackUIDOfOwnConnection(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	for _, c := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(c.network, func(t *testing.T) {
			server, client := connect(t, c.network, c.addr)
			uid, err := LoopbackUID(ends(server))
			if err != nil || uid != uint32(os.Geteuid()) {
				t.Fatalf("uid of our own connection: %d, %v; want %d", uid, err, os.Geteuid())
			}
			// Once the peer's socket is gone, nobody owns it.
			client.Close()
			local, remote := ends(server)
			server.Close()
			if _, err := LoopbackUID(local, remote); !errors.Is(err, ErrNotFound) {
				t.Fatalf("closed connection: %v, want ErrNotFound", err)
			}
		})
	}
}

func TestLoopbackUIDRefusesOtherAddresses(t *testing.T) {
	lo := netip.MustParseAddrPort("127.0.0.1:4000")
	for _, remote := range []string{"192.0.2.1:5000", "[::1]:5000"} {
		if _, err := LoopbackUID(lo, netip.MustParseAddrPort(remote)); err == nil {
			t.Errorf("peer %s accepted", remote)
		}
	}
}
