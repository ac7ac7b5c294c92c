package store

import (
	"context"
	"errors"
	"time"
)

// The embedded IdP's protocol state — sign-ins in progress, authorization
// codes and access tokens — lives here rather than in a replica's memory,
// so that each step of a sign-in may land on any replica. Every row is
// keyed by the SHA-256 of its id, code or token: the database never holds
// a value that would let its reader finish a sign-in or call userinfo.

// IdPAuthRequest is one sign-in in progress at the embedded IdP. Data is
// the provider's own encoding of it; the store only keeps it.
type IdPAuthRequest struct {
	Hash    []byte // SHA-256 of the request id
	Data    []byte
	Expires time.Time
}

// IdPCode is an authorization code issued for a finished sign-in.
type IdPCode struct {
	Hash        []byte // SHA-256 of the code
	RequestHash []byte
	Expires     time.Time
}

// IdPToken is an access token of the embedded IdP (for userinfo).
type IdPToken struct {
	Hash     []byte // SHA-256 of the token id
	Subject  string
	ClientID string
	Scopes   []string
	Expires  time.Time
}

// CreateIdPAuthRequest stores a new sign-in unless max sign-ins are
// already live at now (ErrExhausted).
func (s *DB) CreateIdPAuthRequest(ctx context.Context, a *IdPAuthRequest, now time.Time, max int) error {
	err := s.inTx(ctx, func(c conn) error {
		if err := underCap(ctx, c, "idp_auth_requests", now, max); err != nil {
			return err
		}
		_, err := c.exec(ctx, "INSERT INTO idp_auth_requests (hash, data, expires) VALUES (?, ?, ?)",
			a.Hash, a.Data, s.d.timeArg(a.Expires))
		return err
	})
	return s.fail("create IdP sign-in", err)
}

// underCap is ErrExhausted when table holds max rows live at now.
func underCap(ctx context.Context, c conn, table string, now time.Time, max int) error {
	var n int
	if err := c.row(ctx, "SELECT COUNT(*) FROM "+table+" WHERE expires > ?", c.d.timeArg(now)).Scan(&n); err != nil {
		return err
	}
	if n >= max {
		return ErrExhausted
	}
	return nil
}

// IdPAuthRequest returns the sign-in with hash when it is live at now.
func (s *DB) IdPAuthRequest(ctx context.Context, hash []byte, now time.Time) (*IdPAuthRequest, error) {
	a, err := liveAuthRequest(ctx, s.rd(), hash, now, "")
	return a, s.fail("IdP sign-in", err)
}

func liveAuthRequest(ctx context.Context, c conn, hash []byte, now time.Time, lock string) (*IdPAuthRequest, error) {
	return getOne(ctx, c, func(r scanner) (*IdPAuthRequest, error) {
		a := &IdPAuthRequest{Hash: hash}
		return a, r.Scan(&a.Data, timeCol{&a.Expires})
	}, "SELECT data, expires FROM idp_auth_requests WHERE hash = ? AND expires > ?"+lock, hash, c.d.timeArg(now))
}

// UpdateIdPAuthRequest applies f to the live sign-in with hash under its
// row lock, so that changes made on different replicas at once are
// applied one after the other, and returns the result. f may change Data
// only; its error leaves the sign-in unchanged and is returned as is.
// With code, the code is stored in the same transaction.
func (s *DB) UpdateIdPAuthRequest(ctx context.Context, hash []byte, now time.Time, code *IdPCode, f func(*IdPAuthRequest) error) (*IdPAuthRequest, error) {
	var out *IdPAuthRequest
	var ferr error
	err := s.inTx(ctx, func(c conn) error {
		a, err := liveAuthRequest(ctx, c, hash, now, s.d.forUpdate)
		if err != nil {
			return err
		}
		if ferr = f(a); ferr != nil {
			return ferr
		}
		if _, err := c.exec(ctx, "UPDATE idp_auth_requests SET data = ? WHERE hash = ?", a.Data, hash); err != nil {
			return err
		}
		if code != nil {
			if _, err := c.exec(ctx, "INSERT INTO idp_codes (hash, request_hash, expires) VALUES (?, ?, ?)",
				code.Hash, hash, s.d.timeArg(code.Expires)); err != nil {
				return err
			}
		}
		out = a
		return nil
	})
	if ferr != nil {
		return nil, ferr
	}
	return out, s.fail("update IdP sign-in", err)
}

