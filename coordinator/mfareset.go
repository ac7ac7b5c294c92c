package coordinator

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/moatmesh/moat/coordinator/store"
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
