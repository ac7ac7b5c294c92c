package store

import (
	"context"
	"errors"
	"time"
)

// Passkeys (WebAuthn credentials) and the challenges of their ceremonies.
// Both the embedded IdP (user ids "iu_…") and the coordinator's own step-up
// (user ids "u_…") keep theirs here; the id prefixes keep them apart.
// Challenges live in the database, not a replica's memory, so that the
// page that starts a ceremony and the post that finishes it may land on
// different replicas; they are keyed by the SHA-256 of their id and work
// once.

// Passkey is one WebAuthn credential a person registered.
type Passkey struct {
	ID        []byte // the credential id the authenticator chose
	UserID    string
	Name      string // the person's label, e.g. "YubiKey 5C"
	Data      []byte // the caller's encoding of the credential (public key, flags, AAGUID)
	SignCount uint32 // the authenticator's signature counter at the last use
	Created   time.Time
	LastUsed  time.Time // zero: never used to sign in
}

// PasskeyChallenge is a registration or sign-in ceremony in progress.
type PasskeyChallenge struct {
	Hash    []byte // SHA-256 of the ceremony id
	UserID  string
	Purpose string // what the caller started it for; checked when taken
	Data    []byte // the caller's session data (the challenge itself, options)
	Expires time.Time
}

const passkeyCols = "id, user_id, name, data, sign_count, created, last_used"

func scanPasskey(r scanner) (*Passkey, error) {
	p := new(Passkey)
	var count int64
	err := r.Scan(&p.ID, &p.UserID, &p.Name, &p.Data, &count, timeCol{&p.Created}, timeCol{&p.LastUsed})
	p.SignCount = uint32(count)
	return p, err
}

// CreatePasskey stores a new passkey; a credential id already stored is
// ErrConflict.
func (s *DB) CreatePasskey(ctx context.Context, p *Passkey) error {
	_, err := s.wr().exec(ctx, "INSERT INTO passkeys ("+passkeyCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		p.ID, p.UserID, p.Name, p.Data, int64(p.SignCount), s.d.timeArg(p.Created), s.d.timeArg(p.LastUsed))
	return s.fail("create passkey", err)
}

// Passkeys returns the passkeys of user userID, oldest first.
func (s *DB) Passkeys(ctx context.Context, userID string) ([]*Passkey, error) {
	ps, err := getAll(ctx, s.rd(), scanPasskey, "SELECT "+passkeyCols+" FROM passkeys WHERE user_id = ? ORDER BY created, id", userID)
	return ps, s.fail("passkeys of "+userID, err)
}

// UsePasskey records a sign-in with passkey id of userID: its new Data and
// SignCount, and the time. It succeeds only while the stored counter is
// still from, so that of two sign-ins checked against one counter value,
// on any replicas, one wins (the other is ErrConflict); an unknown passkey
// is ErrNotFound.
func (s *DB) UsePasskey(ctx context.Context, userID string, id []byte, from uint32, p *Passkey) error {
	err := s.wr().execOne(ctx, `UPDATE passkeys SET data = ?, sign_count = ?, last_used = ?
		WHERE user_id = ? AND id = ? AND sign_count = ?`,
		p.Data, int64(p.SignCount), s.d.timeArg(p.LastUsed), userID, id, int64(from))
	if errors.Is(err, ErrNotFound) {
		var n int
		if qerr := s.rd().row(ctx, "SELECT COUNT(*) FROM passkeys WHERE user_id = ? AND id = ?", userID, id).Scan(&n); qerr == nil && n > 0 {
			err = ErrConflict
		}
	}
	return s.fail("use passkey", err)
}

// RenamePasskey changes the name of passkey id of userID.
func (s *DB) RenamePasskey(ctx context.Context, userID string, id []byte, name string) error {
	err := s.wr().execOne(ctx, "UPDATE passkeys SET name = ? WHERE user_id = ? AND id = ?", name, userID, id)
	return s.fail("rename passkey", err)
}

