package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

const enrollKeyCols = "id, hash, tags, reusable, expiry, uses, revoked, created_by, created"

func scanEnrollKey(r scanner) (*EnrollKey, error) {
	k := new(EnrollKey)
	err := r.Scan(&k.ID, &k.Hash, jsonCol[string]{&k.Tags}, &k.Reusable, timeCol{&k.Expiry},
		&k.Uses, &k.Revoked, &k.CreatedBy, timeCol{&k.Created})
	return k, err
}

// CreateEnrollKey implements Store. It fills k.ID ("ek_…") and k.Created
// when empty. A zero Expiry means the key does not expire.
func (s *DB) CreateEnrollKey(ctx context.Context, k *EnrollKey) error {
	if len(k.Hash) == 0 {
		return s.fail("create enrollment key", errors.New("no hash"))
	}
	fillNew(&k.ID, "ek_", &k.Created)
	tags, err := jsonArg(k.Tags)
	if err != nil {
		return s.fail("create enrollment key", err)
	}
	_, err = s.wr().exec(ctx, `INSERT INTO enroll_keys (`+enrollKeyCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Hash, tags, k.Reusable, s.d.timeArg(k.Expiry), k.Uses, k.Revoked, k.CreatedBy,
		s.d.timeArg(k.Created))
	return s.fail("create enrollment key", err)
}

// EnrollKeys implements Store; newest first.
func (s *DB) EnrollKeys(ctx context.Context) ([]*EnrollKey, error) {
	ks, err := getAll(ctx, s.rd(), scanEnrollKey,
		"SELECT "+enrollKeyCols+" FROM enroll_keys ORDER BY created DESC, id")
	return ks, s.fail("enrollment keys", err)
}

// UseEnrollKey implements Store. One statement checks and counts the use,
// so concurrent callers cannot both pass the check: SQLite has one writer,
// and PostgreSQL re-evaluates the WHERE clause on the row the winner
// updated. An unknown hash is ErrNotFound; a revoked, expired (Expiry at
// or before now) or used single-use key is ErrExhausted.
func (s *DB) UseEnrollKey(ctx context.Context, hash []byte, now time.Time) (*EnrollKey, error) {
	if len(hash) == 0 {
		return nil, s.fail("use enrollment key", ErrNotFound)
	}
	if now.IsZero() {
		now = time.Now()
	}
	k, err := getOne(ctx, s.wr(), scanEnrollKey, `UPDATE enroll_keys SET uses = uses + 1
		WHERE hash = ? AND NOT revoked AND (expiry IS NULL OR expiry > ?) AND (reusable OR uses = 0)
		RETURNING `+enrollKeyCols, hash, s.d.timeArg(now))
	if errors.Is(err, sql.ErrNoRows) {
		err = s.whyUnusable(ctx, hash)
	}
	return k, s.fail("use enrollment key", err)
}

// CheckEnrollKey reports, without using it, whether the key with hash
// could be used at now: nil, ErrNotFound or ErrExhausted as UseEnrollKey
// would answer. A caller checks before anything it would otherwise
// reveal, and then uses the key with UseEnrollKey, which checks again.
func (s *DB) CheckEnrollKey(ctx context.Context, hash []byte, now time.Time) error {
	if len(hash) == 0 {
		return s.fail("check enrollment key", ErrNotFound)
	}
	var n int
	err := s.rd().row(ctx, `SELECT COUNT(*) FROM enroll_keys
		WHERE hash = ? AND NOT revoked AND (expiry IS NULL OR expiry > ?) AND (reusable OR uses = 0)`,
		hash, s.d.timeArg(now)).Scan(&n)
	if err == nil && n == 0 {
		err = s.whyUnusable(ctx, hash)
	}
	return s.fail("check enrollment key", err)
}

// whyUnusable tells an unknown key (ErrNotFound) from a used-up one.
func (s *DB) whyUnusable(ctx context.Context, hash []byte) error {
	var n int
	if err := s.wr().row(ctx, "SELECT COUNT(*) FROM enroll_keys WHERE hash = ?", hash).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrExhausted
}

// RevokeEnrollKey implements Store.
func (s *DB) RevokeEnrollKey(ctx context.Context, id string) error {
	err := s.wr().execOne(ctx, "UPDATE enroll_keys SET revoked = TRUE WHERE id = ?", id)
	return s.fail("revoke enrollment key "+id, err)
}

const apiTokenCols = "id, hash, name, created_by, created, expiry, last_used"

func scanAPIToken(r scanner) (*APIToken, error) {
	t := new(APIToken)
	err := r.Scan(&t.ID, &t.Hash, &t.Name, &t.CreatedBy, timeCol{&t.Created}, timeCol{&t.Expiry},
		timeCol{&t.LastUsed})
	return t, err
}

// CreateAPIToken implements Store. It fills t.ID ("tok_…") and t.Created
// when empty.
func (s *DB) CreateAPIToken(ctx context.Context, t *APIToken) error {
	if len(t.Hash) == 0 {
		return s.fail("create api token", errors.New("no hash"))
	}
	fillNew(&t.ID, "tok_", &t.Created)
	_, err := s.wr().exec(ctx, "INSERT INTO api_tokens ("+apiTokenCols+") VALUES (?, ?, ?, ?, ?, ?, ?)",
		t.ID, t.Hash, t.Name, t.CreatedBy, s.d.timeArg(t.Created), s.d.timeArg(t.Expiry),
		s.d.timeArg(t.LastUsed))
	return s.fail("create api token", err)
}

// APITokenByHash implements Store; an empty hash matches nothing. Expiry
// is the caller's to check.
func (s *DB) APITokenByHash(ctx context.Context, hash []byte) (*APIToken, error) {
	if len(hash) == 0 {
		return nil, s.fail("api token by hash", ErrNotFound)
	}
	t, err := getOne(ctx, s.rd(), scanAPIToken, "SELECT "+apiTokenCols+" FROM api_tokens WHERE hash = ?", hash)
	return t, s.fail("api token by hash", err)
}

// APITokens implements Store; newest first.
func (s *DB) APITokens(ctx context.Context) ([]*APIToken, error) {
	ts, err := getAll(ctx, s.rd(), scanAPIToken, "SELECT "+apiTokenCols+" FROM api_tokens ORDER BY created DESC, id")
	return ts, s.fail("api tokens", err)
}

// DeleteAPIToken implements Store.
func (s *DB) DeleteAPIToken(ctx context.Context, id string) error {
	err := s.wr().execOne(ctx, "DELETE FROM api_tokens WHERE id = ?", id)
	return s.fail("delete api token "+id, err)
}
