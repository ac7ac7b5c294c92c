package coordinator

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/moatmesh/moat/coordinator/store"
)

// Config configures a coordinator. cmd/moat-coordinator fills it from
// flags, a file and the environment; the zero value of each field means
// what its comment says.
type Config struct {
	// PublicURL is the URL people and devices reach the coordinator at,
	// e.g. "https://moat.example.com". Required. OIDC redirect URIs and
	// the embedded provider's issuer derive from it.
	PublicURL string

	// Version is this build's version, shown at the foot of every UI page
	// and named when a member is refused as too old. Default "dev";
	// moat-coordinator sets the version it was built with.
	Version string
	// DataDir holds the SQLite database and, when SealKey is zero, the
	// seal key (seal.key).
	// Default "./moat-data".
	DataDir string
	// Database is empty for SQLite in DataDir, or a postgres:// URL.
	Database string
	// SealKey seals the coordinator's secrets in the database (TOTP
	// secrets, the embedded provider's keys, the self-signed TLS key);
	// every replica needs the same one. Zero: the key in DataDir/seal.key,
	// created on first start while the database holds no secrets.
	SealKey [32]byte
	// ErasureLog is the file every erasure of a person is logged to
	// (erasurelog.go) before their prompt key is destroyed, and that
	// Restore replays. Keep it with the backups, not only in DataDir,
	// so that it survives the loss of the data dir. Default
	// DataDir/erasures.jsonl.
	ErasureLog string
	// SealKeySource says where SealKey came from, for errors (e.g.
	// "--seal-key-file /etc/moat/seal.key"). Empty: "the seal key given".
	SealKeySource string

	// OIDC configures sign-in. With Issuer empty, the coordinator runs its
	// embedded provider under /idp and signs people in through it.
	OIDC OIDCConfig

	// IdPCheckInterval is how often the external IdP's discovery document
	// is fetched for moat_coordinator_idp_up and the admin overview.
	// Default 30s (DefaultIdPCheckInterval).
	IdPCheckInterval time.Duration

	// IdPRecheck is how often each person is re-checked at the identity
	// provider with the refresh token of their latest sign-in
	// (idprecheck.go); the sign-in asks for it with the offline_access
	// scope at the embedded provider, and an external IdP needs that
	// scope in OIDC.Scopes. Zero: never, and no refresh token is kept.
	IdPRecheck time.Duration

	// DeviceTTL is how long a person's device key stays valid after
	// sign-in. Default 12h.
	DeviceTTL time.Duration
	// NodeTTL is how long a node may stay in the mesh after it joins;
	// an admin changes it per node (admin API, UI). Zero: nodes never
	// expire.
	NodeTTL time.Duration
	// NodeCredentialTTL is how long a node's credential works; the node
	// gets its next one two thirds into that (nodecreds.go). Default 30
	// days (DefaultNodeCredentialTTL).
	NodeCredentialTTL time.Duration
	// TailnetLogins lets nodes on a Tailscale or Headscale tailnet that
	// are enrolled here (`moat-node tailnet --coordinator`) take a
	// tailnet caller for the person whose email is the caller's tailnet
	// login name (lowercased): the tailnet's control server then vouches
	// for who people are on those nodes (docs/tailnet.md). Default false:
	// no tailnet login names anyone.
	TailnetLogins bool
	// TailnetTags are the tailnet tags ("tag:ci") that a tagged tailnet
	// device counts as on those nodes, matched by the same tags in the
	// policy. Default: none; a tagged tailnet device is refused. With
	// neither TailnetLogins nor TailnetTags, tailnet nodes are refused
	// their stream (403 tailnet_off) and serve nobody.
	TailnetTags []string
	// LoginTTL is how long a started login may take. Default 10m.
	LoginTTL time.Duration

	// ReleaseDir is a release as `make release` writes it: install.sh and
	// install.sh.minisig, served at /install.sh and /install.sh.minisig,
	// and moat-node-linux-amd64, moat-node-linux-arm64, moat-node.service,
	// SHA256SUMS and SHA256SUMS.minisig, served under /download/. What it
	// lacks is taken from this build, unsigned (a missing SHA256SUMS is
	// computed at start). Empty: serve the moat-node found next to this
	// process's executable as the build for this machine (development).
	ReleaseDir string
	// ReleaseKey is the release's minisign public key, the RW… line of
	// its minisign.pub (see ParseReleaseKey). The install command carries
	// it and checks install.sh against it before running it, and
	// install.sh checks SHA256SUMS with it, so that a GPU host trusts the
	// release key, not the coordinator. Empty: no install command is given
	// (the UI and API say how to set it).
	ReleaseKey string
	// SelfSignedCert is the DER of the coordinator's self-signed TLS
	// certificate; serve sets it with --tls=self-signed. /install.sh and
	// the install command then pin it (curl: its public key; moat-node:
	// its SHA-256 fingerprint). Empty: clients verify the certificate
	// against their system roots.
	SelfSignedCert []byte

	// RelayMeshURL is where the other replicas reach this replica's
	// relay: its own address, not the PublicURL a load balancer shares
	// (e.g. "https://10.0.3.7:8443/derp"). The replica announces it in
	// the database and meshes its relay with every other replica's, so
	// that two members relayed through different replicas reach each
	// other. They verify it with the PublicURL's name (and the
	// self-signed certificate when SelfSignedCert is set). Empty: this
	// replica's relay does not mesh (one replica needs none).
	RelayMeshURL string
	// Relays are relays over HTTPS on other hosts (`moat-coordinator
	// relay` processes, "https://HOST[:PORT]/derp") that every member's
	// netmap names, best first, this coordinator's own relay (PublicURL +
	// "/derp") last as the fallback. Members use the first that answers.
	// Default: none; members use the coordinator's own relay.
	Relays []string
	// RelayOnly makes the Server a relay process (`moat-coordinator
	// relay`): it serves only the relay (under "/derp", its probe
	// answering 503 while the store is not reachable), /healthz and
	// /readyz (/metrics is moat-coordinator's --metrics-listen), admits and cuts off members as the replicas
	// do (it recomputes the netmaps to know who is live) and meshes with
	// them, but serves no API, UI or identity provider and runs no audit
	// sinks, retention, IdP re-checks or sweeper. It needs the cluster's
	// PostgreSQL Database and seal key (the relay mesh key is sealed in
	// it); PublicURL is still the coordinator's (the replicas' certificate
	// name the mesh verifies). Default false: a full coordinator.
	RelayOnly bool

	// TrustedProxies are the addresses of reverse proxies in front of the
	// coordinator (e.g. 127.0.0.1/32 for Caddy on the same host). Only a
	// request whose connection comes from one of them has its client read
	// from X-Forwarded-For (or Forwarded): the rightmost hop that is not a
	// trusted proxy. Empty: forwarding headers are ignored and the client
	// is the connection's peer.
	TrustedProxies []netip.Prefix
	// MaxConnsPerClient caps the requests one client address (IPv6: one
	// /64) may have in flight, and ServeListener's open connections from
	// one address that is not a trusted proxy. Default 1000; negative: no
	// cap.
	MaxConnsPerClient int
	// SignInRate is how many sign-in requests (a device's sign-in start,
	// the sign-in, MFA and web UI sign-in pages) one client address (IPv6:
	// one /64) may make a minute, and at once. A sign-in takes about six;
	// an office whose people share one NAT address needs room for many at
	// the start of a day. Failed codes are limited per account as well,
	// whatever this is. Default DefaultSignInRate; negative: no limit.
	SignInRate int

	// AuditSinks push audit records and the admin trail out, each from
	// the one replica holding its leader claim. Default: none.
	AuditSinks []AuditSink
	// AuditRetention is how long audit records are kept when their grant
	// sets no audit.retention; the leader of "audit-retention" deletes
	// older ones every hour, keeping each node's chain verifiable with
	// sealed checkpoints (retention.go). Zero: kept for ever.
	AuditRetention time.Duration

	// Logger receives the coordinator's logs. Default: discard.
	Logger *slog.Logger
	// Collectors are served on /metrics beside the coordinator's own
	// (moat_build_info, the certificate's expiry). Default: none.
	Collectors []prometheus.Collector
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// OIDCConfig is how the coordinator signs people in.
type OIDCConfig struct {
	// Issuer of the external IdP; empty = the embedded provider.
	Issuer string
	// ClientID and ClientSecret registered at the IdP. With the embedded
	// provider they are chosen by the coordinator.
	ClientID, ClientSecret string
	// Scopes are the scopes the coordinator asks the external IdP for;
	// "openid" is added when missing. Default openid, email, profile: ask for
	// "groups" (Okta, Dex, Authentik) only where the IdP knows that scope
	// (Entra ID and Keycloak refuse it and send groups without it).
	Scopes []string
	// GroupsClaim names the ID token claim holding the person's groups.
	// Default "groups".
	GroupsClaim string
	// EmailClaim names the external IdP's ID token claim holding the
	// person's email address, e.g. "preferred_username" or "upn" for Entra ID. Default
	// "email".
	EmailClaim string
	// AllowedDomains, when set, admits only emails in these domains.
	AllowedDomains []string
	// AllowedGroups, when set, admits only members of one of these groups.
	AllowedGroups []string
	// AdminGroups are IdP groups whose members are coordinator admins.
	// Default: none (only the embedded provider's admin flag).
	AdminGroups []string
	// AuditorGroups are IdP groups whose members may read audit and policy.
	AuditorGroups []string
	// MFAMethods are the amr values that prove MFA. Default
	// mfa, otp, hwk, swk, totp.
	MFAMethods []string
	// RequireVerifiedEmail refuses ID tokens whose email_verified is not
	// true. Default false (many IdPs omit the claim).
	RequireVerifiedEmail bool
}

// DefaultNodeCredentialTTL is Config.NodeCredentialTTL's default.
const DefaultNodeCredentialTTL = 30 * 24 * time.Hour

// DefaultDataDir is Config.DataDir's default.
const DefaultDataDir = "./moat-data"

// DefaultMaxConnsPerClient is Config.MaxConnsPerClient's default: room
// for an office of several hundred people behind one NAT address, each
// holding a netmap stream, while one client cannot use up the process's
// file descriptors.
const DefaultMaxConnsPerClient = 1000

// DefaultSignInRate is Config.SignInRate's default: about twenty people
// signing in a minute behind one address, 2 requests a second sustained.
const DefaultSignInRate = 120

// DefaultScopes are the scopes asked for by default.
var DefaultScopes = []string{"openid", "email", "profile"}

// scopes are the scopes to ask for: the configured ones (an entry may
// hold several separated by spaces, as OAuth writes them) or the
// default, with openid first and each once.
func (c OIDCConfig) scopes() []string {
	in := c.Scopes
	if len(in) == 0 {
		in = DefaultScopes
	}
	out := []string{"openid"}
	for _, e := range in {
		for _, sc := range strings.Fields(e) {
			if !slices.Contains(out, sc) {
				out = append(out, sc)
			}
		}
	}
	return out
}

// DefaultMFAMethods are the amr values accepted as MFA by default.
var DefaultMFAMethods = []string{"mfa", "otp", "hwk", "swk", "totp"}

func (c *Config) setDefaults() error {
	if c.PublicURL == "" {
		return errors.New("config: PublicURL is required")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return fmt.Errorf("config: PublicURL %q: want http(s)://HOST[:PORT]", c.PublicURL)
	}
	if c.RelayOnly && !store.IsPostgres(c.Database) {
		return errors.New("config: a relay process shares the cluster's database: give it the replicas' postgres:// Database (SQLite serves one process, which holds the relay itself)")
	}
	for _, r := range c.Relays {
		if err := CheckRelayURL(r); err != nil {
			return fmt.Errorf("config: relay: %w", err)
		}
	}
	for _, t := range c.TailnetTags {
		if name, ok := strings.CutPrefix(t, "tag:"); !ok || name == "" || strings.ContainsAny(name, " \t\"\\:") {
			return fmt.Errorf("config: tailnet tag %q: write tag:NAME", t)
		}
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.DeviceTTL == 0 {
		c.DeviceTTL = 12 * time.Hour
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	if c.IdPCheckInterval <= 0 {
		c.IdPCheckInterval = DefaultIdPCheckInterval
	}
	if c.NodeCredentialTTL <= 0 {
		c.NodeCredentialTTL = DefaultNodeCredentialTTL
	}
	if c.LoginTTL == 0 {
		c.LoginTTL = 10 * time.Minute
	}
	if c.OIDC.GroupsClaim == "" {
		c.OIDC.GroupsClaim = "groups"
	}
	if c.OIDC.EmailClaim == "" {
		c.OIDC.EmailClaim = "email"
	}
	if len(c.OIDC.MFAMethods) == 0 {
		c.OIDC.MFAMethods = DefaultMFAMethods
	}
	if c.MaxConnsPerClient == 0 {
		c.MaxConnsPerClient = DefaultMaxConnsPerClient
	}
	if c.SignInRate == 0 {
		c.SignInRate = DefaultSignInRate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
