package store

import (
	"context"
	"errors"
	"time"
)

func scanUISession(r scanner) (*UISession, error) {
	u := new(UISession)
	err := r.Scan(&u.Hash, &u.UserID, timeCol{&u.Created}, timeCol{&u.Expires})
	return u, err
}

// CreateUISession implements Store. It fills u.Created when zero.
func (s *DB) CreateUISession(ctx context.Context, u *UISession) error {
	if len(u.Hash) == 0 || u.UserID == "" {
		return errors.New("store: create UI session: a UI session needs a hash and a user")
	}
	if u.Created.IsZero() {
		u.Created = time.Now()
	}
	_, err := s.wr().exec(ctx, "INSERT INTO ui_sessions (hash, user_id, created, expires) VALUES (?, ?, ?, ?)",
		u.Hash, u.UserID, s.d.timeArg(u.Created), s.d.timeArg(u.Expires))
	return s.fail("create UI session", err)
}

// UISession implements Store; an empty hash matches nothing.
func (s *DB) UISession(ctx context.Context, hash []byte) (*UISession, error) {
	if len(hash) == 0 {
		return nil, s.fail("UI session", ErrNotFound)
	}
	u, err := getOne(ctx, s.rd(), scanUISession,
		"SELECT hash, user_id, created, expires FROM ui_sessions WHERE hash = ?", hash)
	return u, s.fail("UI session", err)
}

// DeleteUISession implements Store.
func (s *DB) DeleteUISession(ctx context.Context, hash []byte) error {
	_, err := s.wr().exec(ctx, "DELETE FROM ui_sessions WHERE hash = ?", hash)
	return s.fail("delete UI session", err)
}

// DeleteUserUISessions implements Store.
func (s *DB) DeleteUserUISessions(ctx context.Context, userID string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM ui_sessions WHERE user_id = ?", userID)
	return s.fail("delete UI sessions of "+userID, err)
}

// DeleteExpiredUISessions implements Store: sessions whose Expires is
// not after now.
func (s *DB) DeleteExpiredUISessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.wr().exec(ctx, "DELETE FROM ui_sessions WHERE expires <= ?", s.d.timeArg(now))
	if err != nil {
		return 0, s.fail("delete expired UI sessions", err)
	}
	n, err := res.RowsAffected()
	return int(n), s.fail("delete expired UI sessions", err)
}
