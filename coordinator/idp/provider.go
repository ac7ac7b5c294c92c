package idp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
)

// Provider is the embedded OpenID Provider. Create it with New, serve
// Handler, and Close it when the coordinator stops.
type Provider struct {
	cfg     Config
	prefix  string // the issuer's path, e.g. "/idp"
	secure  bool   // https issuer: Secure cookies
	users   Users
	state   *state
	log     *slog.Logger
	keys    *keyring
	clients map[string]*opClient
	op      *op.Provider
	pages   *pages
	handler http.Handler
	csrfKey [32]byte      // MACs form tokens; from Config.Secret, the same on every replica
	hashSem chan struct{} // bounds concurrent argon2id work (64 MiB each)
	// hashWaiting counts checks waiting for a slot; at most cap(hashSem).
	hashWaiting atomic.Int32
	// passkeys is the WebAuthn relying party of the issuer's host; nil
	// when that is an IP address (passkeys.go).
	passkeys *passkey.RP
	pkStore  Passkeys
}

// Store is what the provider needs from the coordinator's store: its
// users and its protocol state.
type Store interface {
	Users
	State
	Passkeys
}

// Passkeys is where people's passkeys and the ceremonies in progress live
// (store.DB), shared by every replica.
type Passkeys interface {
	passkey.Store
	DeletePasskeys(ctx context.Context, userID string) error
}

// New makes a Provider. st must also be a KeyStore: the signing keys
// live there (EnsureSigningKey runs first).
func New(ctx context.Context, cfg Config, st Store) (*Provider, error) {
	u, err := cfg.validate()
	if err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	if st == nil {
		return nil, fmt.Errorf("idp: no user store")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		cfg.Name = "moat"
	}
	p := &Provider{
		cfg:     cfg,
		prefix:  u.Path,
		secure:  u.Scheme == "https",
		users:   st,
		state:   &state{st: st},
		log:     cfg.Logger,
		clients: map[string]*opClient{},
		hashSem: make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	secret := cfg.Secret
	if secret == nil {
		secret = make([]byte, 32)
		rand.Read(secret)
	}
	p.csrfKey = deriveKey(secret, "form protection")
	ks, ok := st.(KeyStore)
	if !ok {
		return nil, fmt.Errorf("idp: the user store keeps no signing keys (KeyStore)")
	}
	if err := EnsureSigningKey(ctx, ks, cfg.Box, cfg.DataDir, cfg.Now()); err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	p.keys = &keyring{ks: ks, box: cfg.Box, now: cfg.Now}
	for _, c := range cfg.Clients {
		p.clients[c.ID] = newOpClient(c, cfg.Issuer+"/login")
	}
	if p.op, err = p.newOP(deriveKey(secret, "access tokens")); err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	if p.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	p.pkStore = st
	if p.passkeys, err = passkey.New(cfg.Issuer, cfg.Name, st, cfg.Now); err != nil {
		p.log.Warn("idp: passkeys are off", "err", err)
	}
	p.handler = p.routes()
	return p, nil
}

// deriveKey is the 32-byte key for purpose derived from secret.
func deriveKey(secret []byte, purpose string) [32]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("moat idp\x00" + purpose))
	return [32]byte(m.Sum(nil))
}

// newOP makes op's provider; cryptoKey encrypts the opaque access tokens
// (an id in the store and the subject), so every replica must share it.
func (p *Provider) newOP(cryptoKey [32]byte) (*op.Provider, error) {
	conf := &op.Config{
		CryptoKey:                cryptoKey,
		CryptoKeyId:              "shared",
		DefaultLogoutRedirectURI: p.prefix + "/signed-out",
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), ClaimGroups, ClaimAdmin),
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, ClaimGroups, oidc.ScopeOfflineAccess},
	}
	opts := []op.Option{op.WithCORSOptions(nil)} // no cross-origin browser access
	if p.cfg.Insecure {
		opts = append(opts, op.WithAllowInsecure())
	}
	return op.NewProvider(conf, opStorage{p}, op.StaticIssuer(p.cfg.Issuer), opts...)
}

// Handler serves the provider: every path under the issuer's path
// (PathPrefix), unstripped. Mount it with mux.Handle("/idp/", h).
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer is the issuer URL the provider signs tokens with.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Close releases the Provider, which must not be used afterwards. Sign-ins
// in progress, codes and access tokens stay in the store for the other
// replicas (and this one after a restart). It starts no goroutines.
func (p *Provider) Close() error { return nil }

func (p *Provider) now() time.Time { return p.cfg.Now() }

// hashing runs f while holding one of the argon2id slots. When every
// slot is taken and hashQueue others already wait, or no slot frees up
// within hashWait, it refuses at once with errHashBusy (503): a flood of
// password forms must not make everyone's sign-in wait seconds.
func (p *Provider) hashing(ctx context.Context, f func()) error {
	select {
	case p.hashSem <- struct{}{}:
	default:
		if p.hashWaiting.Add(1) > int32(cap(p.hashSem)) {
			p.hashWaiting.Add(-1)
			p.log.Warn("idp: password hashing queue full; refused")
			return errHashBusy
		}
		t := time.NewTimer(hashWait)
		defer t.Stop()
		select {
		case p.hashSem <- struct{}{}:
			p.hashWaiting.Add(-1)
		case <-t.C:
			p.hashWaiting.Add(-1)
			return errHashBusy
		case <-ctx.Done():
			p.hashWaiting.Add(-1)
			return errInternal
		}
	}
	defer func() { <-p.hashSem }()
	f()
	return nil
}

// hashWait is the longest a password check waits for a hashing slot.
const hashWait = 2 * time.Second

// setUserinfo fills info with user id's claims for scopes: email and
// email_verified (email), name (profile), and always groups and, for
// admins, moat_admin.
func (p *Provider) setUserinfo(ctx context.Context, info *oidc.UserInfo, id string, scopes []string) error {
	u, err := p.users.IdPUser(ctx, id)
	if err != nil {
		return fmt.Errorf("userinfo: %w", err)
	}
	info.Subject = u.ID
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email, info.EmailVerified = u.Email, true
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name, info.PreferredUsername = u.Name, u.Email
	}
	info.AppendClaims(ClaimGroups, groupsOf(u))
	if u.Admin {
		info.AppendClaims(ClaimAdmin, true)
	}
	return nil
}

func groupsOf(u *store.IdPUser) []string {
	if u.Groups == nil {
		return []string{}
	}
	return slices.Clone(u.Groups)
}

// randomID is 256 random bits, base64url: ids of sign-ins, tokens, users.
func randomID() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
