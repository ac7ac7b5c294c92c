package storetest

import (
	"context"
	"time"

	"github.com/moatmesh/moat/coordinator/idp"
	"github.com/moatmesh/moat/coordinator/store"
)

// Store is the whole store, as this suite checks it: store.DB over
// SQLite and over PostgreSQL. Every method is safe for concurrent use and
// honours ctx. Lookups that find nothing return an
// error wrapping store.ErrNotFound; unique-key violations wrap store.ErrConflict.
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
//   - UseEnrollKey: an unknown hash is store.ErrNotFound; a zero Expiry never
//     expires; a key expires at its Expiry.
//   - ConsumeLoginResult: no result yet is store.ErrNotFound, a result already
//     taken store.ErrConflict.
//   - Lookups by an empty hash find nothing; IdP emails are lowercased.
type Store interface {
	// Users.
	UpsertUserByOIDC(ctx context.Context, u *store.User) (*store.User, error) // by (Issuer, Subject); fills ID, Created
	User(ctx context.Context, id string) (*store.User, error)
	Users(ctx context.Context) ([]*store.User, error)
	UpdateUser(ctx context.Context, u *store.User) error
	// RecordMFA notes that user id proved a second factor at at, via how.
	RecordMFA(ctx context.Context, id string, at time.Time, via string) error

	// Devices and nodes. CreateDevice allocates IPv4 (in 100.64.0.0/10)
	// and IPv6 (in fd7a:6d6f:6174::/48) addresses when they are invalid,
	// unique across all devices ever made; re-login with a known key is
	// the caller's business (DeviceByKey, then UpdateDevice).
	CreateDevice(ctx context.Context, d *store.Device) error
	Device(ctx context.Context, id string) (*store.Device, error)
	DeviceByKey(ctx context.Context, publicKey string) (*store.Device, error)
	DeviceByCredHash(ctx context.Context, hash []byte) (*store.Device, error)
	Devices(ctx context.Context) ([]*store.Device, error)
	DevicesAnyOrder(ctx context.Context) ([]*store.Device, error)
	UpdateDevice(ctx context.Context, d *store.Device) error
	TouchDevice(ctx context.Context, id string, seen time.Time) error
	// SetDeviceSoftware records what the member says it runs.
	SetDeviceSoftware(ctx context.Context, id, software string) error
	DeleteDevice(ctx context.Context, id string) error

	// Enrollment keys. UseEnrollKey atomically checks and consumes a key
	// by hash: two callers racing for a single-use key, exactly one wins;
	// the other gets store.ErrExhausted.
	CreateEnrollKey(ctx context.Context, k *store.EnrollKey) error
	EnrollKeys(ctx context.Context) ([]*store.EnrollKey, error)
	UseEnrollKey(ctx context.Context, hash []byte, now time.Time) (*store.EnrollKey, error)
	CheckEnrollKey(ctx context.Context, hash []byte, now time.Time) error

	// Sign-in attempts (signin.go).
	SignInAttempt(ctx context.Context, key string, now time.Time, wait func(failures int) time.Duration) (bool, time.Time, error)
	ClearSignInFailures(ctx context.Context, key string) error
	DeleteStaleSignInFailures(ctx context.Context, before time.Time) (int64, error)
	BeginMFAAttempt(ctx context.Context, id string, now time.Time, maxFailures int, lockFor time.Duration) error
	ClaimTOTPStep(ctx context.Context, id string, step int64, pendingSecret []byte) error
	RevokeEnrollKey(ctx context.Context, id string) error

	// Passkeys (WebAuthn credentials) and their ceremonies.
	CreatePasskey(ctx context.Context, p *store.Passkey) error
	Passkeys(ctx context.Context, userID string) ([]*store.Passkey, error)
	UsePasskey(ctx context.Context, userID string, id []byte, from uint32, p *store.Passkey) error
	RenamePasskey(ctx context.Context, userID string, id []byte, name string) error
	DeletePasskey(ctx context.Context, userID string, id []byte) error
	DeletePasskeys(ctx context.Context, userID string) error
	CreatePasskeyChallenge(ctx context.Context, c *store.PasskeyChallenge, now time.Time, max int) error
	TakePasskeyChallenge(ctx context.Context, hash []byte, now time.Time) (*store.PasskeyChallenge, error)
	PasskeyCounts(ctx context.Context) (map[string]int, error) // by user id; users with none absent
	ClearMFAFailures(ctx context.Context, id string) error
	ResetMFA(ctx context.Context, id string) error // TOTP secret, passkeys and lockout of a user

	// API tokens.
	CreateAPIToken(ctx context.Context, t *store.APIToken) error
	APITokenByHash(ctx context.Context, hash []byte) (*store.APIToken, error)
	APITokens(ctx context.Context) ([]*store.APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error

	// Login sessions. ConsumeLoginResult returns the result once and marks
	// it consumed atomically.
	CreateLoginSession(ctx context.Context, s *store.LoginSession) error
	LoginSession(ctx context.Context, id string) (*store.LoginSession, error)
	LoginSessionByPollHash(ctx context.Context, hash []byte) (*store.LoginSession, error)
	UpdateLoginSession(ctx context.Context, s *store.LoginSession) error
	ConsumeLoginResult(ctx context.Context, id string) ([]byte, error)
	// BindLoginSession ties session id to the browser whose token hashes to
	// browserHash: the first call wins; later calls with the same hash
	// succeed, with another hash they fail with store.ErrConflict.
	BindLoginSession(ctx context.Context, id string, browserHash []byte) error
	DeleteExpiredLoginSessions(ctx context.Context, now time.Time) (int, error)

	// Web UI sessions, by the SHA-256 of the browser's token. Expiry is
	// the caller's to check; deleting an absent session is no error.
	CreateUISession(ctx context.Context, s *store.UISession) error
	UISession(ctx context.Context, hash []byte) (*store.UISession, error)
	DeleteUISession(ctx context.Context, hash []byte) error
	DeleteUserUISessions(ctx context.Context, userID string) error // sign out everywhere
	DeleteExpiredUISessions(ctx context.Context, now time.Time) (int, error)

	// Policy history; the newest version is the policy in force.
	SavePolicy(ctx context.Context, p *store.PolicyVersion) error // fills ID, Created
	// SavePolicyOver saves p only while version base is the newest (0:
	// none saved yet), atomically; otherwise it is store.ErrConflict. A base
	// below 0 checks nothing, as SavePolicy.
	SavePolicyOver(ctx context.Context, p *store.PolicyVersion, base int64) error
	Policy(ctx context.Context) (*store.PolicyVersion, error) // store.ErrNotFound when none saved
	PolicyVersion(ctx context.Context, id int64) (*store.PolicyVersion, error)
	PolicyHistory(ctx context.Context, limit int) ([]*store.PolicyVersion, error) // newest first

	// The embedded IdP's local users.
	CreateIdPUser(ctx context.Context, u *store.IdPUser) error
	IdPUser(ctx context.Context, id string) (*store.IdPUser, error)
	IdPUserByEmail(ctx context.Context, email string) (*store.IdPUser, error)
	IdPUserBySetupHash(ctx context.Context, hash []byte) (*store.IdPUser, error)
	IdPUsers(ctx context.Context) ([]*store.IdPUser, error)
	UpdateIdPUser(ctx context.Context, u *store.IdPUser) error

	// Audit records from nodes; inserting a known ID is not an error and
	// changes nothing (at-least-once delivery, deduplicated).
	InsertAudit(ctx context.Context, recs []*store.AuditRecord) (inserted int, err error)
	Audit(ctx context.Context, f store.AuditFilter) ([]*store.AuditRecord, error) // newest first
	AuditRecord(ctx context.Context, id string) (*store.AuditRecord, error)
	// AuditAfter returns the records with a Seq above after, lowest
	// first: InsertAudit numbers the records it inserts in commit order,
	// so paging by the last Seq seen misses none, whatever their Time.
	AuditAfter(ctx context.Context, after int64, limit int) ([]*store.AuditRecord, error)

	// Admin audit trail.
	LogAdminAction(ctx context.Context, a *store.AdminAction) error
	AdminActions(ctx context.Context, limit int) ([]*store.AdminAction, error) // newest first
	// AdminActionsAfter returns the entries with an ID above after,
	// lowest first; IDs become visible in increasing order.
	AdminActionsAfter(ctx context.Context, after int64, limit int) ([]*store.AdminAction, error)

	// Audit sinks: AuditHeads is the last record seq and admin action
	// ID given; a sink's cursor per stream starts at 0 and moves only
	// from where the mover last saw it (else store.ErrConflict).
	AuditHeads(ctx context.Context) (records, actions int64, err error)
	SinkCursor(ctx context.Context, sink, stream string) (int64, error)
	AdvanceSinkCursor(ctx context.Context, sink, stream string, from, to int64) error

	// Retention: ExpiredAudit pages by Seq through the records older
	// than before; CutAudit deletes records and replaces checkpoints in
	// one transaction, all or nothing (a checkpoint to replace that is
	// gone: store.ErrConflict).
	ExpiredAudit(ctx context.Context, before time.Time, after int64, limit int) ([]*store.AuditRecord, error)
	AuditCuts(ctx context.Context, node string) ([]*store.AuditCut, error)
	CutAudit(ctx context.Context, node string, ids, replace []string, cuts []*store.AuditCut) error
	// ScrubAudit rewrites a record whose body is still the old one and
	// stores its scrub; AuditScrub reads it back (ErrNotFound: none).
	ScrubAudit(ctx context.Context, old, body []byte, sc *store.AuditScrub) error
	AuditScrub(ctx context.Context, id string) (*store.AuditScrub, error)

	// People's prompt keys: one per person, the first stored wins;
	// erasure empties it for good.
	AddPersonKey(ctx context.Context, k *store.PersonKey) (*store.PersonKey, error)
	PersonKey(ctx context.Context, user string) (*store.PersonKey, error)
	PersonKeys(ctx context.Context) ([]*store.PersonKey, error)
	ErasePersonKey(ctx context.Context, user string, at time.Time) error

	// Key-value settings the coordinator keeps (e.g. its encryption key id,
	// netmap epoch).
	Setting(ctx context.Context, name string) ([]byte, error)
	SetSetting(ctx context.Context, name string, value []byte) error

	// The embedded IdP's protocol state, shared by replicas (the
	// provider's own statement of it, with its rules).
	idp.State
	// CompleteIdPSetup spends a live setup token once (store.ErrNotFound
	// for a spent, wrong or expired one), on any replica.
	CompleteIdPSetup(ctx context.Context, id string, setupHash []byte, now time.Time, passwordHash string, totpSecret []byte, step int64) error

	// Which devices hold a netmap stream, on which replica (see
	// store/presence.go).
	OpenNetmapStream(ctx context.Context, id, deviceID, replica string, now time.Time) error
	CloseNetmapStream(ctx context.Context, id string) error
	TouchNetmapStreams(ctx context.Context, replica string, now, before time.Time) error
	CloseReplicaStreams(ctx context.Context, replica string) error
	OnlineDevices(ctx context.Context, since time.Time) (map[string]bool, error)

	// Where each replica's relay is reached, and its key (see
	// store/relays.go).
	AnnounceRelay(ctx context.Context, replica string, r store.RelayReplica, now, before time.Time) error
	Relays(ctx context.Context, since time.Time) (map[string]store.RelayReplica, error)
	ForgetRelay(ctx context.Context, replica string) error

	// How members reach their peers (see store/paths.go).
	SetPaths(ctx context.Context, id string, report []byte, now time.Time) error
	Paths(ctx context.Context) (map[string]store.PathReport, error)
	// The refresh tokens people are re-checked with at their IdP, sealed
	// by the caller (see store/idpgrants.go); the embedded IdP's users
	// deleted with their refresh tokens and passkeys.
	SetIdPGrant(ctx context.Context, user string, sealed []byte, at time.Time) error
	IdPGrant(ctx context.Context, user string) (*store.IdPGrant, error)
	IdPGrants(ctx context.Context) ([]*store.IdPGrant, error)
	RecordIdPCheck(ctx context.Context, user string, at time.Time, result string, prev, next []byte) error
	DeleteIdPGrant(ctx context.Context, user string) error
	DeleteIdPUser(ctx context.Context, id string) error

	// Ping checks the database answers (for /readyz).
	Ping(ctx context.Context) error
	Close() error
}

// Both databases are one implementation, store.DB.
var _ Store = (*store.DB)(nil)
