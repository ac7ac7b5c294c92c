package coordinator

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/moatmesh/moat/coordinator/scim"
	"github.com/moatmesh/moat/coordinator/store"
)

// SCIM provisioning (package scim) acts on moat's people here. A SCIM
// user is the moat user (of any issuer) whose email is the SCIM user's
// userName or primary email, compared in lower case. For a provisioned
// person SCIM is the source of truth for two things:
//   - whether they may use moat: deactivated or deleted, they are
//     disabled at once (devices out of the mesh, streams ended, UI
//     sessions deleted) and refused at sign-in; reactivated, they are
//     enabled again (only when SCIM itself turned active from false to
//     true, so an admin's own disable stays);
//   - their IdP groups: the displayNames of their SCIM groups, which the
//     policy names idp:<displayName>, replacing the token's groups claim.

// scimActor is who SCIM changes are recorded as in the admin trail.
const scimActor = "scim"

// scimRoutes mounts the SCIM endpoints at /scim/v2.
func (s *Server) scimRoutes(r *gin.Engine) error {
	h, err := scim.New(scim.Config{Store: s.store, Changed: s.scimChanged, Now: s.cfg.Now, Log: s.log})
	if err != nil {
		return fmt.Errorf("SCIM: %w", err)
	}
	r.Any(scim.Prefix+"/*path", gin.WrapH(h))
	return nil
}

// scimChanged applies a SCIM change to the people it concerns and asks
// for new netmaps.
func (s *Server) scimChanged(ctx context.Context, c scim.Change) error {
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	done := map[string]bool{}
	for _, id := range c.Users {
		if done[id] {
			continue
		}
		done[id] = true
		su, err := s.store.SCIMUser(ctx, id)
		if err != nil {
			return err
		}
		reactivated := slices.Contains(c.Reactivated, id)
		s.recordAs(ctx, scimActor, actionSCIMUser, su.ID, fmt.Sprintf("%s active=%t deleted=%t", su.UserName, su.Active, su.Deleted))
		for _, u := range users {
			if scimMatches(su, u.Email) {
				if err := s.applySCIM(ctx, su, u, reactivated); err != nil {
					return err
				}
			}
		}
	}
	s.changed()
	return nil
}

func scimMatches(su *store.SCIMUser, email string) bool {
	email = strings.ToLower(email)
	return email != "" && (email == su.UserName || email == su.Email)
}

// applySCIM brings moat user u in line with SCIM user su.
func (s *Server) applySCIM(ctx context.Context, su *store.SCIMUser, u *store.User, reactivated bool) error {
	live := su.Active && !su.Deleted
	if !live && !u.Disabled {
		if err := s.disableNow(ctx, scimActor, u); err != nil {
			return err
		}
	}
	if live && reactivated && u.Disabled {
		if _, err := s.setUserDisabledAs(ctx, scimActor, u.ID, false); err != nil {
			return err
		}
		u.Disabled = false
	}
	groups, err := s.store.SCIMGroupNames(ctx, su.ID)
	if err != nil {
		return err
	}
	if slices.Equal(groups, u.Groups) {
		return nil
	}
	return s.setGroups(ctx, scimActor, u.ID, groups)
}

// setGroups makes groups user id's IdP groups, recorded as actor's.
func (s *Server) setGroups(ctx context.Context, actor, id string, groups []string) error {
	fresh, err := s.store.User(ctx, id)
	if err != nil {
		return err
	}
	fresh.Groups = groups
	if err := s.store.UpdateUser(ctx, fresh); err != nil {
		return fmt.Errorf("update groups of %s: %w", id, err)
	}
	s.recordAs(ctx, actor, "user.groups", id, strings.Join(groups, ","))
	return nil
}

// disableNow disables u (recorded as actor's) and takes every device of
// theirs out of the mesh at once, ahead of the recompute.
func (s *Server) disableNow(ctx context.Context, actor string, u *store.User) error {
	if _, err := s.setUserDisabledAs(ctx, actor, u.ID, true); err != nil {
		return err
	}
	u.Disabled = true
	devices, err := s.store.Devices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if d.UserID == u.ID {
			s.netmaps.Drop(d.ID)
		}
	}
	return nil
}

// scimSignIn applies SCIM to a sign-in: a person SCIM deactivated or
// deleted is refused (the message says why); a provisioned person's
// groups become their SCIM groups. People SCIM never provisioned pass
// unchanged.
func (s *Server) scimSignIn(ctx context.Context, cl *claims) (refusal string, err error) {
	sus, err := s.store.SCIMUsersByEmail(ctx, cl.Email)
	if err != nil || len(sus) == 0 {
		return "", err
	}
	for _, su := range sus {
		if su.Active && !su.Deleted {
			cl.Groups, err = s.store.SCIMGroupNames(ctx, su.ID)
			return "", err
		}
	}
	return cl.Email + " was deactivated or removed by your identity provider's provisioning; ask an admin.", nil
}
