package idp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
)

// PathPrefix is where the coordinator mounts the provider: the issuer is
// the coordinator's public URL followed by PathPrefix.
const PathPrefix = "/idp"

// Claim names beyond the standard ones.
const (
	ClaimGroups = "groups"     // []string: the user's groups
	ClaimAdmin  = "moat_admin" // bool: present and true for admins
)

// ACR is the acr value of every ID token: password and TOTP, both
// verified by this provider.
const ACR = "urn:moat:idp:pwd+totp"

// Users is what the provider needs from the coordinator's store; it is a
// subset of store.Store. Lookups that find nothing return an error
// wrapping store.ErrNotFound. Emails are stored lowercase.
type Users interface {
	CreateIdPUser(ctx context.Context, u *store.IdPUser) error
	IdPUser(ctx context.Context, id string) (*store.IdPUser, error)
	IdPUserByEmail(ctx context.Context, email string) (*store.IdPUser, error)
	IdPUserBySetupHash(ctx context.Context, hash []byte) (*store.IdPUser, error)
	UpdateIdPUser(ctx context.Context, u *store.IdPUser) error
	ClaimIdPTOTPStep(ctx context.Context, id string, step int64) error
	CompleteIdPSetup(ctx context.Context, id string, setupHash []byte, now time.Time, passwordHash string, totpSecret []byte, step int64) error

	// The sign-in backoff (store.DB's SignInAttempt and so on).
	SignInAttempt(ctx context.Context, key string, now time.Time, wait func(failures int) time.Duration) (bool, time.Time, error)
	ClearSignInFailures(ctx context.Context, key string) error
}

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's issuer URL, the coordinator's public URL
	// followed by PathPrefix, e.g. "https://moat.example.com/idp".
	// Required; https unless Insecure.
	Issuer string

	// Clients are the relying parties allowed to sign people in; at least
	// one. The coordinator itself is normally the only one.
	Clients []Client

	// DataDir is the coordinator's data directory, where earlier
	// versions kept the token signing key ("idp-signing-key.pem"); it is
	// imported into the store on first start. Required.
	DataDir string

	// Secret is a random secret of at least 32 bytes that every replica
	// shares; the form-protection (CSRF) key and the key that encrypts
	// access tokens are derived from it, so that each step of a sign-in
	// may land on any replica. The coordinator keeps it sealed in its
	// store. Nil makes a random one for this process only (one replica).
	Secret []byte

	// Box seals TOTP secrets and signing keys at rest. Required.
	Box *seal.Box

	// Logger receives sign-in events; never passwords, codes, tokens or
	// secrets. Nil discards them.
	Logger *slog.Logger

	// Now is the clock for lockouts, TOTP steps, setup links and sign-in
	// expiry. Nil means time.Now.
	Now func() time.Time

	// Insecure allows an http:// issuer on a loopback host (127.0.0.1,
	// ::1, localhost), for development and tests only. Cookies then lack
	// the Secure flag. False requires https.
	Insecure bool

	// Name is the service name shown on the pages and in authenticator
	// apps. Empty means "moat".
	Name string

	// ClientKey names the client of a request for the per-address
	// sign-in backoff (see backoff.go): the coordinator passes its
	// client address behind trusted proxies, IPv6 by /64. Nil means the
	// host of RemoteAddr.
	ClientKey func(*http.Request) string
}

// Client is a relying party registered with the provider.
type Client struct {
	// ID is the client_id. Required, unique.
	ID string
	// Secret is the client_secret of a confidential client. Empty makes a
	// public client, which cannot authenticate at the token endpoint and
	// relies on PKCE alone.
	Secret string
	// RedirectURIs are the exact redirect_uri values allowed; at least one.
	RedirectURIs []string
	// PostLogoutRedirectURIs are the exact post_logout_redirect_uri values
	// allowed at end_session. Empty allows none (the provider's own
	// signed-out page is shown).
	PostLogoutRedirectURIs []string
}

func (c *Config) validate() (*url.URL, error) {
	u, err := url.Parse(c.Issuer)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer %q is not an absolute URL without query or fragment", c.Issuer)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && c.Insecure && isLoopback(u.Hostname()):
	default:
		return nil, fmt.Errorf("issuer %q must use https (http is allowed only on a loopback host with Insecure)", c.Issuer)
	}
	if strings.HasSuffix(u.Path, "/") {
		return nil, fmt.Errorf("issuer %q must not end with a slash", c.Issuer)
	}
	if c.DataDir == "" {
		return nil, errors.New("a data directory (DataDir) is required")
	}
	if c.Secret != nil && len(c.Secret) < 32 {
		return nil, errors.New("the shared secret (Secret) must be at least 32 bytes")
	}
	if c.Box == nil {
		return nil, errors.New("a sealing box (Box) is required")
	}
	return u, validateClients(c.Clients)
}

func validateClients(clients []Client) error {
	if len(clients) == 0 {
		return errors.New("at least one client is required")
	}
	seen := map[string]bool{}
	for _, cl := range clients {
		if cl.ID == "" || seen[cl.ID] {
			return fmt.Errorf("client id %q is empty or not unique", cl.ID)
		}
		seen[cl.ID] = true
		if len(cl.RedirectURIs) == 0 {
			return fmt.Errorf("client %q has no redirect URIs", cl.ID)
		}
		for _, r := range cl.RedirectURIs {
			if u, err := url.Parse(r); err != nil || !u.IsAbs() || u.Fragment != "" {
				return fmt.Errorf("client %q: redirect URI %q must be absolute, without fragment", cl.ID, r)
			}
		}
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
