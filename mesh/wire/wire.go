// Package wire holds every type that crosses the coordinator↔device
// boundary: the netmap a device receives, the login and enrollment
// exchanges, and the error shape. It is the one place the protocol lives,
// so a change here is a protocol change: bump Version and say why below.
//
// Decoding is strict about types and sizes and tolerant of fields it does
// not know, so that a newer coordinator can talk to an older device.
package wire

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/key"
)

// Version is the protocol version this build speaks. Every netmap and
// request carries the sender's version.
//
// History:
//   - 1 (2026-11-22): first version. NetMap with self, peers (key, addresses,
//     endpoints, identity, models served, model access on nodes) and node
//     rules; device login (LoginRequest, LoginStart, LoginResult); node
//     enrollment (EnrollRequest, EnrollResult); Error.
//     Later the same day, compatible additions: LoginRequest.Kind
//     ("wgconfig" for stock WireGuard apps).
//     Later, compatible additions: NodeStatus, the node's self-report
//     (integrity of pinned weights, lockdown and its drop counters).
//     Later, compatible additions: ModelAd.API and Peer.APIs, the API
//     family ("openai", "ollama") each model is served with; absent means
//     "openai", as nodes from before served only that.
//     2026-12-07, no change on the wire: coordinators fill NetMap.Relays
//     when given relays of their own (`serve --relay`: relay processes
//     on other hosts), their own relay last; members use the first that
//     answers rather than the first, and keep the coordinator's own (at
//     the URL they reach it at) as the last resort. Older members use
//     the first only.
//     2026-12-07, no change on the wire: NetMap.Rules and Peer.Access are
//     wire's own types (NodeRules, ModelAccess and what they hold) instead
//     of the policy package's, with the same JSON (testdata/netmap.json
//     holds it), so that the protocol no longer changes with the policy
//     compiler.
//     2026-12-06, compatible additions: LoginStart.Code, the short code
//     the sign-in page shows for the person to compare with their
//     terminal; a refused sign-in ends the login poll at once with 403
//     and Error.Code CodeLoginRefused carrying the reason. Coordinators
//     refuse a LoginRequest whose Hostname or OS is not a short plain
//     word (MaxOSLen; letters, digits, '.', '_', '-'), as moat always sent.
//     2026-12-08, compatible additions: LockdownStatus.Mode (what the node
//     was started with, "off" included), Problem (why a configured
//     lockdown is not in force) and Events (its recent losses and
//     restores); absent from older nodes.
//     2026-12-06, compatible addition: NodeRules.Models, the output bounds
//     (maxOutputTokens, maxChoices) of the models a node serves; a node
//     applies the policy's defaults to a model not listed (so to every
//     model, from an older coordinator).
//     2026-12-06, compatible additions: GuardRules.Prompts, Answers (an
//     action per screening category and side) and LinkAllow. A node from
//     before ignores them and screens as Injection, Redact and Links say.
//     2026-12-06, compatible additions: NetMap.Relays, the relays over
//     HTTPS members reach each other through when no direct UDP path
//     works (absent: the coordinator's own, at its URL + "/derp"); the
//     relay admits a member by its WireGuard key. New call POST
//     /api/v1/endpoints {"endpoints": [...]} (at most MaxEndpoints): a
//     device reports where its WireGuard socket may be reached, and its
//     peers' netmaps carry them as Peer.Endpoints.
//     2026-12-06, compatible addition: GuardRules.Detectors, the policy's
//     own screening rules (a name, a bounded pattern, a validator, a
//     category). A node from before ignores them and screens with its
//     built-in rules only.
//     2026-12-06, compatible additions: every member request carries
//     ProtocolHeader and a User-Agent naming its software; coordinators
//     record the software per device and refuse a protocol older than
//     MinVersion with 426 CodeVersionTooOld. Members from before send
//     neither and are taken as protocol 1.
//     2026-12-06, compatible additions for MCP servers on the mesh:
//     ModelAd.API "mcp" (APIMCP: the ad names an MCP server a node
//     serves), Peer.MCP (the servers a peer serves that the receiver may
//     call), Peer.MCPAccess and NodeRules.MCPGrants (in a node's netmap:
//     which tools each peer may call, under which grant). Older nodes and
//     clients ignore them and serve or see no MCP servers.
//     2026-12-06, compatible addition: Identity.PromptKey, the person's
//     X25519 public key (mesh/promptkey) a node encrypts the prompts it
//     keeps ("audit": {"prompts": "full"}) to. A node from before keeps
//     them in clear; a node of now keeps none for a person without one.
//     2026-12-06, compatible additions for budgets: ModelRule.InputPrice and
//     OutputPrice, GrantRule.Budgets, LeaseRequest.Kind ("tokens", "money")
//     and LeaseResponse.Budgets. A node from before enforces no budget (the
//     coordinator still counts the audit's use); a coordinator from before
//     sends no GrantRule.Budgets, so a new node asks it for no budget lease. New call
//     GET /api/v1/usage (a person's device): Usage, their own use and
//     what remains of limits and budgets.
//     2026-12-06, compatible additions: Identity.MFAMethod, the RFC 8176
//     method of the device's last MFA ("hwk", "swk", "otp", "mfa"), and
//     GrantRule.MFAFactor, the factor a grant demands
//     ("phishing-resistant", "device-bound"). A node from before ignores
//     MFAFactor (it enforces the grant's window only); a node of this
//     version refuses such a grant to an identity from an older
//     coordinator, which carries no MFAMethod.
//     2026-12-06, compatible addition: new call POST /api/v1/paths
//     (PathReport): a member reports how it reaches each peer it is in
//     contact with (direct with the endpoint, through a relay, or none;
//     the last handshake), for the coordinator's pages. Coordinators from
//     before answer 404; members then stop reporting.
//     Also compatible additions for encryption at rest:
//     ModelRule.EncryptedAtRest (the policy's "encryptedAtRest": the node
//     refuses the model with 503 while its weights, audit spool or state
//     are not on encrypted storage) and NodeStatus.AtRest (what the node
//     found: fscrypt, dm-crypt or neither, per path). A node from before
//     ignores the requirement and reports no AtRest; the coordinator
//     shows such a node's models as "not reported".
//     Also compatible: NodeRules.MCPEgress, what each MCP
//     server the node serves may reach (the policy's "egress"). A node
//     from before ignores it and leaves its stdio servers (which it cannot
//     run) unconfined; a node of now confines each stdio server to it.
//     Also compatible: LeaseRequest.Kind "rpm" and "tpm"
//     (a grant's requests and tokens per minute, counted by the
//     coordinator per UTC minute of its clock), LeaseRequest.Window and
//     LeaseResponse.Window (that minute), LeaseResponse.Now (the
//     coordinator's clock, so nodes time leases by their own). A
//     coordinator from before answers an rpm or tpm lease with 400, which
//     a node of this version takes as an outage: upgrade coordinators
//     first.
//     Also compatible, for node credentials that rotate:
//     EnrollResult.CredentialIssued and CredentialExpiry (absent from a
//     coordinator whose node credentials never expire), and the call POST
//     /api/v1/node/credential (a node's credential) answering
//     NodeCredential, a new credential, while the one used keeps working
//     for an overlap. A coordinator from before answers 404 and its
//     credentials never expire.
//     2026-12-06, compatible addition for nodes on a tailnet enrolled at
//     a coordinator: new call POST /api/v1/tailnet (a node's credential,
//     TailnetRequest) answering a stream of TailnetMap (the node's rules,
//     the people and tailnet tags its tailnet callers may be, with their
//     access). Coordinators from before answer 404; a coordinator that
//     does not map tailnet callers answers 403 CodeTailnetOff. Nothing
//     changes for mesh members.
const Version = 1

