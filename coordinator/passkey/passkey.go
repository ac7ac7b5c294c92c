// Package passkey runs the WebAuthn ceremonies (register a passkey, sign
// in with one) for the embedded identity provider and the coordinator's
// own step-up, over go-webauthn.
//
// Every ceremony requires user verification (a PIN or biometric on the
// authenticator), so one passkey use is two factors and phishing-resistant:
// the browser signs only for the relying party ID, the public URL's host.
// A ceremony's challenge is kept in the store (shared by every replica),
// works once and expires after TTL. A sign-in refuses an authenticator
// whose signature counter did not move forward (a clone), and of two
// sign-ins that read one counter value only one is accepted.
//
// The method a sign-in proves is named as in RFC 8176: "hwk" for a
// device-bound key (a security key, or a platform key that cannot be
// synced: the backup-eligible flag is clear), "swk" for a synced passkey.
package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/moatmesh/moat/coordinator/store"
)

// TTL is how long a started ceremony may be finished.
const TTL = 5 * time.Minute

// maxCeremonies caps the ceremonies in progress at once.
const maxCeremonies = 10_000

// RFC 8176 methods a passkey sign-in proves.
const (
	MethodHardware = "hwk" // device-bound key
	MethodSoftware = "swk" // synced passkey
)

// Errors of the ceremonies. Their text is meant for the person.
var (
	ErrExpired    = errors.New("this passkey request expired or was already used; reload the page and try again")
	ErrRefused    = errors.New("the passkey was not accepted; use a passkey registered for this account")
	ErrCloned     = errors.New("this passkey's authenticator looks cloned (its signature counter went back); it was refused; ask an admin")
	ErrNoPasskeys = errors.New("no passkey is registered for this account")
	ErrUnverified = errors.New("the authenticator did not verify you (PIN or biometric); use one that does")
)

// Store keeps passkeys and ceremonies (store.DB satisfies it).
type Store interface {
	CreatePasskey(ctx context.Context, p *store.Passkey) error
	Passkeys(ctx context.Context, userID string) ([]*store.Passkey, error)
	UsePasskey(ctx context.Context, userID string, id []byte, from uint32, p *store.Passkey) error
	CreatePasskeyChallenge(ctx context.Context, c *store.PasskeyChallenge, now time.Time, max int) error
	TakePasskeyChallenge(ctx context.Context, hash []byte, now time.Time) (*store.PasskeyChallenge, error)
}

// RP is the relying party: one public URL, one store.
type RP struct {
	w   *webauthn.WebAuthn
	st  Store
	now func() time.Time
}

// New returns the relying party for publicURL, whose host is the RP ID
// and whose scheme://host[:port] the only accepted origin. WebAuthn does
// not work on an IP address: the host must be a name (localhost counts).
// name is shown by authenticators; now is the clock (nil: time.Now).
func New(publicURL, name string, st Store, now func() time.Time) (*RP, error) {
	u, err := url.Parse(publicURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkey: public URL %q is not an absolute URL", publicURL)
	}
	if net.ParseIP(u.Hostname()) != nil {
		return nil, fmt.Errorf("passkey: public URL %q names an IP address; passkeys need a host name", publicURL)
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID: u.Hostname(), RPDisplayName: name, RPOrigins: []string{u.Scheme + "://" + u.Host},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	return &RP{w: w, st: st, now: now}, nil
}

// Person is who registers or signs in. ID is their stable user id, which
// becomes the WebAuthn user handle; Name is their email.
type Person struct {
	ID, Name, DisplayName string
	creds                 []webauthn.Credential
}

func (p *Person) WebAuthnID() []byte                         { return []byte(p.ID) }
func (p *Person) WebAuthnName() string                       { return p.Name }
func (p *Person) WebAuthnDisplayName() string                { return p.DisplayName }
func (p *Person) WebAuthnCredentials() []webauthn.Credential { return p.creds }

// Ceremony is a started ceremony, for a page: ID goes back with the
// answer; Options is the JSON for the browser's
// PublicKeyCredential.parseCreationOptionsFromJSON (registration) or
// parseRequestOptionsFromJSON (sign-in).
type Ceremony struct {
	ID      string
	Options string
}

// load reads the person's passkeys into p and returns them by credential id.
func (rp *RP) load(ctx context.Context, p *Person) (map[string]*store.Passkey, error) {
	keys, err := rp.st.Passkeys(ctx, p.ID)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Passkey, len(keys))
	p.creds = p.creds[:0]
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal(k.Data, &c); err != nil {
			return nil, fmt.Errorf("passkey %x of %s: %w", k.ID, p.ID, err)
		}
		p.creds = append(p.creds, c)
		byID[string(k.ID)] = k
	}
	return byID, nil
}

// Has reports whether person id has a passkey.
func (rp *RP) Has(ctx context.Context, id string) (bool, error) {
	keys, err := rp.st.Passkeys(ctx, id)
	return len(keys) > 0, err
}

// save stores a started ceremony for purpose and returns it for the page.
func (rp *RP) save(ctx context.Context, p *Person, purpose string, session *webauthn.SessionData, options any) (Ceremony, error) {
	data, err := json.Marshal(session)
	if err != nil {
		return Ceremony{}, err
	}
	opts, err := json.Marshal(options)
	if err != nil {
		return Ceremony{}, err
	}
	var b [32]byte
	rand.Read(b[:])
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := rp.now()
	err = rp.st.CreatePasskeyChallenge(ctx, &store.PasskeyChallenge{Hash: hashID(id), UserID: p.ID, Purpose: purpose, Data: data, Expires: now.Add(TTL)}, now, maxCeremonies)
	if err != nil {
		return Ceremony{}, fmt.Errorf("start passkey ceremony: %w", err)
	}
	return Ceremony{ID: id, Options: string(opts)}, nil
}

// take spends the ceremony id started for p and purpose.
func (rp *RP) take(ctx context.Context, p *Person, purpose, id string) (webauthn.SessionData, error) {
	var session webauthn.SessionData
	c, err := rp.st.TakePasskeyChallenge(ctx, hashID(id), rp.now())
	if errors.Is(err, store.ErrNotFound) {
		return session, ErrExpired
	}
	if err != nil {
		return session, err
	}
	if c.UserID != p.ID || c.Purpose != purpose {
		return session, ErrExpired
	}
	return session, json.Unmarshal(c.Data, &session)
}

func hashID(id string) []byte {
	h := sha256.Sum256([]byte("passkey-ceremony\x00" + id))
	return h[:]
}

// method is the RFC 8176 method of a credential.
func method(c *webauthn.Credential) string {
	if c.Flags.BackupEligible {
		return MethodSoftware
	}
	return MethodHardware
}

// Method is the RFC 8176 method of a stored passkey ("hwk" or "swk"), for
// listing a person's factors.
func Method(k *store.Passkey) string {
	var c webauthn.Credential
	if json.Unmarshal(k.Data, &c) != nil {
		return ""
	}
	return method(&c)
}

// Kind describes a method for people: "security key (device-bound)" or
// "synced passkey".
func Kind(method string) string {
	switch method {
	case MethodHardware:
		return "device-bound passkey or security key"
	case MethodSoftware:
		return "synced passkey"
	}
	return "passkey"
}

// CleanName bounds a passkey's name to one line of at most 64 characters.
func CleanName(name string) string {
	name = strings.Join(strings.Fields(name), " ")
	if r := []rune(name); len(r) > 64 {
		name = string(r[:64])
	}
	return name
}
