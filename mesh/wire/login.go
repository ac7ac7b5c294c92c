package wire

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// LoginRequest starts a person's device login (POST /api/v1/login).
type LoginRequest struct {
	Version  int        `json:"version"`
	Key      key.Public `json:"key"`          // the device's WireGuard public key; the private key stays on the device
	Hostname string     `json:"hostname"`     // shown to the person and admins; 1–63 of A-Z a-z 0-9 . _ -
	OS       string     `json:"os,omitempty"` // e.g. "linux"; at most 32 of A-Z a-z 0-9 . _ -
	// Kind is "" for a device running moat, or KindWGConfig for a device
	// that will use a stock WireGuard app with a configuration made once
	// (`moat wg-config`); both expire alike.
	Kind string `json:"kind,omitempty"`
}

// KindWGConfig marks a login for a stock WireGuard app.
const KindWGConfig = "wgconfig"

// LoginStart is the coordinator's answer to a LoginRequest: a URL for the
// person to open and a handle to poll for the outcome.
type LoginStart struct {
	AuthURL   string    `json:"authUrl"`
	Poll      Secret    `json:"poll"`
	ExpiresAt time.Time `json:"expiresAt"`
	// Code is the short code the sign-in page shows next to the device
	// (e.g. "K7QM-4TZP"). The device prints it, and the page asks the
	// person to compare the two: a link someone else sent shows a code
	// their own terminal does not. Empty from coordinators before it.
	Code string `json:"code,omitempty"`
}

// CodeLoginRefused is the Error.Code of a poll whose sign-in was refused
// (an unverified email, a domain or group not allowed, the identity
// provider's error, a disabled person): the poll answers 403 with the
// reason at once instead of waiting for the link to expire.
const CodeLoginRefused = "login_refused"

// MaxOSLen is the longest LoginRequest.OS accepted.
const MaxOSLen = 32

// Validate checks a login request. Hostname and OS are shown on the
// sign-in page, so they are short plain words: letters, digits, dots,
// dashes and underscores.
func (r *LoginRequest) Validate() error {
	if r.Key.IsZero() {
		return errors.New("key: missing; send the device's WireGuard public key")
	}
	if r.Kind != "" && r.Kind != KindWGConfig {
		return fmt.Errorf("kind %q: want empty or %q", r.Kind, KindWGConfig)
	}
	if err := checkHostname(r.Hostname); err != nil {
		return err
	}
	if !plainWord(r.Hostname) {
		return fmt.Errorf("hostname %q: use only letters, digits, dots, dashes and underscores", r.Hostname)
	}
	if len(r.OS) > MaxOSLen || !plainWord(r.OS) {
		return fmt.Errorf("os: want at most %d letters, digits, dots, dashes and underscores (such as \"linux\")", MaxOSLen)
	}
	return nil
}

// plainWord reports whether s has only ASCII letters, digits, '.', '_'
// and '-'.
func plainWord(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// LoginResult is what a poll returns once the person has signed in.
type LoginResult struct {
	Credential Secret       `json:"credential"` // bearer credential for this device; stored hashed at the coordinator
	DeviceID   DeviceID     `json:"deviceId"`
	Addresses  []netip.Addr `json:"addresses"`
	Expiry     time.Time    `json:"expiry"`
	NetMap     *NetMap      `json:"netmap,omitempty"`
}

// ModelAd is a model a node advertises: its name, the API family it is
// served with and, optionally, the SHA-256 of its weights as the node
// measured them.
type ModelAd struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
	// API is the API family of the model's server: "openai" or "ollama";
	// empty (nodes from before this field) is "openai".
	API string `json:"api,omitempty"`
}

// EnrollRequest joins a node with an enrollment key (POST /api/v1/enroll),
// and later updates what it advertises.
type EnrollRequest struct {
	Version   int              `json:"version"`
	AuthKey   Secret           `json:"authKey"` // "moat_ek_…"
	Key       key.Public       `json:"key"`
	Hostname  string           `json:"hostname"`
	Endpoints []netip.AddrPort `json:"endpoints,omitempty"`
	Models    []ModelAd        `json:"models,omitempty"`
}

// EnrollResult is the coordinator's answer to an EnrollRequest.
type EnrollResult struct {
	Credential Secret       `json:"credential"`
	DeviceID   DeviceID     `json:"deviceId"`
	Addresses  []netip.Addr `json:"addresses"`
	Tags       []string     `json:"tags,omitempty"`
	NetMap     *NetMap      `json:"netmap,omitempty"`
	// CredentialIssued and CredentialExpiry bound the credential's
	// lifetime; a zero expiry (absent) means it never expires.
	CredentialIssued time.Time `json:"credentialIssued,omitzero"`
	CredentialExpiry time.Time `json:"credentialExpiry,omitzero"`
}

// NodeCredential is a node's new credential: the answer to POST
// /api/v1/node/credential. The credential the request carried keeps
// working for an overlap, so that requests in flight with it finish; the
// node saves the new one and uses it from then on, and asks for the next
// one before Expiry (after two thirds of its lifetime).
type NodeCredential struct {
	Credential Secret    `json:"credential"`
	Issued     time.Time `json:"issued"`
	Expiry     time.Time `json:"expiry,omitzero"` // zero: never
}

// RenewAt is when a node should ask for the credential after c: two
// thirds into its lifetime; zero when it never expires.
func (c NodeCredential) RenewAt() time.Time {
	if c.Expiry.IsZero() {
		return time.Time{}
	}
	return c.Issued.Add(c.Expiry.Sub(c.Issued) * 2 / 3)
}
