package lockdown

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"
)

// TestCheckLoopbackOnly opens real listeners and checks what
// CheckLoopbackOnly says about each.
func TestCheckLoopbackOnly(t *testing.T) {
	for _, tc := range []struct {
		listen  string
		network string
		want    string // "" for no error, else a part of the error
	}{
		{"127.0.0.1:0", "tcp4", ""},
		{"127.0.0.2:0", "tcp4", ""},
		{"[::1]:0", "tcp6", ""},
		{"0.0.0.0:0", "tcp4", "listens on 0.0.0.0:"},
		{"[::]:0", "tcp6", "listens on [::]:"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.listen)
			if err != nil {
				t.Skipf("cannot listen on %s here: %v", tc.listen, err)
			}
			defer ln.Close()
			port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
			for _, upstream := range []string{"http://127.0.0.1:" + port + "/v1", "localhost:" + port} {
				err := CheckLoopbackOnly(upstream)
				checkErr(t, upstream, err, tc.want)
				if err != nil && !strings.Contains(err.Error(), "OLLAMA_HOST=127.0.0.1:"+port) {
					t.Errorf("%s: error does not say how to fix it: %v", upstream, err)
				}
			}
		})
	}
}

func TestCheckLoopbackOnlyNotListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	if err := CheckLoopbackOnly("127.0.0.1:" + port); !errors.Is(err, ErrNotListening) {
		t.Errorf("closed port: %v, want ErrNotListening", err)
	}
}

func TestCheckLoopbackOnlyUpstreams(t *testing.T) {
	for _, tc := range []struct{ upstream, want string }{
		{"http://198.18.0.9:8000", "not on loopback"},
		{"gpu.example.com:8000", "not on loopback"},
		{"127.0.0.1", "want a URL or host:port"},
		{"http://127.0.0.1:0", "bad port"},
		{"http://127.0.0.1:99999", "bad port"},
	} {
		checkErr(t, tc.upstream, CheckLoopbackOnly(tc.upstream), tc.want)
	}
}

func checkErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Errorf("%s: %v, want no error", what, err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("%s: %v, want an error containing %q", what, err, want)
	}
}

func TestParseListeners(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 00000000:2CAA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
   2: 0100007F:2CAA 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
   3: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 100 0 0 10 0
`
	got, err := parseListeners(strings.NewReader(tcp), 11434)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].String() != "127.0.0.1:11434" || got[1].String() != "0.0.0.0:11434" {
		t.Errorf("got %v, want [127.0.0.1:11434 0.0.0.0:11434] (little-endian host)", got)
	}
}

func FuzzParseListeners(f *testing.F) {
	f.Add("hdr\n 0: 0100007F:2CAA 00000000:0000 0A x\n")
	f.Add("hdr\n 0: 00000000000000000000000001000000:2CAA 0:0 0A\n")
	f.Fuzz(func(t *testing.T, s string) {
		parseListeners(strings.NewReader(s), 11434)
	})
}
