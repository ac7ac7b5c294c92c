package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const loginSessionCols = `id, poll_hash, purpose, public_key, hostname, os, nonce, verifier,
	created, expires, user_id, mfa_done, device_id, result, consumed, browser_hash, requester, refusal`

func scanLoginSession(r scanner) (*LoginSession, error) {
	l := new(LoginSession)
	err := r.Scan(&l.ID, &l.PollHash, &l.Purpose, &l.PublicKey, &l.Hostname, &l.OS, &l.Nonce,
		&l.Verifier, timeCol{&l.Created}, timeCol{&l.Expires}, &l.UserID, &l.MFADone, &l.DeviceID,
		&l.Result, &l.Consumed, &l.BrowserHash, &l.Requester, &l.Refusal)
	return l, err
}

// CreateLoginSession implements Store. It fills l.ID ("ls_…") and
// l.Created when empty.
func (s *DB) CreateLoginSession(ctx context.Context, l *LoginSession) error {
	fillNew(&l.ID, "ls_", &l.Created)
	_, err := s.wr().exec(ctx, `INSERT INTO login_sessions (`+loginSessionCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, blobArg(l.PollHash), l.Purpose, l.PublicKey, l.Hostname, l.OS, l.Nonce, l.Verifier,
		s.d.timeArg(l.Created), s.d.timeArg(l.Expires), l.UserID, l.MFADone, l.DeviceID,
		blobArg(l.Result), l.Consumed, blobArg(l.BrowserHash), l.Requester, l.Refusal)
	return s.fail("create login session", err)
}

// LoginSession implements Store. Expiry is the caller's to check.
func (s *DB) LoginSession(ctx context.Context, id string) (*LoginSession, error) {
	l, err := getOne(ctx, s.rd(), scanLoginSession,
		"SELECT "+loginSessionCols+" FROM login_sessions WHERE id = ?", id)
	return l, s.fail("login session", err)
}

// LoginSessionByPollHash implements Store; an empty hash matches nothing.
func (s *DB) LoginSessionByPollHash(ctx context.Context, hash []byte) (*LoginSession, error) {
	if len(hash) == 0 {
		return nil, s.fail("login session by poll hash", ErrNotFound)
	}
	l, err := getOne(ctx, s.rd(), scanLoginSession,
		"SELECT "+loginSessionCols+" FROM login_sessions WHERE poll_hash = ?", hash)
	return l, s.fail("login session by poll hash", err)
}

// UpdateLoginSession implements Store: everything but ID and Created. It
// never clears Consumed, and once consumed the result cannot be replaced,
// so a stale copy cannot make a result deliverable twice.
func (s *DB) UpdateLoginSession(ctx context.Context, l *LoginSession) error {
	err := s.wr().execOne(ctx, `UPDATE login_sessions SET poll_hash = ?, purpose = ?, public_key = ?,
			hostname = ?, os = ?, nonce = ?, verifier = ?, expires = ?, user_id = ?, mfa_done = ?,
			device_id = ?, result = CASE WHEN consumed THEN result ELSE ? END,
			consumed = (consumed OR ?), requester = ?, refusal = ?
		WHERE id = ?`,
		blobArg(l.PollHash), l.Purpose, l.PublicKey, l.Hostname, l.OS, l.Nonce, l.Verifier,
		s.d.timeArg(l.Expires), l.UserID, l.MFADone, l.DeviceID, blobArg(l.Result), l.Consumed,
		l.Requester, l.Refusal, l.ID)
	return s.fail("update login session "+l.ID, err)
}

// ConsumeLoginResult implements Store. A session without a result yet is
// ErrNotFound; one whose result was already taken is ErrConflict.
func (s *DB) ConsumeLoginResult(ctx context.Context, id string) ([]byte, error) {
	var res []byte
	err := s.wr().row(ctx, `UPDATE login_sessions SET consumed = TRUE
		WHERE id = ? AND NOT consumed AND result IS NOT NULL RETURNING result`, id).Scan(&res)
	if errors.Is(err, sql.ErrNoRows) {
		err = s.whyNoResult(ctx, id)
	}
	if err != nil {
		return nil, s.fail("consume login result of "+id, err)
	}
	return res, nil
}

// whyNoResult says why ConsumeLoginResult found nothing to hand out.
func (s *DB) whyNoResult(ctx context.Context, id string) error {
	var consumed bool
	err := s.wr().row(ctx, "SELECT consumed FROM login_sessions WHERE id = ?", id).Scan(&consumed)
	switch {
	case err != nil:
		return err
	case consumed:
		return fmt.Errorf("result already taken: %w", ErrConflict)
	}
	return fmt.Errorf("no result yet: %w", ErrNotFound)
}

// DeleteExpiredLoginSessions implements Store: sessions whose Expires is
// before now.
func (s *DB) DeleteExpiredLoginSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.wr().exec(ctx, "DELETE FROM login_sessions WHERE expires < ?", s.d.timeArg(now))
	if err != nil {
		return 0, s.fail("delete expired login sessions", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.fail("delete expired login sessions", err)
}

// BindLoginSession implements Store: one conditional UPDATE, so of two
// browsers racing to claim a session exactly one wins.
func (s *DB) BindLoginSession(ctx context.Context, id string, browserHash []byte) error {
	if len(browserHash) == 0 {
		return s.fail("bind login session", errors.New("empty browser hash"))
	}
	res, err := s.wr().exec(ctx, `UPDATE login_sessions SET browser_hash = ?
		WHERE id = ? AND browser_hash IS NULL`, browserHash, id)
	if err != nil {
		return s.fail("bind login session", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	l, err := s.LoginSession(ctx, id)
	if err != nil {
		return err
	}
	if !bytes.Equal(l.BrowserHash, browserHash) {
		return s.fail("bind login session", ErrConflict)
	}
	return nil
}
