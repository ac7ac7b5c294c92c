// Package control is the mesh member's side of the coordinator API: device
// login, node enrollment, advertising, logout, and the netmap stream with
// reconnects. It speaks only HTTPS, or plain HTTP to a loopback
// coordinator, and can pin a self-signed coordinator certificate by its
// SHA-256 fingerprint.
package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// Config configures a Client.
type Config struct {
	// URL of the coordinator, e.g. "https://moat.example.com". Required.
	// Plain http is refused unless the host is a loopback address.
	URL string
	// Fingerprint, when set, pins the coordinator's certificate: the
	// lowercase hex SHA-256 of its DER form, as `moat-coordinator serve
	// --tls=self-signed` prints it. Colons are ignored. Default: verify the
	// certificate against the system roots.
	Fingerprint string
	// Credential is the device credential for authenticated calls.
	Credential wire.Secret
	// Transport overrides the HTTP transport (tests). Default: one built
	// from URL and Fingerprint.
	Transport http.RoundTripper
}

// Client talks to one coordinator.
type Client struct {
	base *url.URL
	cred *credential  // shared with copies; SetCredential changes it
	http *http.Client // short requests
	long *http.Client // the netmap stream and login polls: no overall timeout
}

// New checks cfg and returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("coordinator URL %q: want https://HOST[:PORT]", cfg.URL)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("coordinator URL %s: refusing plain http to a non-loopback host; use https (or --tls=self-signed with its fingerprint)", cfg.URL)
	default:
		return nil, fmt.Errorf("coordinator URL %s: want https", cfg.URL)
	}
	tr := cfg.Transport
	if tr == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.Fingerprint != "" {
			pin, err := parseFingerprint(cfg.Fingerprint)
			if err != nil {
				return nil, err
			}
			t.TLSClientConfig = pinned(pin)
		}
		tr = t
	}
	return &Client{
		base: u, cred: newCredential(cfg.Credential),
		http: &http.Client{Transport: tr, Timeout: 30 * time.Second},
		long: &http.Client{Transport: tr},
	}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseFingerprint(s string) ([]byte, error) {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.ToLower(s), ":", ""))
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("coordinator fingerprint: want 64 hex digits (SHA-256), got %q", s)
	}
	return b, nil
}

// pinned accepts exactly the certificate whose SHA-256 is pin, instead of
// a chain to a root: the way to trust a self-signed coordinator.
func pinned(pin []byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("coordinator sent no certificate")
			}
			sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(sum[:], pin) != 1 {
				return fmt.Errorf("coordinator certificate fingerprint %x does not match the pinned one; someone may be intercepting, or the coordinator's certificate changed", sum)
			}
			return nil
		},
	}
}

// Fingerprint returns the pin of a certificate, for printing.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// Error is an error answer from the coordinator.
type Error struct {
	Status  int
	Code    string // stable code, e.g. "bad_credential"
	Message string // what happened and what to do
}

func (e *Error) Error() string { return fmt.Sprintf("coordinator: %s (HTTP %d)", e.Message, e.Status) }

// IsAuth reports whether err means the device credential is no longer
// good (revoked, expired, unknown): the device must sign in again.
func IsAuth(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusUnauthorized
}

// do sends a JSON request and decodes a JSON answer into out (if non-nil).
func (c *Client) do(ctx context.Context, hc *http.Client, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return 0, err
	}
	setMemberHeaders(req.Header)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred := c.Credential(); cred != "" {
		req.Header.Set("Authorization", "Bearer "+string(cred))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("coordinator unreachable: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp.StatusCode, readError(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusAccepted {
		if err := wire.Decode(resp.Body, wire.MaxNetMapBytes, out); err != nil {
			return resp.StatusCode, fmt.Errorf("coordinator answer: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func readError(resp *http.Response) error {
	var we wire.Error
	if err := wire.Decode(resp.Body, wire.MaxRequestBytes, &we); err != nil || we.Message == "" {
		we.Message = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Code: we.Code, Message: we.Message}
}

// HTTPClient returns the client's HTTP client (with its TLS pinning), for
// other calls to the same coordinator such as audit shipping.
func (c *Client) HTTPClient() *http.Client { return c.http }

// URL returns the coordinator's base URL joined with path.
func (c *Client) URL(path string) string { return c.base.String() + path }

// TLSConfig returns the TLS configuration the client verifies the
// coordinator with (its pinned certificate), or nil for the system roots.
// The caller must not modify it.
func (c *Client) TLSConfig() *tls.Config {
	if t, ok := c.http.Transport.(*http.Transport); ok {
		return t.TLSClientConfig
	}
	return nil
}

// Proxy returns the HTTP proxy the client would use for target (from
// HTTPS_PROXY and NO_PROXY), or nil for none.
func (c *Client) Proxy(target string) *url.URL {
	t, ok := c.http.Transport.(*http.Transport)
	if !ok || t.Proxy == nil {
		return nil
	}
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return nil
	}
	u, err := t.Proxy(req)
	if err != nil {
		return nil
	}
	return u
}