// DeleteIdPAuthRequest forgets a sign-in.
func (s *DB) DeleteIdPAuthRequest(ctx context.Context, hash []byte) error {
	_, err := s.wr().exec(ctx, "DELETE FROM idp_auth_requests WHERE hash = ?", hash)
	return s.fail("delete IdP sign-in", err)
}

// TakeIdPCode spends the code with hash: it is deleted, and the hash of
// its sign-in returned while it is live at now. Of two replicas spending
// one code at once, one gets it and the other ErrNotFound.
func (s *DB) TakeIdPCode(ctx context.Context, hash []byte, now time.Time) ([]byte, error) {
	var req []byte
	var expires time.Time
	err := s.wr().row(ctx, "DELETE FROM idp_codes WHERE hash = ? RETURNING request_hash, expires", hash).
		Scan(&req, timeCol{&expires})
	if err == nil && !now.Before(expires) {
		err = ErrNotFound
	}
	return req, s.fail("take IdP code", err)
}

// CreateIdPToken stores an access token unless max tokens are already
// live at now (ErrExhausted).
func (s *DB) CreateIdPToken(ctx context.Context, t *IdPToken, now time.Time, max int) error {
	scopes, err := jsonArg(t.Scopes)
	if err != nil {
		return s.fail("create IdP token", err)
	}
	err = s.inTx(ctx, func(c conn) error {
		if err := underCap(ctx, c, "idp_tokens", now, max); err != nil {
			return err
		}
		_, err := c.exec(ctx, "INSERT INTO idp_tokens (hash, subject, client_id, scopes, expires) VALUES (?, ?, ?, ?, ?)",
			t.Hash, t.Subject, t.ClientID, scopes, s.d.timeArg(t.Expires))
		return err
	})
	return s.fail("create IdP token", err)
}

// IdPToken returns the access token with hash when it is live at now.
func (s *DB) IdPToken(ctx context.Context, hash []byte, now time.Time) (*IdPToken, error) {
	t, err := getOne(ctx, s.rd(), func(r scanner) (*IdPToken, error) {
		t := &IdPToken{Hash: hash}
		return t, r.Scan(&t.Subject, &t.ClientID, jsonCol[string]{&t.Scopes}, timeCol{&t.Expires})
	}, "SELECT subject, client_id, scopes, expires FROM idp_tokens WHERE hash = ? AND expires > ?", hash, s.d.timeArg(now))
	return t, s.fail("IdP token", err)
}

// DeleteIdPToken revokes an access token.
func (s *DB) DeleteIdPToken(ctx context.Context, hash []byte) error {
	_, err := s.wr().exec(ctx, "DELETE FROM idp_tokens WHERE hash = ?", hash)
	return s.fail("delete IdP token", err)
}

// DeleteExpiredIdPState deletes the sign-ins, codes, access and refresh tokens expired at
// now. Readers check expiry themselves; this keeps the tables small.
func (s *DB) DeleteExpiredIdPState(ctx context.Context, now time.Time) error {
	var errs []error
	for _, table := range []string{"idp_auth_requests", "idp_codes", "idp_tokens", "idp_refresh_tokens"} {
		_, err := s.wr().exec(ctx, "DELETE FROM "+table+" WHERE expires <= ?", s.d.timeArg(now))
		errs = append(errs, err)
	}
	return s.fail("delete expired IdP state", errors.Join(errs...))
}

// CompleteIdPSetup finishes the account setup of embedded-provider user
// id: it stores the password hash and the sealed TOTP secret with its
// first used step, clears the failure counts of earlier builds and spends
// the setup token, in one statement that succeeds only while setupHash is
// the user's live token at now (ErrNotFound otherwise): of two posts of
// one setup link, on any replicas, one wins.
func (s *DB) CompleteIdPSetup(ctx context.Context, id string, setupHash []byte, now time.Time, passwordHash string, totpSecret []byte, step int64) error {
	err := s.wr().execOne(ctx, `UPDATE idp_users SET password_hash = ?, totp_secret = ?, totp_last_step = ?,
			setup_hash = NULL, setup_expiry = NULL, failures = 0, locked_until = NULL
		WHERE id = ? AND setup_hash = ? AND setup_expiry > ?`,
		passwordHash, totpSecret, step, id, setupHash, s.d.timeArg(now))
	return s.fail("complete setup of "+id, err)
}
