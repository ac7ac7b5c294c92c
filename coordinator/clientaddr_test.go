package coordinator

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name, remote string
		hdr          map[string][]string
		trusted      []netip.Prefix
		want         string
	}{
		{"direct", "192.0.2.1:5000", nil, proxies, "192.0.2.1"},
		{"direct ignores XFF", "192.0.2.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, proxies, "192.0.2.1"},
		{"no trusted proxies ignores XFF", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, nil, "127.0.0.1"},
		{"proxy", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, proxies, "198.51.100.1"},
		{"spoofed left hops ignored", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4, 5.6.7.8, 198.51.100.1"}}, proxies, "198.51.100.1"},
		{"chain of proxies", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1, 10.1.2.3"}}, proxies, "198.51.100.1"},
		{"several lines", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4", "198.51.100.1, 10.0.0.9"}}, proxies, "198.51.100.1"},
		{"garbage hop: the last trusted", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4, nonsense"}}, proxies, "127.0.0.1"},
		{"all trusted: leftmost", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"10.0.0.1, 10.0.0.2"}}, proxies, "10.0.0.1"},
		{"no header: the proxy", "127.0.0.1:5000", nil, proxies, "127.0.0.1"},
		{"mapped v4", "[::ffff:192.0.2.9]:1", nil, proxies, "192.0.2.9"},
		{"forwarded is not read", "127.0.0.1:5000", map[string][]string{"Forwarded": {`for=1.2.3.4, for="[2001:db8::1]:4711";proto=https`}}, proxies, "127.0.0.1"},
		{"XFF with forwarded beside it", "127.0.0.1:5000", map[string][]string{"Forwarded": {"for=1.2.3.4"}, "X-Forwarded-For": {"198.51.100.1"}}, proxies, "198.51.100.1"},
		{"xff with port", "127.0.0.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1:443"}}, proxies, "198.51.100.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header(tc.hdr)}
			if got := ClientAddr(r, tc.trusted); got.String() != tc.want {
				t.Errorf("ClientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestClientKeyIPv6By64(t *testing.T) {
	a := clientKey(netip.MustParseAddr("2001:db8:1:2:aaaa::1"))
	b := clientKey(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	c := clientKey(netip.MustParseAddr("2001:db8:1:3::1"))
	if a != b || a == c {
		t.Fatalf("keys %q %q %q: want one per /64", a, b, c)
	}
	if k := clientKey(netip.MustParseAddr("192.0.2.1")); k != "192.0.2.1" {
		t.Fatalf("IPv4 key %q", k)
	}
}

// A flood of new sources evicts the quiet ones, never the busy source
// that is over its rate (the old table was cleared whole at 10,000).
func TestRateTableEvictsLeastRecentlyUsed(t *testing.T) {
	rt := newRateTable(1<<62, 2) // no refill during the test
	for rt.allow("attacker", time.Now()) {
	}
	for i := range rateTableCap + 200 {
		rt.allow(fmt.Sprintf("spoofed-%d", i), time.Now())
		if i%1000 == 0 && rt.allow("attacker", time.Now()) {
			t.Fatalf("the attacker's bucket was reset after %d new sources", i)
		}
	}
	if rt.allow("attacker", time.Now()) {
		t.Fatal("the attacker's bucket was reset by the flood")
	}
	if rt.mu.order.Len() > rateTableCap || len(rt.mu.byKey) > rateTableCap {
		t.Fatalf("table holds %d entries, cap %d", len(rt.mu.byKey), rateTableCap)
	}
}
