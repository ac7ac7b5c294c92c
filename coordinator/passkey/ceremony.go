package passkey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/moatmesh/moat/coordinator/store"
)

// BeginRegistration starts registering a new passkey of p, for purpose
// (which FinishRegistration must be given again). The person's existing
// passkeys are excluded, so one authenticator is registered once.
func (rp *RP) BeginRegistration(ctx context.Context, p *Person, purpose string) (Ceremony, error) {
	if _, err := rp.load(ctx, p); err != nil {
		return Ceremony{}, err
	}
	creation, session, err := rp.w.BeginRegistration(p,
		webauthn.WithExclusions(webauthn.Credentials(p.creds).CredentialDescriptors()))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return rp.save(ctx, p, purpose, session, creation.Response)
}

// FinishRegistration checks the browser's answer (the JSON of the new
// PublicKeyCredential) to ceremony id and stores the passkey under name.
// It returns the stored passkey and its method.
func (rp *RP) FinishRegistration(ctx context.Context, p *Person, purpose, id, answer, name string) (*store.Passkey, string, error) {
	k, m, err := rp.VerifyRegistration(ctx, p, purpose, id, answer, name)
	if err != nil {
		return nil, "", err
	}
	return k, m, rp.Save(ctx, k)
}

// Save stores a passkey VerifyRegistration returned; a credential already
// registered is ErrRefused.
func (rp *RP) Save(ctx context.Context, k *store.Passkey) error {
	err := rp.st.CreatePasskey(ctx, k)
	if errors.Is(err, store.ErrConflict) {
		return ErrRefused
	}
	return err
}

// VerifyRegistration is FinishRegistration without storing the passkey,
// for callers that store it with other changes (Save).
func (rp *RP) VerifyRegistration(ctx context.Context, p *Person, purpose, id, answer, name string) (*store.Passkey, string, error) {
	session, err := rp.take(ctx, p, purpose, id)
	if err != nil {
		return nil, "", err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(answer))
	if err != nil {
		return nil, "", ErrRefused
	}
	if !parsed.Response.AttestationObject.AuthData.Flags.HasUserVerified() {
		return nil, "", ErrUnverified
	}
	if _, err := rp.load(ctx, p); err != nil {
		return nil, "", err
	}
	cred, err := rp.w.CreateCredential(p, session, parsed)
	if err != nil {
		return nil, "", ErrRefused
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return nil, "", err
	}
	if name = CleanName(name); name == "" {
		name = Kind(method(cred))
	}
	k := &store.Passkey{ID: cred.ID, UserID: p.ID, Name: name, Data: data, SignCount: cred.Authenticator.SignCount, Created: rp.now()}
	return k, method(cred), nil
}

// BeginLogin starts a sign-in of p with one of their passkeys, for
// purpose; a person without one is ErrNoPasskeys.
func (rp *RP) BeginLogin(ctx context.Context, p *Person, purpose string) (Ceremony, error) {
	if _, err := rp.load(ctx, p); err != nil {
		return Ceremony{}, err
	}
	if len(p.creds) == 0 {
		return Ceremony{}, ErrNoPasskeys
	}
	assertion, session, err := rp.w.BeginLogin(p, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return Ceremony{}, fmt.Errorf("begin passkey sign-in: %w", err)
	}
	return rp.save(ctx, p, purpose, session, assertion.Response)
}

// FinishLogin checks the browser's answer (the JSON of the
// PublicKeyCredential assertion) to ceremony id and records the use. It
// returns the method proved ("hwk" or "swk").
func (rp *RP) FinishLogin(ctx context.Context, p *Person, purpose, id, answer string) (string, error) {
	session, err := rp.take(ctx, p, purpose, id)
	if err != nil {
		return "", err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(answer))
	if err != nil {
		return "", ErrRefused
	}
	keys, err := rp.load(ctx, p)
	if err != nil {
		return "", err
	}
	cred, err := rp.w.ValidateLogin(p, session, parsed)
	if err != nil {
		if !parsed.Response.AuthenticatorData.Flags.HasUserVerified() {
			return "", ErrUnverified
		}
		return "", ErrRefused
	}
	if cred.Authenticator.CloneWarning {
		return "", ErrCloned
	}
	k := keys[string(cred.ID)]
	if k == nil {
		return "", ErrRefused
	}
	data, err := json.Marshal(cred)
	if err != nil {
		return "", err
	}
	err = rp.st.UsePasskey(ctx, p.ID, cred.ID, k.SignCount, &store.Passkey{Data: data, SignCount: cred.Authenticator.SignCount, LastUsed: rp.now()})
	switch {
	case errors.Is(err, store.ErrConflict):
		return "", ErrCloned // another sign-in used this counter value
	case errors.Is(err, store.ErrNotFound):
		return "", ErrRefused // removed meanwhile
	case err != nil:
		return "", err
	}
	return method(cred), nil
}
