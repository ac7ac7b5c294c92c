package main

import (
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moatmesh/moat/coordinator"
	"github.com/moatmesh/moat/internal/cli"
	"github.com/moatmesh/moat/policy"
)

// storeSettings locate the coordinator's state: serve and the commands
// that change it offline (users, tokens) share them.
type storeSettings struct {
	dataDir, database, erasureLog string
	sealKey                       sealKeySettings
}

func (s *storeSettings) register(fs *pflag.FlagSet) {
	fs.StringVar(&s.dataDir, "data-dir", "./moat-data", "directory for the SQLite database and, without --seal-key-file, the seal key")
	fs.StringVar(&s.database, "database", "", "empty for SQLite in the data dir, or a postgres:// URL")
	cli.SecretFile(fs, "database")
	fs.StringVar(&s.erasureLog, "erasure-log", "", "file every erasure of a person is logged to before their prompt key is destroyed, and that restore replays; keep it with the backups (default: erasures.jsonl in the data dir)")
}

// config is where the coordinator's state is, with its seal key (for
// the commands that registered the seal key's flags).
func (s *storeSettings) config(cmd *cobra.Command) (coordinator.Config, error) {
	cfg := coordinator.Config{DataDir: s.dataDir, Database: s.database, ErasureLog: s.erasureLog}
	return cfg, s.sealKey.apply(cmd, &cfg)
}

// serveSettings are the settings of `serve`, the keys of its config file.
type serveSettings struct {
	store                                       storeSettings
	listen, publicURL, releaseDir, releaseKey   string
	issuer, clientID, clientSecret, groupsClaim string
	emailClaim                                  string
	scopes, adminGroups, auditorGroups          []string
	allowedDomains, allowedGroups, mfaMethods   []string
	requireVerifiedEmail                        bool
	tlsMode, tlsCert, tlsKey                    string
	deviceTTL, loginTTL, shutdownTimeout        time.Duration
	idpRecheck, nodeTTL, nodeCredTTL            time.Duration
	tailnetLogins                               bool
	tailnetTags                                 []string
	log                                         cli.Logging
	trustedProxies                              []net.IPNet
	maxConnsPerClient                           int
	signInRate                                  int
	metricsListen                               string
	stunListen, relayMesh                       string
	relays                                      []string // --relay
	relayURL                                    string   // the relay command's --relay-url
	sinks                                       sinkSettings
	auditRetention                              string
}

