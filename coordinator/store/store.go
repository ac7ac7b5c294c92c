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
	"context"
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
	MFAVia  string // MFAViaIdP or MFAViaTOTP; "" before the first
}

// How a person proved their second factor.
const (
	MFAViaIdP  = "idp"  // the IdP's amr claim named an accepted method
	MFAViaTOTP = "totp" // the coordinator's own TOTP
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
	Revoked    bool
	Created    time.Time
	LastSeen   time.Time
	NodeStatus []byte // nodes: opaque JSON status report (integrity, lockdown)
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
}

// AuditFilter selects audit records; zero fields do not filter.
type AuditFilter struct {
	UserID, Login, Model, NodeID, Decision string
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

// Store is what the coordinator keeps. Every method is safe for
// concurrent use and honours ctx. Lookups that find nothing return an
// error wrapping ErrNotFound; unique-key violations wrap ErrConflict.
//
// Also guaranteed by every implementation (storetest checks it):
//   - Create* and UpsertUserByOIDC fill an empty ID (NewID with "u_",
//     "d_"/"n_", "ek_", "tok_", "ls_", "iu_") and a zero Created; times
//     come back in UTC, truncated to the microsecond; empty slices come
//     back nil.
//   - Update* write every field but ID and Created (UpdateUser also
//     keeps Issuer and Subject, UpdateDevice the addresses), and a stale
//     copy cannot undo what matters for security: UpdateDevice never
//     clears Revoked, UpdateLoginSession never clears Consumed nor
//     replaces a consumed Result, and UpdateUser/UpdateIdPUser never
//     lower TOTPLastStep.
//   - UpsertUserByOIDC refreshes only what the IdP says (Email, Name,
//     Groups, Admin, LastLogin, and Role when given); Disabled and the
//     MFA fields stay.
//   - UseEnrollKey: an unknown hash is ErrNotFound; a zero Expiry never
//     expires; a key expires at its Expiry.
//   - ConsumeLoginResult: no result yet is ErrNotFound, a result already
//     taken ErrConflict.
//   - Lookups by an empty hash find nothing; IdP emails are lowercased.
type Store interface {
	// Users.
	UpsertUserByOIDC(ctx context.Context, u *User) (*User, error) // by (Issuer, Subject); fills ID, Created
	User(ctx context.Context, id string) (*User, error)
	Users(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error
	// RecordMFA notes that user id proved a second factor at at, via how.
	RecordMFA(ctx context.Context, id string, at time.Time, via string) error

	// Devices and nodes. CreateDevice allocates IPv4 (in 100.64.0.0/10)
	// and IPv6 (in fd7a:6d6f:6174::/48) addresses when they are invalid,
	// unique across all devices ever made; re-login with a known key is
	// the caller's business (DeviceByKey, then UpdateDevice).
	CreateDevice(ctx context.Context, d *Device) error
	Device(ctx context.Context, id string) (*Device, error)
	DeviceByKey(ctx context.Context, publicKey string) (*Device, error)
	DeviceByCredHash(ctx context.Context, hash []byte) (*Device, error)
	Devices(ctx context.Context) ([]*Device, error)
	UpdateDevice(ctx context.Context, d *Device) error
	TouchDevice(ctx context.Context, id string, seen time.Time) error
	DeleteDevice(ctx context.Context, id string) error

	// Enrollment keys. UseEnrollKey atomically checks and consumes a key
	// by hash: two callers racing for a single-use key, exactly one wins;
	// the other gets ErrExhausted.
	CreateEnrollKey(ctx context.Context, k *EnrollKey) error
	EnrollKeys(ctx context.Context) ([]*EnrollKey, error)
	UseEnrollKey(ctx context.Context, hash []byte, now time.Time) (*EnrollKey, error)
	RevokeEnrollKey(ctx context.Context, id string) error

	// API tokens.
	CreateAPIToken(ctx context.Context, t *APIToken) error
	APITokenByHash(ctx context.Context, hash []byte) (*APIToken, error)
	APITokens(ctx context.Context) ([]*APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error

	// Login sessions. ConsumeLoginResult returns the result once and marks
	// it consumed atomically.
	CreateLoginSession(ctx context.Context, s *LoginSession) error
	LoginSession(ctx context.Context, id string) (*LoginSession, error)
	LoginSessionByPollHash(ctx context.Context, hash []byte) (*LoginSession, error)
	UpdateLoginSession(ctx context.Context, s *LoginSession) error
	ConsumeLoginResult(ctx context.Context, id string) ([]byte, error)
	// BindLoginSession ties session id to the browser whose token hashes to
	// browserHash: the first call wins; later calls with the same hash
	// succeed, with another hash they fail with ErrConflict.
	BindLoginSession(ctx context.Context, id string, browserHash []byte) error
	DeleteExpiredLoginSessions(ctx context.Context, now time.Time) (int, error)

	// Web UI sessions, by the SHA-256 of the browser's token. Expiry is
	// the caller's to check; deleting an absent session is no error.
	CreateUISession(ctx context.Context, s *UISession) error
	UISession(ctx context.Context, hash []byte) (*UISession, error)
	DeleteUISession(ctx context.Context, hash []byte) error
	DeleteUserUISessions(ctx context.Context, userID string) error // sign out everywhere
	DeleteExpiredUISessions(ctx context.Context, now time.Time) (int, error)

	// Policy history; the newest version is the policy in force.
	SavePolicy(ctx context.Context, p *PolicyVersion) error // fills ID, Created
	// SavePolicyOver saves p only while version base is the newest (0:
	// none saved yet), atomically; otherwise it is ErrConflict. A base
	// below 0 checks nothing, as SavePolicy.
	SavePolicyOver(ctx context.Context, p *PolicyVersion, base int64) error
	Policy(ctx context.Context) (*PolicyVersion, error) // ErrNotFound when none saved
	PolicyVersion(ctx context.Context, id int64) (*PolicyVersion, error)
	PolicyHistory(ctx context.Context, limit int) ([]*PolicyVersion, error) // newest first

	// The embedded IdP's local users.
	CreateIdPUser(ctx context.Context, u *IdPUser) error
	IdPUser(ctx context.Context, id string) (*IdPUser, error)
	IdPUserByEmail(ctx context.Context, email string) (*IdPUser, error)
	IdPUserBySetupHash(ctx context.Context, hash []byte) (*IdPUser, error)
	IdPUsers(ctx context.Context) ([]*IdPUser, error)
	UpdateIdPUser(ctx context.Context, u *IdPUser) error

	// Audit records from nodes; inserting a known ID is not an error and
	// changes nothing (at-least-once delivery, deduplicated).
	InsertAudit(ctx context.Context, recs []*AuditRecord) (inserted int, err error)
	Audit(ctx context.Context, f AuditFilter) ([]*AuditRecord, error) // newest first
	AuditRecord(ctx context.Context, id string) (*AuditRecord, error)

	// Admin audit trail.
	LogAdminAction(ctx context.Context, a *AdminAction) error
	AdminActions(ctx context.Context, limit int) ([]*AdminAction, error) // newest first

	// Key-value settings the coordinator keeps (e.g. its encryption key id,
	// netmap epoch).
	Setting(ctx context.Context, name string) ([]byte, error)
	SetSetting(ctx context.Context, name string, value []byte) error

	// Ping checks the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}
