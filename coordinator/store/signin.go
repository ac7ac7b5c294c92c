package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Sign-in attempts: every check of a password or a code is counted in
// the database before it is made, under the row's lock, so that the count
// holds across replicas and parallel requests cannot check more than the
// rule allows.

// SignInAttempt counts an attempt under key (an account, or an account
// from one address) at now as a failure before it is checked — a
// complete sign-in clears the count (ClearSignInFailures) — and makes
// the next attempt wait until now + wait(failures). While an earlier
// failure's wait runs (until after now) nothing is counted and ok is
// false: the attempt must not be checked. It returns when the wait ends
// (the zero time: no wait). The row is updated under its lock, so of
// parallel attempts no more are checked than the rule allows, on any
// replica.
func (s *DB) SignInAttempt(ctx context.Context, key string, now time.Time, wait func(failures int) time.Duration) (ok bool, next time.Time, err error) {
	err = s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `INSERT INTO signin_backoff (bucket, failures, updated) VALUES (?, 0, ?)
			ON CONFLICT (bucket) DO NOTHING`, key, s.d.timeArg(now)); err != nil {
			return err
		}
		var n int
		err := c.row(ctx, `UPDATE signin_backoff SET failures = failures + 1, updated = ?
			WHERE bucket = ? AND (next_at IS NULL OR next_at <= ?) RETURNING failures`,
			s.d.timeArg(now), key, s.d.timeArg(now)).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) { // waiting: say until when
			return c.row(ctx, "SELECT next_at FROM signin_backoff WHERE bucket = ?", key).Scan(timeCol{&next})
		}
		if err != nil {
			return err
		}
		ok = true
		if d := wait(n); d > 0 {
			next = now.Add(d)
		}
		_, err = c.exec(ctx, "UPDATE signin_backoff SET next_at = ? WHERE bucket = ?", s.d.timeArg(next), key)
		return err
	})
	return ok, next, s.fail("count sign-in attempt", err)
}

// ClearSignInFailures forgets the failures under key (after a success).
func (s *DB) ClearSignInFailures(ctx context.Context, key string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM signin_backoff WHERE bucket = ?", key)
	return s.fail("clear sign-in failures", err)
}

// DeleteStaleSignInFailures deletes the failure counts last changed
// before before, and returns how many it deleted.
func (s *DB) DeleteStaleSignInFailures(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.wr().exec(ctx, "DELETE FROM signin_backoff WHERE updated < ?", s.d.timeArg(before))
	if err != nil {
		return 0, s.fail("delete stale sign-in failures", err)
	}
	n, err := res.RowsAffected()
	return n, s.fail("delete stale sign-in failures", err)
}

// BeginMFAAttempt counts a check of user id's coordinator TOTP code as a
// failure before it is made — a success clears it (ClaimTOTPStep) — and
// locks the account until now + lockFor when this makes maxFailures. A
// locked account (until after now) is ErrExhausted and counts nothing:
// the code must not be checked. One statement, so parallel attempts
// cannot check more codes than they count.
func (s *DB) BeginMFAAttempt(ctx context.Context, id string, now time.Time, maxFailures int, lockFor time.Duration) error {
	err := s.wr().execOne(ctx, s.d.types.Replace(`UPDATE users SET mfa_failures = mfa_failures + 1,
			mfa_locked_til = CASE WHEN mfa_failures + 1 >= ? THEN CAST(? AS {{time}}) ELSE NULL END
		WHERE id = ? AND (mfa_locked_til IS NULL OR mfa_locked_til <= ?)`),
		maxFailures, s.d.timeArg(now.Add(lockFor)), id, s.d.timeArg(now))
	if errors.Is(err, ErrNotFound) {
		if _, uerr := s.User(ctx, id); uerr == nil {
			err = ErrExhausted
		}
	}
	return s.fail("begin MFA attempt of "+id, err)
}

// ClaimTOTPStep records that user id used the TOTP code of step and
// clears the failure count, in one statement that succeeds only while
// step is newer than the last one used: of parallel uses of one code,
// one wins and the others are ErrConflict. With pendingSecret (a sealed
// secret being enrolled), it is stored too, and only while the user has
// none.
func (s *DB) ClaimTOTPStep(ctx context.Context, id string, step int64, pendingSecret []byte) error {
	q := `UPDATE users SET totp_last_step = ?, mfa_failures = 0, mfa_locked_til = NULL
		WHERE id = ? AND totp_last_step < ?`
	args := []any{step, id, step}
	if pendingSecret != nil {
		q = `UPDATE users SET totp_last_step = ?, mfa_failures = 0, mfa_locked_til = NULL, totp_secret = ?
		WHERE id = ? AND totp_last_step < ? AND totp_secret IS NULL`
		args = []any{step, pendingSecret, id, step}
	}
	err := s.wr().execOne(ctx, q, args...)
	if errors.Is(err, ErrNotFound) {
		if _, uerr := s.User(ctx, id); uerr == nil {
			err = ErrConflict
		}
	}
	return s.fail("claim TOTP step of "+id, err)
}

// ClaimIdPTOTPStep records that embedded-provider user id used the TOTP
// code of step, in one statement that succeeds only while step is newer
// than the last one used: of parallel uses of one code, on any replica,
// one wins and the others are ErrConflict.
func (s *DB) ClaimIdPTOTPStep(ctx context.Context, id string, step int64) error {
	err := s.wr().execOne(ctx, "UPDATE idp_users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", step, id, step)
	if errors.Is(err, ErrNotFound) {
		if _, uerr := s.IdPUser(ctx, id); uerr == nil {
			err = ErrConflict
		}
	}
	return s.fail("claim TOTP step of "+id, err)
}