// MinVersion is the oldest protocol version this build talks to. A
// coordinator answers a member that sends an older one (the Moat-Protocol
// header) with 426 and CodeVersionTooOld, naming both sides' software; a
// member refuses a netmap of an older one, saying to upgrade the
// coordinator. Raise it only with a line in the history above.
const MinVersion = 1

// ProtocolHeader carries the sender's Version on every request a member
// makes (beside a User-Agent of program/version, "moat-node/v1.2.3").
const ProtocolHeader = "Moat-Protocol"

// CodeVersionTooOld is the Error.Code of a request refused because the
// member's protocol is older than the coordinator's MinVersion (HTTP 426).
const CodeVersionTooOld = "version_too_old"

// DeviceID identifies a device or node at the coordinator. It is stable
// across re-logins with the same key.
type DeviceID string

// Identity is who stands behind a mesh peer, as the coordinator vouches for
// it. For a person's device the user fields are set; for a node, Tags.
type Identity struct {
	UserID     string    `json:"userId,omitempty"`     // stable coordinator user id; empty for tagged nodes
	Login      string    `json:"login,omitempty"`      // the person's email or login name
	Name       string    `json:"name,omitempty"`       // display name
	Groups     []string  `json:"groups,omitempty"`     // IdP groups, without the "idp:" prefix
	Tags       []string  `json:"tags,omitempty"`       // e.g. "tag:gpu"; set for nodes
	Admin      bool      `json:"admin,omitempty"`      // the person is a coordinator admin
	DeviceID   DeviceID  `json:"deviceId"`             // the device this identity signed in on
	DeviceName string    `json:"deviceName,omitempty"` // the device's hostname
	LastMFA    time.Time `json:"lastMfa,omitzero"`     // last completed second factor; zero: never
	MFAMethod  string    `json:"mfaMethod,omitempty"`  // how LastMFA was proved (RFC 8176 amr): "hwk", "swk", "otp", "mfa"; "": unknown
	Expiry     time.Time `json:"expiry,omitzero"`      // when the device key stops being valid; zero: never (nodes)
	// PromptKey is the person's public key for the prompts nodes keep
	// (mesh/promptkey, 32 bytes); empty for nodes, and for a person
	// whose key was erased: then nodes keep no prompt of theirs.
	PromptKey []byte `json:"promptKey,omitempty"`
}