// DeletePasskey removes passkey id of userID.
func (s *DB) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	err := s.wr().execOne(ctx, "DELETE FROM passkeys WHERE user_id = ? AND id = ?", userID, id)
	return s.fail("delete passkey", err)
}

// DeletePasskeys removes every passkey of userID (an admin's MFA reset);
// a person with none is no error.
func (s *DB) DeletePasskeys(ctx context.Context, userID string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM passkeys WHERE user_id = ?", userID)
	return s.fail("delete passkeys of "+userID, err)
}

// CreatePasskeyChallenge stores a ceremony in progress, removing those
// expired at now, unless max ceremonies are live (ErrExhausted).
func (s *DB) CreatePasskeyChallenge(ctx context.Context, c *PasskeyChallenge, now time.Time, max int) error {
	err := s.inTx(ctx, func(tx conn) error {
		if _, err := tx.exec(ctx, "DELETE FROM passkey_challenges WHERE expires <= ?", s.d.timeArg(now)); err != nil {
			return err
		}
		if err := underCap(ctx, tx, "passkey_challenges", now, max); err != nil {
			return err
		}
		_, err := tx.exec(ctx, "INSERT INTO passkey_challenges (hash, user_id, purpose, data, expires) VALUES (?, ?, ?, ?, ?)",
			c.Hash, c.UserID, c.Purpose, c.Data, s.d.timeArg(c.Expires))
		return err
	})
	return s.fail("create passkey challenge", err)
}

// TakePasskeyChallenge removes and returns the ceremony with hash: it
// works once, and only while live at now (else ErrNotFound).
func (s *DB) TakePasskeyChallenge(ctx context.Context, hash []byte, now time.Time) (*PasskeyChallenge, error) {
	c := &PasskeyChallenge{Hash: hash}
	err := s.wr().row(ctx, "DELETE FROM passkey_challenges WHERE hash = ? RETURNING user_id, purpose, data, expires", hash).
		Scan(&c.UserID, &c.Purpose, &c.Data, timeCol{&c.Expires})
	if err == nil && !now.Before(c.Expires) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, s.fail("take passkey challenge", err)
	}
	return c, nil
}

// ClearMFAFailures ends the failure count and lockout of the
// coordinator's second factor for user id after a passkey sign-in (a
// TOTP code does the same in ClaimTOTPStep).
func (s *DB) ClearMFAFailures(ctx context.Context, id string) error {
	err := s.wr().execOne(ctx, "UPDATE users SET mfa_failures = 0, mfa_locked_til = NULL WHERE id = ?", id)
	return s.fail("clear MFA failures of "+id, err)
}

// ResetMFA removes the coordinator's own second factors of user id (its
// TOTP secret and its passkeys) and ends any lockout, so that the
// person's next sign-in enrolls anew: an admin's recovery for a lost
// authenticator.
func (s *DB) ResetMFA(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(c conn) error {
		if err := c.execOne(ctx, "UPDATE users SET totp_secret = NULL, mfa_failures = 0, mfa_locked_til = NULL WHERE id = ?", id); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM passkeys WHERE user_id = ?", id)
		return err
	})
	return s.fail("reset MFA of "+id, err)
}

// PasskeyCounts returns how many passkeys each user id has (users with
// none are absent).
func (s *DB) PasskeyCounts(ctx context.Context) (map[string]int, error) {
	type row struct {
		id string
		n  int
	}
	rows, err := getAll(ctx, s.rd(), func(r scanner) (row, error) {
		var x row
		err := r.Scan(&x.id, &x.n)
		return x, err
	}, "SELECT user_id, COUNT(*) FROM passkeys GROUP BY user_id")
	if err != nil {
		return nil, s.fail("count passkeys", err)
	}
	out := make(map[string]int, len(rows))
	for _, x := range rows {
		out[x.id] = x.n
	}
	return out, nil
}