// flagSet returns the settings as flags, each also MOAT_<FLAG> and a key
// of the config file.
func (s *serveSettings) flagSet() *pflag.FlagSet {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.StringVar(&s.listen, "listen", ":8443", "address to listen on")
	fs.StringVar(&s.publicURL, "public-url", "", "URL people and devices reach the coordinator at, e.g. https://moat.example.com (required)")
	s.store.register(fs)
	s.store.sealKey.register(fs)
	fs.StringVar(&s.issuer, "oidc-issuer", "", "external OIDC issuer; empty runs the embedded provider under /idp")
	fs.StringVar(&s.clientID, "oidc-client-id", "", "client ID at the external issuer")
	fs.StringVar(&s.clientSecret, "oidc-client-secret", "", "client secret at the external issuer")
	cli.SecretFile(fs, "oidc-client-secret")
	fs.StringSliceVar(&s.scopes, "oidc-scopes", coordinator.DefaultScopes, `scopes to ask the external issuer for (comma- or space-separated); add "groups" where the IdP has that scope (Okta, Dex, Authentik), not for Entra ID or Keycloak`)
	fs.StringVar(&s.groupsClaim, "oidc-groups-claim", "groups", "ID token claim with the person's groups")
	fs.StringVar(&s.emailClaim, "oidc-email-claim", "email", `ID token claim with the person's email address, e.g. "preferred_username" or "upn" for Entra ID`)
	fs.StringSliceVar(&s.adminGroups, "admin-groups", nil, "IdP groups whose members are admins (comma-separated)")
	fs.StringSliceVar(&s.auditorGroups, "auditor-groups", nil, "IdP groups whose members are auditors: read the policy, audit and admin trail (comma-separated)")
	fs.StringSliceVar(&s.allowedDomains, "allowed-domains", nil, "email domains allowed to sign in; empty: any (comma-separated)")
	fs.StringSliceVar(&s.allowedGroups, "allowed-groups", nil, "IdP groups allowed to sign in; empty: any (comma-separated)")
	fs.StringSliceVar(&s.mfaMethods, "mfa-methods", coordinator.DefaultMFAMethods, "amr values in the ID token that prove MFA (comma-separated); otherwise the coordinator asks for its own second factor (passkey or TOTP); hwk,swk demands a passkey")
	fs.DurationVar(&s.idpRecheck, "idp-recheck", 0, "re-check each person at the identity provider this often with the refresh token of their latest sign-in (add offline_access to --oidc-scopes for an external IdP), disabling people it no longer knows and updating their groups; 0: off, and no refresh token is kept")
	fs.BoolVar(&s.requireVerifiedEmail, "require-verified-email", false, "refuse ID tokens whose email_verified claim is not true")
	fs.StringVar(&s.tlsMode, "tls", "", `"self-signed" to create and keep a certificate; empty uses --tls-cert/--tls-key, or plain HTTP behind a TLS proxy`)
	fs.StringVar(&s.tlsCert, "tls-cert", "", "certificate file (PEM)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "key file (PEM)")
	fs.StringVar(&s.releaseDir, "release-dir", "", "a release as make release writes it (install.sh, moat-node builds, SHA256SUMS and their signatures) to serve at /install.sh and /download/; empty: the moat-node next to this binary, unsigned")
	fs.StringVar(&s.releaseKey, "release-key", "", "the release's minisign public key (the RW… line of its minisign.pub), which the install command carries and verifies install.sh and the downloads with; empty: no install command is given")
	fs.DurationVar(&s.deviceTTL, "device-ttl", 12*time.Hour, "how long a person's device stays signed in")
	fs.DurationVar(&s.nodeTTL, "node-ttl", 0, "how long a node stays in the mesh after it joins (an admin changes it per node: PUT /api/v1/admin/devices/ID/expiry); 0: nodes never expire")
	fs.DurationVar(&s.nodeCredTTL, "node-credential-ttl", coordinator.DefaultNodeCredentialTTL, "how long a node's credential works; the node gets its next one two thirds into that, with no downtime")
	fs.BoolVar(&s.tailnetLogins, "tailnet-logins", false, "let nodes on a Tailscale or Headscale tailnet enrolled here (moat-node tailnet --coordinator) take a tailnet caller for the person whose email is its tailnet login name: the tailnet's control server then vouches for people on those nodes (docs/tailnet.md)")
	fs.StringSliceVar(&s.tailnetTags, "tailnet-tags", nil, "tailnet tags (comma-separated, e.g. tag:ci) a tagged tailnet device counts as on those nodes, matched by the same tags in the policy; empty: tagged tailnet devices are refused")
	fs.DurationVar(&s.loginTTL, "login-ttl", 10*time.Minute, "how long a started sign-in may take")
	fs.DurationVar(&s.shutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGTERM or SIGINT, how long requests in flight may take to finish before they are cut")
	fs.IPNetSliceVar(&s.trustedProxies, "trusted-proxies", nil, "reverse proxies (CIDRs, comma-separated) whose X-Forwarded-For names the client, e.g. 127.0.0.1/32 for Caddy on this host; empty: forwarding headers are ignored")
	fs.IntVar(&s.signInRate, "signin-rate", coordinator.DefaultSignInRate, "sign-in requests one client address (IPv6: /64) may make a minute, and at once (a sign-in takes about six; raise it when many people share one NAT address); -1: no limit")
	fs.IntVar(&s.maxConnsPerClient, "max-conns-per-client", coordinator.DefaultMaxConnsPerClient, "connections and requests in flight one client address (IPv6: /64) may hold; -1: no cap")
	fs.StringVar(&s.stunListen, "stun-listen", ":3478", "answer STUN on this UDP address, so that members behind NAT learn their public address for direct paths (members ask the coordinator's host on port 3478); empty: off")
	fs.StringVar(&s.relayMesh, "relay-mesh-url", "", `where the other replicas reach this replica's relay, e.g. https://10.0.3.7:8443/derp, so that members relayed through different replicas reach each other; empty: with a postgres:// --database, this host's address at the --listen port, else none; "none": off`)
	fs.StringSliceVar(&s.relays, "relay", nil, "relays on other hosts (moat-coordinator relay), https://HOST[:PORT]/derp, that every member's netmap names before this coordinator's own relay, which stays the fallback; members use the first that answers (comma-separated or repeated, best first); default: none, members use the coordinator's own relay")
	fs.StringVar(&s.metricsListen, "metrics-listen", "", "also serve /metrics without a token on this address, e.g. 127.0.0.1:9090 for a local scraper; the main address's /metrics asks for an admin API token")
	s.sinks.register(fs)
	fs.StringVar(&s.auditRetention, "audit-retention", "", `how long audit records are kept when their grant sets no "audit": {"retention"}, e.g. "90d" or "2160h"; older ones are deleted hourly, each node's chain kept verifiable by sealed checkpoints; empty: kept for ever`)
	s.log.Flags(fs)
	cli.Settings(fs)
	return fs
}

// configSchema is every key a coordinator config file may hold: serve's
// and the relay command's (--relay-url), so that replicas and relay
// processes may share one file; a command skips the keys it lacks.
func configSchema() *pflag.FlagSet {
	s := new(serveSettings)
	fs := s.flagSet()
	fs.AddFlagSet(relayOwnFlags(s))
	return fs
}

// check refuses settings serve cannot use, naming where each came from.
func (s *serveSettings) check(cmd *cobra.Command) error {
	if err := cli.Required(cmd, "public-url", "data-dir"); err != nil {
		return err
	}
	if err := checkPublicURL(cmd, s.publicURL); err != nil {
		return err
	}
	if s.issuer != "" {
		if err := cli.Required(cmd, "oidc-client-id"); err != nil {
			return err
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"device-ttl", s.deviceTTL}, {"login-ttl", s.loginTTL}, {"shutdown-timeout", s.shutdownTimeout}} {
		if d.v <= 0 {
			return cli.Invalid(cmd, d.name, "must be longer than 0, not %s", d.v)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"idp-recheck", s.idpRecheck}, {"node-ttl", s.nodeTTL}} {
		if d.v < 0 {
			return cli.Invalid(cmd, d.name, "want 0 (off) or a duration, not %s", d.v)
		}
	}
	if s.nodeCredTTL < time.Minute {
		return cli.Invalid(cmd, "node-credential-ttl", "want a minute or more, not %s", s.nodeCredTTL)
	}
	if s.releaseKey != "" {
		if _, err := coordinator.ParseReleaseKey(s.releaseKey); err != nil {
			return cli.Invalid(cmd, "release-key", "%v", err)
		}
	}
	if s.signInRate == 0 || s.signInRate < -1 {
		return cli.Invalid(cmd, "signin-rate", "want a number above 0, or -1 for no limit, not %d", s.signInRate)
	}
	if s.maxConnsPerClient == 0 || s.maxConnsPerClient < -1 {
		return cli.Invalid(cmd, "max-conns-per-client", "want a number above 0, or -1 for no cap, not %d", s.maxConnsPerClient)
	}
	if err := s.checkTLS(cmd); err != nil {
		return err
	}
	for _, r := range s.relays {
		if err := coordinator.CheckRelayURL(r); err != nil {
			return cli.Invalid(cmd, "relay", "%v", err)
		}
	}
	if _, err := s.retention(); err != nil {
		return cli.Invalid(cmd, "audit-retention", "%v", err)
	}
	if err := checkRelayMeshURL(cmd, s.relayMesh); err != nil {
		return err
	}
	return s.sinks.check(cmd)
}

// checkTLS refuses TLS flags that do not go together (serve, relay).
func (s *serveSettings) checkTLS(cmd *cobra.Command) error {
	switch {
	case s.tlsMode != "" && s.tlsMode != "self-signed":
		return cli.Invalid(cmd, "tls", "%q: the only mode is self-signed", s.tlsMode)
	case s.tlsMode != "" && (s.tlsCert != "" || s.tlsKey != ""):
		return cli.Usagef("give either --tls self-signed or --tls-cert and --tls-key, not both")
	case (s.tlsCert == "") != (s.tlsKey == ""):
		return cli.Usagef("give both --tls-cert and --tls-key, or neither")
	}
	return nil
}

// retention is --audit-retention; 0 when empty.
func (s *serveSettings) retention() (time.Duration, error) {
	if s.auditRetention == "" {
		return 0, nil
	}
	d, err := policy.ParseDuration(s.auditRetention)
	return time.Duration(d), err
}

func checkPublicURL(cmd *cobra.Command, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return cli.Invalid(cmd, "public-url", "%q: want http(s)://HOST[:PORT]", v)
	}
	return nil
}

// config is the coordinator's configuration.
func (s *serveSettings) config(cmd *cobra.Command) coordinator.Config {
	retention, _ := s.retention() // refused by check when it does not parse
	return coordinator.Config{
		PublicURL: s.publicURL, Version: cli.BuildInfo().Version, DataDir: s.store.dataDir, Database: s.store.database, ErasureLog: s.store.erasureLog,
		DeviceTTL: s.deviceTTL, LoginTTL: s.loginTTL, ReleaseDir: s.releaseDir, ReleaseKey: s.releaseKey,
		Logger: s.log.Logger(cmd.ErrOrStderr()), Collectors: []prometheus.Collector{cli.BuildInfoCollector()},
		TrustedProxies: prefixes(s.trustedProxies), MaxConnsPerClient: s.maxConnsPerClient, SignInRate: s.signInRate,
		AuditSinks: s.sinks.sinks(), AuditRetention: retention, IdPRecheck: s.idpRecheck,
		NodeTTL: s.nodeTTL, NodeCredentialTTL: s.nodeCredTTL,
		TailnetLogins: s.tailnetLogins, TailnetTags: s.tailnetTags, Relays: s.relays,
		OIDC: coordinator.OIDCConfig{
			Issuer: s.issuer, ClientID: s.clientID, ClientSecret: s.clientSecret, Scopes: s.scopes,
			GroupsClaim: s.groupsClaim, EmailClaim: s.emailClaim,
			AdminGroups: s.adminGroups, AuditorGroups: s.auditorGroups,
			AllowedDomains: s.allowedDomains, AllowedGroups: s.allowedGroups,
			MFAMethods: s.mfaMethods, RequireVerifiedEmail: s.requireVerifiedEmail,
		},
	}
}

// prefixes turns the --trusted-proxies networks into prefixes.
func prefixes(nets []net.IPNet) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		a, _ := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if a.Is4In6() {
			a, ones = a.Unmap(), ones-96
		}
		out = append(out, netip.PrefixFrom(a, ones).Masked())
	}
	return out
}
