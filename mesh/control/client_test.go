package control

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/moatmesh/moat/mesh/wire"
)

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:8080":    true,
		"http://[::1]:8080":        true,
		"http://localhost:8080":    true,
		"https://moat.example.com": true,
		"http://moat.example.com":  false,
		"http://10.0.0.5:8080":     false,
		"ftp://moat.example.com":   false,
		"moat.example.com":         false,
	} {
		_, err := New(Config{URL: url})
		if (err == nil) != ok {
			t.Errorf("New(%s): %v, want ok=%v", url, err, ok)
		}
	}
}

func TestFingerprintPinning(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"nope","code":"bad_credential"}`))
	}))
	defer ts.Close()
	good := Fingerprint(ts.Certificate())
	wrong := strings.Repeat("ab", 32)
	call := func(fp string) error {
		c, err := New(Config{URL: ts.URL, Fingerprint: fp, Credential: "x"})
		if err != nil {
			return err
		}
		return c.Logout(context.Background())
	}
	// The pinned server answers (with an error body, which proves we got there).
	if err := call(good); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("pinned call: %v, want the server's answer", err)
	}
	if err := call(wrong); err == nil || !strings.Contains(err.Error(), "does not match the pinned one") {
		t.Fatalf("wrong pin: %v", err)
	}
	if err := call(""); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("self-signed without a pin must fail verification: %v", err)
	}
	if _, err := New(Config{URL: ts.URL, Fingerprint: "zz"}); err == nil {
		t.Fatal("malformed fingerprint accepted")
	}
}

func TestErrorShape(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"this device was revoked; run moat login","code":"device_not_live"}`))
	}))
	defer ts.Close()
	c, _ := New(Config{URL: ts.URL, Credential: wire.Secret("x")})
	err := c.Stream(context.Background(), 0, func(*wire.NetMap) error { return nil })
	if !IsAuth(err) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("401 answer: %v", err)
	}
}
