// Package store is the coordinator's persistent state: people, devices and
// nodes, enrollment keys, API tokens, login sessions, the policy history,
// the embedded identity provider's local users, audit records and the
// admin audit trail. Two implementations share one schema and one test
// suite: SQLite (modernc.org/sqlite, embedded, the default) and PostgreSQL
// (pgx, for several coordinator replicas). Migrations run on Open.
//
// Secrets never enter the store in the clear: credentials, enrollment keys
// and tokens are stored as SHA-256 hashes of high-entropy random values;
// TOTP secrets arrive already encrypted by the caller.
package store

import (
	"errors"
	"net/netip"
	"time"

	"github.com/moatmesh/moat/mesh/wire"
)

// Errors every implementation returns (wrapped) for the same conditions.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict") // unique constraint, or a lost race
	ErrExhausted = errors.New("enrollment key used up, revoked or expired")
)

// User is a person known to the coordinator, identified by the OIDC issuer
// and subject of their IdP.
type User struct {
	ID        string // "u_…", stable
	Issuer    string // OIDC iss
	Subject   string // OIDC sub
	Email     string
	Name      string
	Groups    []string // IdP groups at the last sign-in
	Admin     bool     // admin at the last sign-in (IdP group or embedded flag)
	Role      string   // "admin", "auditor" or "member"
	Disabled  bool
	Created   time.Time
	LastLogin time.Time

	// The coordinator's own TOTP, for IdPs that do not prove MFA.
	TOTPSecret   []byte    // encrypted by the caller; nil = not enrolled
	TOTPLastStep int64     // last accepted time step (codes cannot be replayed)
	MFAFailures  int       // consecutive failed codes
	MFALockedTil time.Time // no codes accepted before this

	// The last second factor the person proved, on any sign-in (device or
	// web UI); set only by RecordMFA.
	LastMFA time.Time
	MFAVia  string // MFAViaIdP, MFAViaTOTP or MFAViaPasskey; "" before the first
}

// How a person proved their second factor.
const (
	MFAViaIdP  = "idp"  // the IdP's amr claim named an accepted method
	MFAViaTOTP = "totp" // the coordinator's own TOTP
	// MFAViaPasskey is the coordinator's own passkey (WebAuthn).
	MFAViaPasskey = "passkey"
)

// DeviceKind says what a Device is.
type DeviceKind string

const (
	KindUser     DeviceKind = "user"     // a person's device running moat
	KindNode     DeviceKind = "node"     // a GPU node running moat-node
	KindWGConfig DeviceKind = "wgconfig" // a person's device on a stock WireGuard app
)

// Device is a mesh member: a person's device or a node.
type Device struct {
	ID         string // "d_…" or "n_…", stable
	Kind       DeviceKind
	UserID     string // owner; empty for nodes
	PublicKey  string // WireGuard public key, base64; unique among live devices
	Hostname   string
	OS         string
	Tags       []string // nodes: from the enrollment key
	IPv4, IPv6 netip.Addr
	Endpoints  []netip.AddrPort
	Models     []wire.ModelAd // nodes: what they advertise
	CredHash   []byte         // SHA-256 of the device credential
	Expiry     time.Time      // zero: never (nodes)
	LastMFA    time.Time
	MFAMethod  string // how LastMFA was proved (RFC 8176 amr): "hwk", "swk", "otp", "mfa"; "" unknown
	Revoked    bool
	Created    time.Time
	LastSeen   time.Time
	NodeStatus []byte // nodes: opaque JSON status report (integrity, lockdown)
	Software   string // what the member last said it runs, "moat-node/v1.2.3"; "" unknown
}

// EnrollKey lets nodes join with the tags it carries.
type EnrollKey struct {
	ID        string // "ek_…", shown in lists; not the secret
	Hash      []byte // SHA-256 of the secret "moat_ek_…"
	Tags      []string
	Reusable  bool
	Expiry    time.Time
	Uses      int
	Revoked   bool
	CreatedBy string
	Created   time.Time
}

// APIToken authenticates automation against the admin API.
type APIToken struct {
	ID        string
	Hash      []byte
	Name      string
	CreatedBy string
	Created   time.Time
	Expiry    time.Time
	LastUsed  time.Time
}

// UISession is a browser signed in to the web UI.
type UISession struct {
	Hash             []byte // SHA-256 of the session token in the browser's cookie
	UserID           string
	Created, Expires time.Time
}

// LoginSession is one device login (or UI sign-in) in flight.
type LoginSession struct {
	ID        string // the OIDC state value's session part
	PollHash  []byte // SHA-256 of the device's poll secret; nil for UI sign-ins
	Purpose   string // "device", "wgconfig" or "ui"
	PublicKey string
	Hostname  string
	OS        string
	Nonce     string
	Verifier  string // PKCE code verifier
	Created   time.Time
	Expires   time.Time
	UserID    string // set once the person signed in
	MFADone   bool   // set once MFA is satisfied
	DeviceID  string // set once the device exists
	Result    []byte // opaque JSON handed to the poller once
	Consumed  bool
	// BrowserHash is the SHA-256 of the token of the one browser allowed to
	// carry this sign-in through the IdP; set once by BindLoginSession.
	BrowserHash []byte
	// Requester is the address the login was started from, shown on the
	// sign-in page; "" for sessions from before it was recorded.
	Requester string
	// Refusal is why the sign-in was refused, for the person and the
	// polling device; "" while it may still succeed.
	Refusal string
}

// PolicyVersion is one saved policy.
type PolicyVersion struct {
	ID      int64
	Text    string
	Author  string
	Message string
	Created time.Time
}

// IdPUser is a local user of the embedded identity provider.
type IdPUser struct {
	ID           string
	Email        string // unique, lowercase
	Name         string
	PasswordHash string // PHC string (argon2id); empty until set up
	TOTPSecret   []byte // encrypted by the caller; nil until enrolled
	TOTPLastStep int64
	Admin        bool
	Groups       []string
	SetupHash    []byte // SHA-256 of a one-time setup token; nil when none
	SetupExpiry  time.Time
	Failures     int
	LockedUntil  time.Time
	Created      time.Time
}

// AuditRecord is one model request as a node reported it.
type AuditRecord struct {
	ID                  string // unique per record (node-chosen); duplicates are ignored
	NodeID              string
	Time                time.Time
	UserID              string
	Login               string
	DeviceID            string
	Model               string
	API                 string
	Decision            string // "allow", "deny", ...
	Reason              string
	Grant               string
	TokensIn, TokensOut int64
	LatencyMS           int64
	Status              int
	Body                []byte // the record as JSON, with the hash chain fields
	// Seq numbers records in the order the coordinator stored them
	// (1, 2, …; filled by InsertAudit); 0 for a record an older binary
	// stored and no insert has numbered yet.
	Seq int64
}

// AuditFilter selects audit records; zero fields do not filter.
type AuditFilter struct {
	UserID, Login, Model, NodeID, Decision string
	API                                    string // "mcp": MCP tool calls only
	Since, Until                           time.Time
	Limit                                  int    // default 100, at most 10,000
	Before                                 string // page: records older than this id's record
}

// AdminAction is one entry in the admin audit trail.
type AdminAction struct {
	ID     int64
	Time   time.Time
	Actor  string // user id or "token:<id>"
	Action string // e.g. "device.revoke"
	Target string
	Detail string
}
