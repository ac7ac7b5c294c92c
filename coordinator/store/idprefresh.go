package store

import (
	"context"
	"time"
)

// IdPRefreshToken is a refresh token of the embedded IdP. Like its access
// tokens, it is kept by the SHA-256 of the token.
type IdPRefreshToken struct {
	Hash     []byte // SHA-256 of the token
	Subject  string // the embedded IdP user's id
	ClientID string
	Scopes   []string
	AMR      []string  // of the sign-in the token continues
	AuthTime time.Time // of that sign-in
	Expires  time.Time
}

// CreateIdPRefreshToken stores a refresh token unless max are already
// live at now (ErrExhausted).
func (s *DB) CreateIdPRefreshToken(ctx context.Context, t *IdPRefreshToken, now time.Time, max int) error {
	scopes, err := jsonArg(t.Scopes)
	if err != nil {
		return s.fail("create IdP refresh token", err)
	}
	amr, err := jsonArg(t.AMR)
	if err != nil {
		return s.fail("create IdP refresh token", err)
	}
	err = s.inTx(ctx, func(c conn) error {
		if err := underCap(ctx, c, "idp_refresh_tokens", now, max); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO idp_refresh_tokens (hash, subject, client_id, scopes, amr, auth_time, expires)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.Hash, t.Subject, t.ClientID, scopes, amr, s.d.timeArg(t.AuthTime), s.d.timeArg(t.Expires))
		return err
	})
	return s.fail("create IdP refresh token", err)
}

// IdPRefreshToken returns the refresh token with hash when it is live at
// now.
func (s *DB) IdPRefreshToken(ctx context.Context, hash []byte, now time.Time) (*IdPRefreshToken, error) {
	t, err := getOne(ctx, s.rd(), func(r scanner) (*IdPRefreshToken, error) {
		t := &IdPRefreshToken{Hash: hash}
		return t, r.Scan(&t.Subject, &t.ClientID, jsonCol[string]{&t.Scopes}, jsonCol[string]{&t.AMR},
			timeCol{&t.AuthTime}, timeCol{&t.Expires})
	}, "SELECT subject, client_id, scopes, amr, auth_time, expires FROM idp_refresh_tokens WHERE hash = ? AND expires > ?",
		hash, s.d.timeArg(now))
	return t, s.fail("IdP refresh token", err)
}

// TakeIdPRefreshToken spends the refresh token with hash (it is
// rotated): of two replicas spending one at once, one succeeds and the
// other gets ErrNotFound, as does a token not live at now.
func (s *DB) TakeIdPRefreshToken(ctx context.Context, hash []byte, now time.Time) error {
	err := s.wr().execOne(ctx, "DELETE FROM idp_refresh_tokens WHERE hash = ? AND expires > ?", hash, s.d.timeArg(now))
	return s.fail("take IdP refresh token", err)
}

// DeleteIdPUser deletes the embedded IdP's user id and every refresh
// token issued to them and their passkeys: they can no longer sign in,
// and a relying party refreshing their sign-in is refused.
func (s *DB) DeleteIdPUser(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(c conn) error {
		for _, table := range []string{"idp_refresh_tokens WHERE subject", "passkeys WHERE user_id"} {
			if _, err := c.exec(ctx, "DELETE FROM "+table+" = ?", id); err != nil {
				return err
			}
		}
		return c.execOne(ctx, "DELETE FROM idp_users WHERE id = ?", id)
	})
	return s.fail("delete idp user "+id, err)
}
