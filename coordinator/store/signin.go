package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Sign-in attempts: every check of a password or a code is counted in
// the database in one statement, so that the count holds across replicas
// and parallel requests cannot check more than the rule allows.

// SignInWait returns when the next attempt under key (an account, or an
// account from one address) may be checked; the zero time when at once.
func (s *DB) SignInWait(ctx context.Context, key string) (time.Time, error) {
	var next time.Time
	err := s.wr().row(ctx, "SELECT next_at FROM signin_backoff WHERE bucket = ?", key).Scan(timeCol{&next})
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return next, s.fail("sign-in wait", err)
}

// SignInFailed counts one more failed attempt under key at now and makes
// the next attempt wait until now + wait(failures), in one transaction.
// It returns the failure count and the time the wait ends.
func (s *DB) SignInFailed(ctx context.Context, key string, now time.Time, wait func(failures int) time.Duration) (int, time.Time, error) {
	var n int
	var next time.Time
	err := s.inTx(ctx, func(c conn) error {
		err := c.row(ctx, `INSERT INTO signin_backoff (bucket, failures, updated) VALUES (?, 1, ?)
			ON CONFLICT (bucket) DO UPDATE SET failures = signin_backoff.failures + 1, updated = excluded.updated
			RETURNING failures`, key, s.d.timeArg(now)).Scan(&n)
		if err != nil {
			return err
		}
		if d := wait(n); d > 0 {
			next = now.Add(d)
		}
		_, err = c.exec(ctx, "UPDATE signin_backoff SET next_at = ? WHERE bucket = ?", s.d.timeArg(next), key)
		return err
	})
	return n, next, s.fail("count sign-in failure", err)
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
