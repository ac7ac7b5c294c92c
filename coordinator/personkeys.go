package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moatmesh/moat/coordinator/seal"
	"github.com/moatmesh/moat/coordinator/store"
	"github.com/moatmesh/moat/mesh/promptkey"
)

// Per-person prompt keys: every person gets a key pair (mesh/promptkey)
// before their first device joins; nodes receive the public key in the
// netmap and encrypt the prompts they keep to it, and the private key is
// kept sealed under the seal key (additional data "person-key:<user
// id>"), so only the coordinator reads a kept prompt. Erasing a person
// (persondata.go) destroys the pair: what nodes kept of them stays in
// the records, whose hashes still verify, but no one can read it, and no
// new prompt of theirs is kept.

// personKeyAD is the additional data a person's private key is sealed
// with.
func personKeyAD(user string) []byte { return []byte("person-key:" + user) }

// ensurePromptKey makes user's key pair unless they have one or it was
// erased.
func ensurePromptKey(ctx context.Context, st *store.DB, box *seal.Box, user string, now time.Time) error {
	_, err := st.PersonKey(ctx, user)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	pub, priv, err := promptkey.NewKey()
	if err != nil {
		return err
	}
	_, err = st.AddPersonKey(ctx, &store.PersonKey{UserID: user, Public: pub, Private: box.Seal(priv, personKeyAD(user)), Created: now})
	return err
}

// ensurePromptKeys gives every person who is not disabled a key pair
// (people from before keys, or provisioned by SCIM), and asks for new
// netmaps when it made one.
func (s *Server) ensurePromptKeys(ctx context.Context) error {
	users, err := s.store.Users(ctx)
	if err != nil {
		return err
	}
	keys, err := s.store.PersonKeys(ctx)
	if err != nil {
		return err
	}
	has := map[string]bool{}
	for _, k := range keys {
		has[k.UserID] = true
	}
	made := 0
	for _, u := range users {
		if u.Disabled || has[u.ID] {
			continue
		}
		if err := ensurePromptKey(ctx, s.store, s.box, u.ID, s.cfg.Now()); err != nil {
			return fmt.Errorf("prompt key of %s: %w", u.ID, err)
		}
		made++
	}
	if made > 0 {
		s.changed()
	}
	return nil
}

// openPrompt decrypts a prompt sealed to user with their key k; the
// error wraps errPromptErased when the key was erased.
func openPrompt(box *seal.Box, k *store.PersonKey, user, sealed string) ([]byte, error) {
	if k == nil || !k.Erased.IsZero() || len(k.Private) == 0 {
		return nil, errPromptErased
	}
	priv, err := box.Open(k.Private, personKeyAD(user))
	if err != nil {
		return nil, fmt.Errorf("prompt key of %s: %w", user, err)
	}
	return promptkey.Open(priv, user, sealed)
}

// errPromptErased says a prompt's key was erased: it is unreadable.
var errPromptErased = errors.New("the person's prompt key was erased")