// Expired reports whether the identity's key has expired at now.
func (id *Identity) Expired(now time.Time) bool {
	return !id.Expiry.IsZero() && !now.Before(id.Expiry)
}

// Self is the receiving device's own part of a netmap.
type Self struct {
	Key       key.Public   `json:"key"`
	Addresses []netip.Addr `json:"addresses"` // mesh addresses: one IPv4 in 100.64.0.0/10, one IPv6 in the ULA prefix
	Identity  Identity     `json:"identity"`
}

// Peer is another mesh member the receiver may exchange packets with.
// A device only ever learns the peers the policy lets it reach or be
// reached by.
type Peer struct {
	Key       key.Public       `json:"key"`
	Addresses []netip.Addr     `json:"addresses"`           // the peer's mesh addresses; packets from them are from this peer
	Endpoints []netip.AddrPort `json:"endpoints,omitempty"` // underlay addresses to try, best first
	Identity  Identity         `json:"identity"`
	// Models lists the models this peer serves that the receiver may use.
	Models []string `json:"models,omitempty"`
	// APIs maps models of Models to the API family the peer serves them
	// with ("openai", "ollama"), as it advertised them; a model not in it
	// is served with OpenAI's.
	APIs map[string]string `json:"apis,omitempty"`
	// Access, only in a node's netmap, lists the models this peer may use
	// on the receiving node and the grant (an index into NetMap.Rules.Grants)
	// that allows each.
	Access []ModelAccess `json:"access,omitempty"`
	// KeepAlive is the persistent keepalive interval in seconds; 0 is off.
	KeepAlive int `json:"keepAlive,omitempty"`
	// MCP lists the MCP servers this peer serves that the receiver may
	// call tools of.
	MCP []string `json:"mcp,omitempty"`
	// MCPAccess, only in a node's netmap, lists the MCP tools this peer
	// may call on the receiving node (see MCPAccess).
	MCPAccess []MCPAccess `json:"mcpAccess,omitempty"`
}

// NetMap is everything a device needs to take part in the mesh. Each one
// replaces the previous in full.
type NetMap struct {
	Version int       `json:"version"` // the sender's wire Version
	Seq     uint64    `json:"seq"`     // increases with every netmap sent to this device
	Created time.Time `json:"created,omitzero"`
	Self    Self      `json:"self"`
	Peers   []Peer    `json:"peers"`
	// Rules is set in a node's netmap only: the grants its peers' Access
	// entries point to, and its mesh packet filter.
	Rules *NodeRules `json:"rules,omitempty"`
	// Relays are the relays over HTTPS this member connects to, best
	// first; a member uses the first. Absent: the coordinator's own relay
	// at its URL + "/derp".
	Relays []Relay `json:"relays,omitempty"`
}

// Relay is a relay over HTTPS (Tailscale's DERP protocol) that carries
// WireGuard packets between members without a direct UDP path. Members
// connect to it with their WireGuard key; it forwards each packet to the
// member whose key it names.
type Relay struct {
	// URL is "https://HOST[:PORT]/derp".
	URL string `json:"url"`
}

// Secret is a bearer credential (device credential, enrollment key). It
// travels in JSON as a plain string but never prints itself.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return "secret:empty"
	}
	return "secret:REDACTED"
}

// Format makes every fmt verb print the redaction.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return s.String() }

// Error is the shape of every error the coordinator's API returns: a
// message for people and a stable code for programs.
type Error struct {
	Message string `json:"error"`
	Code    string `json:"code,omitempty"`
}

func (e *Error) Error() string {
	if e.Code == "" {
		return e.Message
	}
	return e.Code + ": " + e.Message
}

// The mesh address ranges. The coordinator allocates every device one IPv4
// address from IPv4Range and one IPv6 address from IPv6Range; engines
// route both ranges into the mesh.
var (
	IPv4Range = netip.MustParsePrefix("100.64.0.0/10")
	IPv6Range = netip.MustParsePrefix("fd7a:6d6f:6174::/48") // "moat" in the ULA space
)
