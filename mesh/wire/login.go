package wire

import (
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// LoginRequest starts a person's device login (POST /api/v1/login).
type LoginRequest struct {
	Version  int        `json:"version"`
	Key      key.Public `json:"key"`      // the device's WireGuard public key; the private key stays on the device
	Hostname string     `json:"hostname"` // shown to admins; 1–63 characters
	OS       string     `json:"os,omitempty"`
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
}
