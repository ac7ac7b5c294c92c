package store

// migration is one numbered schema change. Statements use {{blob}},
// {{time}} and {{serial}} for the types the two databases spell
// differently; everything else is common SQL. Never edit a released
// migration: append a new one.
//
// A migration expands the schema (minLevel 0: binaries that ran before
// it keep working) or contracts it (minLevel: the lowest binary schema
// level that can use the schema once it is applied, usually the version
// of the expanding migration whose new shape older binaries do not
// write). See migrate.go and docs/operations.md.
type migration struct {
	version  int
	name     string
	minLevel int
	stmts    []string
	// only holds statements for one database, by dialect name ("sqlite",
	// "postgres"), run after stmts: what the two spell too differently
	// for {{…}} holes (triggers).
	only map[string][]string
}

// deviceVersionCols are the columns of devices whose update gives the
// row a new version (migration 23): all but last_seen and version itself.
// A migration that adds a column to devices must recreate the triggers
// with it (TestDeviceVersionColumns fails until then).
const deviceVersionCols = `id, kind, user_id, public_key, hostname, os, tags, ipv4, ipv6, endpoints,
	models, cred_hash, expiry, last_mfa, revoked, created, node_status, software, mfa_method`

var migrations = []migration{{
	version: 1,
	name:    "initial schema",
	stmts: []string{
		`CREATE TABLE users (
			id             TEXT PRIMARY KEY,
			issuer         TEXT NOT NULL,
			subject        TEXT NOT NULL,
			email          TEXT NOT NULL DEFAULT '',
			name           TEXT NOT NULL DEFAULT '',
			idp_groups     TEXT NOT NULL DEFAULT '[]',
			admin          BOOLEAN NOT NULL DEFAULT FALSE,
			role           TEXT NOT NULL DEFAULT 'member',
			disabled       BOOLEAN NOT NULL DEFAULT FALSE,
			created        {{time}} NOT NULL,
			last_login     {{time}},
			totp_secret    {{blob}},
			totp_last_step BIGINT NOT NULL DEFAULT 0,
			mfa_failures   INTEGER NOT NULL DEFAULT 0,
			mfa_locked_til {{time}},
			UNIQUE (issuer, subject)
		)`,
		`CREATE INDEX users_email ON users (email)`,
		`CREATE TABLE devices (
			id          TEXT PRIMARY KEY,
			kind        TEXT NOT NULL,
			user_id     TEXT REFERENCES users (id),
			public_key  TEXT NOT NULL UNIQUE,
			hostname    TEXT NOT NULL DEFAULT '',
			os          TEXT NOT NULL DEFAULT '',
			tags        TEXT NOT NULL DEFAULT '[]',
			ipv4        TEXT NOT NULL UNIQUE,
			ipv6        TEXT NOT NULL UNIQUE,
			endpoints   TEXT NOT NULL DEFAULT '[]',
			models      TEXT NOT NULL DEFAULT '[]',
			cred_hash   {{blob}} UNIQUE,
			expiry      {{time}},
			last_mfa    {{time}},
			revoked     BOOLEAN NOT NULL DEFAULT FALSE,
			created     {{time}} NOT NULL,
			last_seen   {{time}},
			node_status {{blob}}
		)`,
		`CREATE INDEX devices_user ON devices (user_id)`,
		// The next host number to hand out; see alloc.go.
		`CREATE TABLE addr_alloc (
			id        INTEGER PRIMARY KEY CHECK (id = 1),
			next_host BIGINT NOT NULL
		)`,
		`INSERT INTO addr_alloc (id, next_host) VALUES (1, 1)`,
		`CREATE TABLE enroll_keys (
			id         TEXT PRIMARY KEY,
			hash       {{blob}} NOT NULL UNIQUE,
			tags       TEXT NOT NULL DEFAULT '[]',
			reusable   BOOLEAN NOT NULL DEFAULT FALSE,
			expiry     {{time}},
			uses       INTEGER NOT NULL DEFAULT 0,
			revoked    BOOLEAN NOT NULL DEFAULT FALSE,
			created_by TEXT NOT NULL DEFAULT '',
			created    {{time}} NOT NULL
		)`,
		`CREATE TABLE api_tokens (
			id         TEXT PRIMARY KEY,
			hash       {{blob}} NOT NULL UNIQUE,
			name       TEXT NOT NULL DEFAULT '',
			created_by TEXT NOT NULL DEFAULT '',
			created    {{time}} NOT NULL,
			expiry     {{time}},
			last_used  {{time}}
		)`,
		`CREATE TABLE login_sessions (
			id         TEXT PRIMARY KEY,
			poll_hash  {{blob}} UNIQUE,
			purpose    TEXT NOT NULL,
			public_key TEXT NOT NULL DEFAULT '',
			hostname   TEXT NOT NULL DEFAULT '',
			os         TEXT NOT NULL DEFAULT '',
			nonce      TEXT NOT NULL DEFAULT '',
			verifier   TEXT NOT NULL DEFAULT '',
			created    {{time}} NOT NULL,
			expires    {{time}},
			user_id    TEXT NOT NULL DEFAULT '',
			mfa_done   BOOLEAN NOT NULL DEFAULT FALSE,
			device_id  TEXT NOT NULL DEFAULT '',
			result     {{blob}},
			consumed   BOOLEAN NOT NULL DEFAULT FALSE
		)`,
		`CREATE INDEX login_sessions_expires ON login_sessions (expires)`,
		`CREATE TABLE policies (
			id      {{serial}},
			body    TEXT NOT NULL,
			author  TEXT NOT NULL DEFAULT '',
			message TEXT NOT NULL DEFAULT '',
			created {{time}} NOT NULL
		)`,
		`CREATE TABLE idp_users (
			id             TEXT PRIMARY KEY,
			email          TEXT NOT NULL UNIQUE,
			name           TEXT NOT NULL DEFAULT '',
			password_hash  TEXT NOT NULL DEFAULT '',
			totp_secret    {{blob}},
			totp_last_step BIGINT NOT NULL DEFAULT 0,
			admin          BOOLEAN NOT NULL DEFAULT FALSE,
			idp_groups     TEXT NOT NULL DEFAULT '[]',
			setup_hash     {{blob}} UNIQUE,
			setup_expiry   {{time}},
			failures       INTEGER NOT NULL DEFAULT 0,
			locked_until   {{time}},
			created        {{time}} NOT NULL
		)`,
		`CREATE TABLE audit (
			id         TEXT PRIMARY KEY,
			node_id    TEXT NOT NULL DEFAULT '',
			at         {{time}} NOT NULL,
			user_id    TEXT NOT NULL DEFAULT '',
			login      TEXT NOT NULL DEFAULT '',
			device_id  TEXT NOT NULL DEFAULT '',
			model      TEXT NOT NULL DEFAULT '',
			api        TEXT NOT NULL DEFAULT '',
			decision   TEXT NOT NULL DEFAULT '',
			reason     TEXT NOT NULL DEFAULT '',
			grant_name TEXT NOT NULL DEFAULT '',
			tokens_in  BIGINT NOT NULL DEFAULT 0,
			tokens_out BIGINT NOT NULL DEFAULT 0,
			latency_ms BIGINT NOT NULL DEFAULT 0,
			status     INTEGER NOT NULL DEFAULT 0,
			body       {{blob}}
		)`,
		`CREATE INDEX audit_at ON audit (at, id)`,
		`CREATE INDEX audit_user ON audit (user_id, at)`,
		`CREATE INDEX audit_login ON audit (login, at)`,
		`CREATE INDEX audit_model ON audit (model, at)`,
		`CREATE INDEX audit_node ON audit (node_id, at)`,
		`CREATE INDEX audit_decision ON audit (decision, at)`,
		`CREATE TABLE admin_actions (
			id     {{serial}},
			at     {{time}} NOT NULL,
			actor  TEXT NOT NULL DEFAULT '',
			action TEXT NOT NULL,
			target TEXT NOT NULL DEFAULT '',
			detail TEXT NOT NULL DEFAULT ''
		)`,
		`CREATE TABLE settings (
			name  TEXT PRIMARY KEY,
			value {{blob}}
		)`,
	},
}, {
	version: 2,
	name:    "login sessions bound to one browser",
	stmts: []string{
		`ALTER TABLE login_sessions ADD COLUMN browser_hash {{blob}}`,
	},
}, {
	version: 3,
	name:    "web UI sessions",
	stmts: []string{
		`CREATE TABLE ui_sessions (
			hash    {{blob}} PRIMARY KEY,
			user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
			created {{time}} NOT NULL,
			expires {{time}} NOT NULL
		)`,
		`CREATE INDEX ui_sessions_expires ON ui_sessions (expires)`,
	},
}, {
	version: 4,
	name:    "last MFA of a person",
	stmts: []string{
		`ALTER TABLE users ADD COLUMN last_mfa {{time}}`,
		`ALTER TABLE users ADD COLUMN mfa_via TEXT NOT NULL DEFAULT ''`,
	},
}, {
	version: 5,
	name:    "device sign-ins: requester address and refusal",
	stmts: []string{
		`ALTER TABLE login_sessions ADD COLUMN requester TEXT NOT NULL DEFAULT ''`,
		`ALTER TABLE login_sessions ADD COLUMN refusal TEXT NOT NULL DEFAULT ''`,
	},
}, {
	version: 6,
	name:    "sign-in backoff",
	stmts: []string{
		// Failed sign-in attempts per key (an account, or an account from
		// one client address); see signin.go.
		`CREATE TABLE signin_backoff (
			bucket   TEXT PRIMARY KEY,
			failures INTEGER NOT NULL,
			next_at  {{time}},
			updated  {{time}} NOT NULL
		)`,
		`CREATE INDEX signin_backoff_updated ON signin_backoff (updated)`,
	},
}, {
	version: 7,
	name:    "the coordinator's own secrets, shared by replicas",
	stmts: []string{
		// Every value is sealed under the seal key with the additional
		// data "setting:"+name (see coordinator/keyring.go). retire is set
		// on a signing key no longer used to sign: it is kept to verify
		// until then, and pruned after.
		`CREATE TABLE secrets (
			name    TEXT PRIMARY KEY,
			value   {{blob}} NOT NULL,
			created {{time}},
			retire  {{time}}
		)`,
		// Expand: copy, not move; binaries of schema level 6 still read
		// the client secret from settings.
		`INSERT INTO secrets (name, value, created)
			SELECT name, value, NULL FROM settings WHERE name = 'idp-client-secret' AND value IS NOT NULL`,
	},
}, {
	version: 8,
	name:    "shared replica state: embedded IdP sign-ins, codes, tokens; netmap streams",
	stmts: []string{
		// The embedded IdP's protocol state, keyed by the SHA-256 of the
		// id, code or token (see idpstate.go). data is the provider's own
		// encoding of a sign-in in progress.
		`CREATE TABLE idp_auth_requests (
			hash    {{blob}} PRIMARY KEY,
			data    {{blob}} NOT NULL,
			expires {{time}} NOT NULL
		)`,
		`CREATE INDEX idp_auth_requests_expires ON idp_auth_requests (expires)`,
		`CREATE TABLE idp_codes (
			hash         {{blob}} PRIMARY KEY,
			request_hash {{blob}} NOT NULL,
			expires      {{time}} NOT NULL
		)`,
		`CREATE INDEX idp_codes_expires ON idp_codes (expires)`,
		`CREATE TABLE idp_tokens (
			hash      {{blob}} PRIMARY KEY,
			subject   TEXT NOT NULL,
			client_id TEXT NOT NULL DEFAULT '',
			scopes    TEXT NOT NULL DEFAULT '[]',
			expires   {{time}} NOT NULL
		)`,
		`CREATE INDEX idp_tokens_expires ON idp_tokens (expires)`,
		// One row per open netmap stream, kept fresh by the replica
		// holding it (see presence.go).
		`CREATE TABLE netmap_streams (
			id        TEXT PRIMARY KEY,
			device_id TEXT NOT NULL,
			replica   TEXT NOT NULL,
			seen      {{time}} NOT NULL
		)`,
		`CREATE INDEX netmap_streams_device ON netmap_streams (device_id, seen)`,
		`CREATE INDEX netmap_streams_replica ON netmap_streams (replica)`,
	},
}, {
	version: 9,
	name:    "SCIM provisioning: tokens, users, groups and their members",
	stmts: []string{
		// Bearer tokens of SCIM clients (an IdP's provisioning agent),
		// stored as SHA-256 hashes like API tokens.
		`CREATE TABLE scim_tokens (
			id         TEXT PRIMARY KEY,
			hash       {{blob}} NOT NULL UNIQUE,
			name       TEXT NOT NULL,
			created_by TEXT NOT NULL,
			created    {{time}} NOT NULL,
			expiry     {{time}}
		)`,
		// People as the IdP provisions them. user_name and email are
		// lower case; attrs is the SCIM resource as last written. A
		// deleted person stays as a tombstone (deleted, not active) so
		// that a later sign-in is refused.
		`CREATE TABLE scim_users (
			id          TEXT PRIMARY KEY,
			user_name   TEXT NOT NULL UNIQUE,
			email       TEXT NOT NULL DEFAULT '',
			external_id TEXT NOT NULL DEFAULT '',
			active      BOOLEAN NOT NULL DEFAULT TRUE,
			deleted     BOOLEAN NOT NULL DEFAULT FALSE,
			attrs       TEXT NOT NULL DEFAULT '{}',
			created     {{time}} NOT NULL,
			modified    {{time}} NOT NULL
		)`,
		`CREATE INDEX scim_users_email ON scim_users (email)`,
		`CREATE TABLE scim_groups (
			id           TEXT PRIMARY KEY,
			display_name TEXT NOT NULL,
			external_id  TEXT NOT NULL DEFAULT '',
			attrs        TEXT NOT NULL DEFAULT '{}',
			created      {{time}} NOT NULL,
			modified     {{time}} NOT NULL
		)`,
		`CREATE TABLE scim_members (
			group_id TEXT NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
			user_id  TEXT NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
			PRIMARY KEY (group_id, user_id)
		)`,
		`CREATE INDEX scim_members_user ON scim_members (user_id)`,
	},
}, {
	version: 10,
	name:    "audit ingestion sequence",
	stmts: []string{
		// seq numbers audit records in the order the coordinator stored
		// them, for pollers and sinks (see audit.go). A binary of level 9
		// leaves it NULL; the next insert by a newer one numbers such rows.
		`ALTER TABLE audit ADD COLUMN seq BIGINT`,
		`UPDATE audit SET seq = r.n FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY at, id) AS n FROM audit) AS r
			WHERE audit.id = r.id`,
		`CREATE UNIQUE INDEX audit_seq ON audit (seq)`,
		// The last seq given; its row lock orders concurrent inserts.
		`CREATE TABLE audit_counter (
			name  TEXT PRIMARY KEY,
			value BIGINT NOT NULL
		)`,
		`INSERT INTO audit_counter (name, value) SELECT 'audit', COALESCE(MAX(seq), 0) FROM audit`,
	},
}, {
	version: 11,
	name:    "audit sink cursors",
	stmts: []string{
		// How far each audit sink has delivered each stream ("records":
		// audit.seq, "admin": admin_actions.id); see sinks.go.
		`CREATE TABLE audit_sink_cursors (
			sink    TEXT NOT NULL,
			stream  TEXT NOT NULL,
			seq     BIGINT NOT NULL,
			updated {{time}} NOT NULL,
			PRIMARY KEY (sink, stream)
		)`,
		// The admin trail's last id; its row lock orders the trail's
		// inserts as the audit counter orders records'.
		`INSERT INTO audit_counter (name, value) SELECT 'admin', COALESCE(MAX(id), 0) FROM admin_actions`,
	},
}, {
	version: 12,
	name:    "usage counters: tokens per person, grant and UTC day, apart from audit",
	stmts: []string{
		// The authoritative day counters behind tokensPerDay (see
		// usage.go): tokens leased to nodes, less what they gave back.
		// Kept apart from the audit table so that audit retention never
		// changes a budget. leased is the last lease's size.
		`CREATE TABLE usage_day (
			person   TEXT NOT NULL,
			grant_id TEXT NOT NULL,
			day      BIGINT NOT NULL,
			tokens   BIGINT NOT NULL DEFAULT 0,
			leased   BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (person, grant_id, day)
		)`,
		`CREATE INDEX usage_day_day ON usage_day (day)`,
	},
}, {
	version: 13,
	name:    "devices: the software each member reports",
	stmts: []string{
		// program/version from the member's User-Agent ("moat-node/v1.2.3"),
		// shown in the UI and the admin API; '' until it first reports.
		`ALTER TABLE devices ADD COLUMN software TEXT NOT NULL DEFAULT ''`,
	},
}, {
	version: 14,
	name:    "audit retention checkpoints",
	stmts: []string{
		// Runs of a node's chain deleted by retention (see retention.go):
		// records first..last, the hash the first chained to (prev) and
		// the chain head at the cut (head), sealed under the seal key.
		`CREATE TABLE audit_cuts (
			id      TEXT PRIMARY KEY,
			node_id TEXT NOT NULL,
			first_seq BIGINT NOT NULL,
			last_seq  BIGINT NOT NULL,
			prev    TEXT NOT NULL,
			head    TEXT NOT NULL,
			cut_at  {{time}} NOT NULL,
			seal    {{blob}} NOT NULL
		)`,
		`CREATE INDEX audit_cuts_node ON audit_cuts (node_id, first_seq)`,
	},
}, {
	version: 15,
	name:    "per-person prompt keys",
	stmts: []string{
		// Each person's key pair for the prompts nodes keep (see
		// personkeys.go): the public key nodes encrypt to, the private
		// key sealed under the seal key. Erasure empties both and stamps
		// erased; the row stays so that no new key is made.
		`CREATE TABLE person_keys (
			user_id TEXT PRIMARY KEY,
			public  {{blob}},
			private {{blob}},
			created {{time}} NOT NULL,
			erased  {{time}}
		)`,
	},
}, {
	version: 16,
	name:    "relay mesh: where each replica's relay is reached",
	stmts: []string{
		// One row per running replica, kept fresh by it, so that the
		// replicas' relays mesh with each other (see relays.go).
		`CREATE TABLE relay_replicas (
			replica TEXT PRIMARY KEY,
			url     TEXT NOT NULL,
			seen    {{time}} NOT NULL
		)`,
	},
}, {
	version: 17,
	name:    "passkeys and the factor of a device's last MFA",
	stmts: []string{
		// WebAuthn credentials of people, of the embedded IdP ("iu_…")
		// and of the coordinator's step-up ("u_…"); see passkeys.go.
		`CREATE TABLE passkeys (
			id         {{blob}} PRIMARY KEY,
			user_id    TEXT NOT NULL,
			name       TEXT NOT NULL DEFAULT '',
			data       {{blob}} NOT NULL,
			sign_count BIGINT NOT NULL DEFAULT 0,
			created    {{time}} NOT NULL,
			last_used  {{time}}
		)`,
		`CREATE INDEX passkeys_user ON passkeys (user_id)`,
		// Ceremonies in progress, by the SHA-256 of their id; single use.
		`CREATE TABLE passkey_challenges (
			hash    {{blob}} PRIMARY KEY,
			user_id TEXT NOT NULL,
			purpose TEXT NOT NULL,
			data    {{blob}} NOT NULL,
			expires {{time}} NOT NULL
		)`,
		// The RFC 8176 method of the device's last MFA ("hwk", "swk",
		// "otp", "mfa"); '' from binaries before this migration.
		`ALTER TABLE devices ADD COLUMN mfa_method TEXT NOT NULL DEFAULT ''`,
	},
}, {
	version: 18,
	name:    "reach: members' path reports and the relay keys of replicas",
	stmts: []string{
		// Each member's last report of how it reaches its peers (see
		// paths.go); it goes with its device.
		`CREATE TABLE member_paths (
			device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
			report    {{blob}} NOT NULL,
			reported  {{time}} NOT NULL
		)`,
		// The public key of each replica's relay, which the others pin
		// when they mesh with it (see relays.go); '' from binaries before
		// this migration, which the others do not mesh with.
		`ALTER TABLE relay_replicas ADD COLUMN relay_key TEXT NOT NULL DEFAULT ''`,
	},
}, {
	version: 19,
	name:    "audit records whose clear prompt was encrypted or removed",
	stmts: []string{
		// One row per record rewritten by the prompt migration
		// (promptscrub.go): the hash the node chained it with, the
		// SHA-256 of its body after the rewrite, sealed under the seal
		// key, so that the chain still verifies across it.
		`CREATE TABLE audit_scrubs (
			id          TEXT PRIMARY KEY,
			node_id     TEXT NOT NULL,
			hash        TEXT NOT NULL,
			body_sha256 TEXT NOT NULL,
			scrubbed    {{time}} NOT NULL,
			seal        {{blob}} NOT NULL
		)`,
	},
}, {
	version: 20,
	name:    "usage counters per minute: requests and tokens behind rpm and tpm",
	stmts: []string{
		// The authoritative minute counters behind rpm and tpm (see
		// usage.go), as usage_day holds tokensPerDay's: grant_id names
		// the counter ("grants[N]:rpm"), minute is Unix seconds / 60 on
		// the coordinator's clock. The sweeper keeps a few minutes.
		`CREATE TABLE usage_minute (
			person   TEXT NOT NULL,
			grant_id TEXT NOT NULL,
			minute   BIGINT NOT NULL,
			tokens   BIGINT NOT NULL DEFAULT 0,
			leased   BIGINT NOT NULL DEFAULT 0,
			PRIMARY KEY (person, grant_id, minute)
		)`,
		`CREATE INDEX usage_minute_minute ON usage_minute (minute)`,
	},
}, {
	version: 21,
	name:    "re-checking people at the IdP: their refresh tokens, and the embedded IdP's",
	stmts: []string{
		// The refresh token of each person's latest sign-in at the IdP,
		// sealed by the coordinator, and how the last re-check went (see
		// idpgrants.go).
		`CREATE TABLE idp_grants (
			user_id TEXT PRIMARY KEY,
			refresh {{blob}} NOT NULL,
			updated {{time}} NOT NULL,
			checked {{time}},
			result  TEXT NOT NULL DEFAULT ''
		)`,
		// The embedded IdP's refresh tokens, by their SHA-256.
		`CREATE TABLE idp_refresh_tokens (
			hash      {{blob}} PRIMARY KEY,
			subject   TEXT NOT NULL,
			client_id TEXT NOT NULL DEFAULT '',
			scopes    TEXT NOT NULL DEFAULT '[]',
			amr       TEXT NOT NULL DEFAULT '[]',
			auth_time {{time}},
			expires   {{time}} NOT NULL
		)`,
		`CREATE INDEX idp_refresh_tokens_expires ON idp_refresh_tokens (expires)`,
		`CREATE INDEX idp_refresh_tokens_subject ON idp_refresh_tokens (subject)`,
	},
}, {
	version: 22,
	name:    "node credentials: when each was issued and until when it works",
	stmts: []string{
		// Every live node credential, by its SHA-256: the current one
		// (devices.cred_hash) and, after a rotation, the previous one for
		// the overlap (see nodecreds.go). Nodes joined before this
		// migration have no row until they first rotate.
		`CREATE TABLE node_credentials (
			hash      {{blob}} PRIMARY KEY,
			device_id TEXT NOT NULL,
			issued    {{time}} NOT NULL,
			expires   {{time}}
		)`,
		`CREATE INDEX node_credentials_device ON node_credentials (device_id)`,
	},
}, {
	version: 23,
	name:    "device versions: the netmap fan-out re-reads only the devices that changed",
	stmts: []string{
		// A number the database sets on every insert of the row and
		// every update of a column but last_seen, never the same twice
		// (see devices.go, DeviceVersions): triggers set it, so that no
		// write path can forget it, older binaries' writes included. 0
		// until the row is first written after this migration. last_seen
		// is left out: a reconnect of every device writes it for all,
		// and a netmap does not show it.
		`ALTER TABLE devices ADD COLUMN version BIGINT NOT NULL DEFAULT 0`,
		`CREATE INDEX devices_version ON devices (version)`,
	},
	only: map[string][]string{
		"sqlite": {
			`CREATE TABLE device_version (n INTEGER NOT NULL)`,
			`INSERT INTO device_version (n) VALUES (0)`,
			// SQLite does not fire triggers from a trigger's own
			// statements (recursive_triggers is off), so the UPDATE
			// inside does not run them again.
			`CREATE TRIGGER devices_version_insert AFTER INSERT ON devices BEGIN
				UPDATE device_version SET n = n + 1;
				UPDATE devices SET version = (SELECT n FROM device_version) WHERE id = NEW.id;
			END`,
			`CREATE TRIGGER devices_version_update AFTER UPDATE OF ` + deviceVersionCols + ` ON devices BEGIN
				UPDATE device_version SET n = n + 1;
				UPDATE devices SET version = (SELECT n FROM device_version) WHERE id = NEW.id;
			END`,
		},
		"postgres": {
			`CREATE SEQUENCE device_version`,
			`CREATE FUNCTION devices_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN
				NEW.version := nextval('device_version');
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER devices_version BEFORE INSERT OR UPDATE OF ` + deviceVersionCols + ` ON devices
				FOR EACH ROW EXECUTE FUNCTION devices_bump_version()`,
		},
	},
}, {
	version: 24,
	name:    "netmap presence: one row per replica marks its streams seen",
	stmts: []string{
		// When each replica last marked its netmap streams seen (see
		// presence.go): one row written per beat, where every stream row
		// was before. Binaries before this migration still judge stream
		// rows by their own seen, which replicas refresh far less often.
		`CREATE TABLE netmap_replicas (
			replica TEXT PRIMARY KEY,
			seen    {{time}} NOT NULL
		)`,
	},
}}
