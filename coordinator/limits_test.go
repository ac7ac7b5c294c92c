package coordinator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
	"github.com/moatmesh/moat/mesh/wire"
)

// metricValue reads one unlabelled metric of the coordinator.
func metricValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	fams, err := s.mx.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// waitFor polls cond until it holds, failing after 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openStream opens a raw netmap stream and returns its body.
func openStream(t *testing.T, url string, cred wire.Secret, hdr ...string) (*http.Response, error) {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"/api/v1/netmap", nil)
	req.Header.Set("Authorization", "Bearer "+string(cred))
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return (&http.Client{Transport: tr}).Do(req)
}

// One device holds at most two netmap streams: each new one ends the
// oldest, so 30 streams of one credential leave two open, and the
// earliest ones see their stream end.
func TestNetmapStreamsPerDeviceCapped(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	d := tc.signIn(t, tc.addPerson(t, "alice@example.com", false), "laptop")
	var bodies []io.ReadCloser
	for i := range 30 {
		resp, err := openStream(t, tc.URL, d.res.Credential)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %v %v", i, err, resp)
		}
		t.Cleanup(func() { resp.Body.Close() })
		bodies = append(bodies, resp.Body)
	}
	waitFor(t, "two streams open", func() bool { return metricValue(t, tc.Server, "moat_coordinator_netmap_streams") == 2 })
	// The first stream was ended by the server: reading it reaches EOF.
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, bodies[0]); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("oldest stream ended with %v, want a clean end", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the oldest stream is still open")
	}
	// The newest still delivers.
	if line, err := bufio.NewReader(bodies[29]).ReadString('\n'); err != nil || !strings.Contains(line, "seq") {
		t.Fatalf("newest stream: %q, %v", line, err)
	}
}

// Only two polls of one login wait at once; a third is refused at once.
func TestPollsPerLoginCapped(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	priv, _ := key.NewPrivate()
	start, err := tc.client(t, "").StartLogin(t.Context(), wire.LoginRequest{Key: priv.Public(), Hostname: "h", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	body := jsonBody(map[string]string{"poll": string(start.Poll)})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { // a waiting poll, again when refused, until cancelled
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "POST", tc.URL+"/api/v1/login/poll", strings.NewReader(body))
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	defer wg.Wait()
	waitFor(t, "a third poll refused", func() bool {
		probe, cancel := context.WithTimeout(ctx, 300*time.Millisecond) // an admitted poll would wait 20 s
		defer cancel()
		req, _ := http.NewRequestWithContext(probe, "POST", tc.URL+"/api/v1/login/poll", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusTooManyRequests
	})
	cancel()
}

// Behind a trusted proxy, limits key on the forwarded client: a flood
// from one client is refused while another client is still served.
// From an untrusted peer, X-Forwarded-For changes nothing.
func TestRateLimitsKeyOnForwardedClient(t *testing.T) {
	// flood sends 40 login starts, the i-th from xff(i), and counts 429s.
	flood := func(tc *testCoord, xff func(i int) string) (limited int) {
		for i := range 40 {
			req, _ := http.NewRequest("POST", tc.URL+"/api/v1/login", strings.NewReader("{}"))
			req.Header.Set("X-Forwarded-For", xff(i))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusTooManyRequests {
				limited++
			}
		}
		return limited
	}
	same := func(a string) func(int) string { return func(int) string { return a } }
	proxied := startCoord(t, t.TempDir(), newClock(), func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.SignInRate = 20
	})
	if flood(proxied, same("198.51.100.7, 127.0.0.1")) == 0 {
		t.Fatal("a flood from one forwarded client was not limited")
	}
	if n := flood(proxied, same("198.51.100.8")); n > 20 {
		t.Fatalf("another client behind the proxy was limited %d times of 40: it shares the first one's bucket", n)
	}
	direct := startCoord(t, t.TempDir(), newClock(), func(c *Config) { c.SignInRate = 20 })
	spoofed := func(i int) string { return netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}).String() }
	if flood(direct, spoofed) == 0 {
		t.Fatal("spoofed X-Forwarded-For from an untrusted peer escaped the rate limit")
	}
}

// One client address holds at most MaxConnsPerClient requests in flight
// (here behind a trusted proxy, where the listener cannot tell clients
// apart).
func TestRequestsInFlightPerClient(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock(), func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		c.MaxConnsPerClient = 2
	})
	d := tc.signIn(t, tc.addPerson(t, "alice@example.com", false), "laptop")
	e := tc.signIn(t, tc.addPerson(t, "bob@example.com", false), "desk")
	for _, cred := range []wire.Secret{d.res.Credential, e.res.Credential} {
		resp, err := openStream(t, tc.URL, cred, "X-Forwarded-For", "192.0.2.1")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("stream: %v %v", err, resp)
		}
		t.Cleanup(func() { resp.Body.Close() })
	}
	resp, err := openStream(t, tc.URL, e.res.Credential, "X-Forwarded-For", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third request in flight from one client: %d, want 429", resp.StatusCode)
	}
	resp, err = openStream(t, tc.URL, e.res.Credential, "X-Forwarded-For", "192.0.2.2")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("another client: %v %v", err, resp)
	}
	resp.Body.Close()
}

// The listener closes connections beyond MaxConnsPerClient from one
// address at once, and takes new ones when old ones close.
func TestConnectionsPerClientCapped(t *testing.T) {
	s := &Server{cfg: Config{MaxConnsPerClient: 3}}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := s.LimitListener(inner)
	defer ln.Close()
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var held []net.Conn
	for range 3 {
		dial()
		held = append(held, <-accepted)
	}
	over := dial()
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("fourth connection: read %v, want EOF (closed by the server)", err)
	}
	held[0].Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after one closed was not accepted")
	}
}

// Policy checks are bounded: a policy nesting groups 2,000 deep is
// refused at once, and with every check slot taken a validation is
// refused with 503 rather than queued without end.
func TestPolicyChecksBounded(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	tok := tc.adminToken(t)
	var deep strings.Builder
	deep.WriteString(`{"groups": {`)
	for i := range 2000 {
		fmt.Fprintf(&deep, `"group:g%d": ["group:g%d"], `, i, i+1)
	}
	deep.WriteString(`"group:g2000": ["a@example.com"]}}`)
	start := time.Now()
	status, body := tc.admin(t, tok, "POST", "/policy/validate", jsonBody(map[string]string{"text": deep.String()}))
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "nest more than") {
		t.Fatalf("deep groups: %d %s", status, body)
	}
	t.Logf("2,000-deep groups refused in %s", time.Since(start))

	for range maxPolicyChecks { // every slot taken
		policyChecks <- struct{}{}
	}
	status, body = tc.admin(t, tok, "POST", "/policy/validate", jsonBody(map[string]string{"text": "{}"}))
	for range maxPolicyChecks {
		<-policyChecks
	}
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "busy") {
		t.Fatalf("validation with every slot taken: %d %s", status, body)
	}
	if status, _ := tc.admin(t, tok, "POST", "/policy/validate", jsonBody(map[string]string{"text": "{}"})); status != http.StatusOK {
		t.Fatalf("validation with slots free: %d", status)
	}
}

// Posts to the embedded provider are rate-limited per client address.
func TestIdPFormsRateLimited(t *testing.T) {
	tc := startCoord(t, t.TempDir(), newClock())
	limited := 0
	for range 45 {
		if status, _ := post(t, tc.URL+"/idp/login", "application/x-www-form-urlencoded", "email=a%40example.com&password=x"); status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("45 password posts in a burst from one address were all served")
	}
}
