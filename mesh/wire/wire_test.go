package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

func pub(t testing.TB) key.Public {
	p, err := key.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return p.Public()
}

func sampleNetMap(t testing.TB) *NetMap {
	return &NetMap{
		Version: Version,
		Seq:     7,
		Self: Self{
			Key:       pub(t),
			Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("fd7a:6d6f:6174::1")},
			Identity:  Identity{Tags: []string{"tag:gpu"}, DeviceID: "n1", DeviceName: "gpu-1"},
		},
		Peers: []Peer{{
			Key:       pub(t),
			Addresses: []netip.Addr{netip.MustParseAddr("100.64.0.2")},
			Endpoints: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:41641")},
			Identity: Identity{
				UserID: "u1", Login: "alice@example.com", Groups: []string{"ml-research"},
				DeviceID: "d1", DeviceName: "Alice's laptop",
				LastMFA: time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC),
				Expiry:  time.Date(2026, 11, 22, 21, 0, 0, 0, time.UTC),
			},
			Models:    []string{"llama-3.1-70b", "qwen"},
			APIs:      map[string]string{"qwen": "ollama"},
			Access:    []ModelAccess{{Model: "llama-3.1-70b", Grant: 0}},
			KeepAlive: 25,
		}},
		Rules: &NodeRules{
			Grants: []GrantRule{{ID: "grants[0]", MFA: Duration(12 * time.Hour), Limits: Limits{RPM: 120}}},
			Filter: []FilterRule{{Src: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}, Ports: []PortRange{{First: 22, Last: 22}}}},
		},
	}
}

func TestNetMapRoundTrip(t *testing.T) {
	nm := sampleNetMap(t)
	b, err := json.Marshal(nm)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeNetMap(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(got)
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the netmap:\n%s\n%s", b, b2)
	}
	if !got.Peers[0].Key.Equal(nm.Peers[0].Key) || got.Rules.Grants[0].MFA != Duration(12*time.Hour) {
		t.Fatal("round trip lost values")
	}
}

