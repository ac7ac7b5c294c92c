package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmesh/moat/coordinator/passkey"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/ui"
)

// ResetMFA is an admin's recovery for a person who lost their second
// factor: it removes the coordinator's own factors of the person with
// email (authenticator app and step-up passkeys), so that their next
// sign-in asks them to enroll anew, and records it in the admin trail.
// local reports that the person is also a user of the embedded IdP,
// whose own password, app and passkeys a new setup link (users add)
// replaces.
func ResetMFA(ctx context.Context, st *store.DB, email string) (local bool, err error) {
	email = strings.ToLower(strings.TrimSpace(email))
	_, ierr := st.IdPUserByEmail(ctx, email)
	local = ierr == nil
	users, err := st.Users(ctx)
	if err != nil {
		return local, err
	}
	for _, u := range users {
		if u.Email != email {
			continue
		}
		if err := st.ResetMFA(ctx, u.ID); err != nil {
			return local, err
		}
		return local, RecordCLIAction(ctx, st, actionMFAReset, email, "")
	}
	if local {
		return local, nil // never signed in: nothing of the coordinator's own to reset
	}
	return false, fmt.Errorf("reset MFA: %w: nobody with the email %s has signed in", errNoSuchPerson, email)
}

var errNoSuchPerson = errors.New("unknown person")

// Factors lists person userID's second factors for the person page: the
// coordinator's own (authenticator app, step-up passkeys) and, for a
// person of the embedded IdP, the IdP's (app, passkeys).
func (b uiBackend) Factors(ctx context.Context, userID string) ([]ui.Factor, error) {
	u, err := b.s.store.User(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("user %s: %w", userID, ui.ErrNotFound)
	}
	if err != nil {
		return nil, b.fail("load user", err)
	}
	out, err := b.passkeyFactors(ctx, u.ID, u.TOTPSecret != nil, ui.FactorCoordinator)
	if err != nil {
		return nil, err
	}
	if owner := b.s.passkeyOwner(u); owner.ID != u.ID {
		iu, err := b.s.store.IdPUser(ctx, owner.ID)
		if errors.Is(err, store.ErrNotFound) {
			return out, nil // gone from the embedded IdP
		}
		if err != nil {
			return nil, b.fail("load the embedded IdP's user", err)
		}
		idp, err := b.passkeyFactors(ctx, iu.ID, iu.TOTPSecret != nil, ui.FactorEmbeddedIdP)
		if err != nil {
			return nil, err
		}
		out = append(out, idp...)
	}
	return out, nil
}

// passkeyFactors lists the authenticator app (when app) and the passkeys
// that owner keeps where.
func (b uiBackend) passkeyFactors(ctx context.Context, owner string, app bool, where string) ([]ui.Factor, error) {
	var out []ui.Factor
	if app {
		out = append(out, ui.Factor{Kind: "authenticator app", Method: "otp", Where: where})
	}
	ks, err := b.s.store.Passkeys(ctx, owner)
	if err != nil {
		return nil, b.fail("list passkeys", err)
	}
	for _, k := range ks {
		out = append(out, ui.Factor{Kind: "passkey", Method: passkey.Method(k), Name: k.Name, Where: where,
			Created: k.Created, LastUsed: k.LastUsed})
	}
	return out, nil
}

// ResetMFA resets the coordinator's own factors of person userID on
// behalf of actor, as `users reset-mfa` does, and records it.
func (b uiBackend) ResetMFA(ctx context.Context, actor *ui.Viewer, userID string) error {
	u, err := b.s.store.User(ctx, userID)
	if err == nil {
		err = b.s.store.ResetMFA(ctx, u.ID)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %s: %w", userID, ui.ErrNotFound)
	}
	if err != nil {
		return b.fail("reset second factors", err)
	}
	b.s.recordAs(ctx, actor.ID, actionMFAReset, u.Email, "from the web UI")
	return nil
}