func TestUnknownFieldsTolerated(t *testing.T) {
	b, _ := json.Marshal(sampleNetMap(t))
	b = bytes.Replace(b, []byte(`{"version":1,`), []byte(`{"version":1,"fromTheFuture":{"x":[1,2]},`), 1)
	if _, err := DecodeNetMap(bytes.NewReader(b)); err != nil {
		t.Fatalf("unknown field refused: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, _ := json.Marshal(sampleNetMap(t))
	edit := func(old, new string) string {
		if !bytes.Contains(good, []byte(old)) {
			t.Fatalf("sample has no %q", old)
		}
		return strings.Replace(string(good), old, new, 1)
	}
	short := edit(`"key":"`, `"key":"AAAA`)
	for _, tc := range []struct{ name, in, want string }{
		{"garbage", "{not json", "invalid JSON at offset"},
		{"empty", "", "empty input"},
		{"truncated", string(good[:len(good)/2]), "input ends early"},
		{"trailing", string(good) + `{}`, "unexpected data after the value"},
		{"wrong type", edit(`"seq":7`, `"seq":"7"`), "field seq: got JSON string, want uint64"},
		{"nested wrong type", edit(`"keepAlive":25`, `"keepAlive":true`), "field peers.keepAlive: got JSON bool"},
		{"wrong key length", short, "parse public key: want 44 base64 characters"},
		{"bad address", edit(`"100.64.0.2"`, `"100.64.0.300"`), "invalid value"},
		{"overlapping addresses", edit(`"100.64.0.2"`, `"100.64.0.1"`), "peers[0].addresses[0]: 100.64.0.1 is already the address of self"},
		{"no version", edit(`"version":1`, `"version":0`), "version 0"},
		{"grant out of range", edit(`"grant":0`, `"grant":3`), "grant 3 does not exist"},
		{"bad model name", edit(`"model":"llama-3.1-70b"`, `"model":"a b"`), "has spaces"},
		{"api of an unlisted model", edit(`"apis":{"qwen"`, `"apis":{"mistral"`), `apis: model "mistral" is not in models`},
		{"bad api name", edit(`"apis":{"qwen":"ollama"`, `"apis":{"qwen":"a b"`), `apis["qwen"]: name "a b"`},
		{"negative keepalive", edit(`"keepAlive":25`, `"keepAlive":-1`), "keepAlive: -1 seconds"},
		{"bad duration", edit(`"mfa":"12h0m0s"`, `"mfa":"soon"`), `invalid duration "soon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeNetMap(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDuplicateAndSelfKeys(t *testing.T) {
	nm := sampleNetMap(t)
	nm.Peers = append(nm.Peers, nm.Peers[0])
	nm.Peers[1].Addresses = []netip.Addr{netip.MustParseAddr("100.64.0.3")}
	if err := nm.Validate(); err == nil || !strings.Contains(err.Error(), "same key as peers[0]") {
		t.Fatalf("duplicate key: %v", err)
	}
	nm = sampleNetMap(t)
	nm.Peers[0].Key = nm.Self.Key
	if err := nm.Validate(); err == nil || !strings.Contains(err.Error(), "own key") {
		t.Fatalf("self key as peer: %v", err)
	}
}

func TestSizeLimit(t *testing.T) {
	big := `{"version":1,"pad":"` + strings.Repeat("x", MaxNetMapBytes) + `"}`
	_, err := DecodeNetMap(strings.NewReader(big))
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized netmap: %v", err)
	}
	var lr LoginRequest
	if err := Decode(strings.NewReader(fmt.Sprintf(`{"hostname":%q}`, strings.Repeat("h", MaxRequestBytes))), MaxRequestBytes, &lr); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized request: %v", err)
	}
}

func TestRequestValidation(t *testing.T) {
	k := pub(t)
	ok := EnrollRequest{Version: 1, AuthKey: "moat_ek_x", Key: k, Hostname: "gpu-1",
		Models: []ModelAd{{Name: "llama", SHA256: strings.Repeat("a", 64), API: "ollama"}}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*EnrollRequest)
		want string
	}{
		{"no key", func(r *EnrollRequest) { r.Key = key.Public{} }, "key: missing"},
		{"no hostname", func(r *EnrollRequest) { r.Hostname = "" }, "hostname: want 1 to 63"},
		{"control char", func(r *EnrollRequest) { r.Hostname = "a\x1bb" }, "control"},
		{"bad sha", func(r *EnrollRequest) { r.Models[0].SHA256 = "XYZ" }, "sha256"},
		{"bad api", func(r *EnrollRequest) { r.Models[0].API = "open ai" }, "models[0].api"},
		{"too many models", func(r *EnrollRequest) { r.Models = make([]ModelAd, MaxModels+1) }, "over the limit"},
	} {
		r := ok
		r.Models = append([]ModelAd(nil), ok.Models...)
		tc.mod(&r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestSecretNeverPrints(t *testing.T) {
	r := EnrollRequest{AuthKey: "moat_ek_supersecret"}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%+v %#v %s %q", r, r, r.AuthKey, r.AuthKey)} {
		if strings.Contains(s, "supersecret") {
			t.Fatalf("secret printed: %s", s)
		}
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), "moat_ek_supersecret") {
		t.Fatal("secret must still travel in JSON")
	}
}

func FuzzDecodeNetMap(f *testing.F) {
	b, _ := json.Marshal(sampleNetMap(f))
	f.Add(b)
	f.Add([]byte(`{"version":1,"self":{"key":"HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=","addresses":["100.64.0.1"]},"peers":[]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		nm, err := DecodeNetMap(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever is accepted must survive a round trip and stay valid.
		out, err := json.Marshal(nm)
		if err != nil {
			t.Fatalf("accepted netmap does not marshal: %v", err)
		}
		if _, err := DecodeNetMap(bytes.NewReader(out)); err != nil {
			t.Fatalf("accepted netmap fails after a round trip: %v\n%s", err, out)
		}
	})
}

// A relay must be https (http only on loopback): a netmap that sends a
// member's relay traffic in the clear elsewhere is refused.
func TestRelayURLs(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://moat.example.com/derp":      true,
		"https://moat.example.com:8443/derp": true,
		"http://127.0.0.1:8080/derp":         true,
		"http://moat.example.com/derp":       false,
		"ftp://moat.example.com/derp":        false,
		"https:///derp":                      false,
		"":                                   false,
	} {
		nm := sampleNetMap(t)
		nm.Relays = []Relay{{URL: u}}
		if err := nm.Validate(); (err == nil) != ok {
			t.Errorf("relay %q: Validate = %v, want ok=%v", u, err, ok)
		}
	}
	nm := sampleNetMap(t)
	nm.Relays = make([]Relay, MaxRelays+1)
	if err := nm.Validate(); err == nil {
		t.Error("too many relays accepted")
	}
}
