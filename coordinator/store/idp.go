package store

import (
	"context"
	"strings"
)

const idpUserCols = `id, email, name, password_hash, totp_secret, totp_last_step, admin, idp_groups,
	setup_hash, setup_expiry, failures, locked_until, created`

func scanIdPUser(r scanner) (*IdPUser, error) {
	u := new(IdPUser)
	err := r.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.TOTPSecret, &u.TOTPLastStep,
		&u.Admin, jsonCol[string]{&u.Groups}, &u.SetupHash, timeCol{&u.SetupExpiry}, &u.Failures,
		timeCol{&u.LockedUntil}, timeCol{&u.Created})
	return u, err
}

// CreateIdPUser implements Store. It lowercases u.Email and fills u.ID
// ("iu_…") and u.Created when empty; a taken email is ErrConflict.
func (s *DB) CreateIdPUser(ctx context.Context, u *IdPUser) error {
	u.Email = strings.ToLower(u.Email)
	fillNew(&u.ID, "iu_", &u.Created)
	groups, err := jsonArg(u.Groups)
	if err != nil {
		return s.fail("create idp user", err)
	}
	_, err = s.wr().exec(ctx, `INSERT INTO idp_users (`+idpUserCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.Email, u.Name, u.PasswordHash, blobArg(u.TOTPSecret), u.TOTPLastStep, u.Admin,
		groups, blobArg(u.SetupHash), s.d.timeArg(u.SetupExpiry), u.Failures,
		s.d.timeArg(u.LockedUntil), s.d.timeArg(u.Created))
	return s.fail("create idp user", err)
}

// IdPUser implements Store.
func (s *DB) IdPUser(ctx context.Context, id string) (*IdPUser, error) {
	u, err := getOne(ctx, s.rd(), scanIdPUser, "SELECT "+idpUserCols+" FROM idp_users WHERE id = ?", id)
	return u, s.fail("idp user "+id, err)
}

// IdPUserByEmail implements Store; the match ignores case.
func (s *DB) IdPUserByEmail(ctx context.Context, email string) (*IdPUser, error) {
	u, err := getOne(ctx, s.rd(), scanIdPUser, "SELECT "+idpUserCols+" FROM idp_users WHERE email = ?",
		strings.ToLower(email))
	return u, s.fail("idp user by email", err)
}

// IdPUserBySetupHash implements Store; an empty hash matches nothing.
// SetupExpiry is the caller's to check.
func (s *DB) IdPUserBySetupHash(ctx context.Context, hash []byte) (*IdPUser, error) {
	if len(hash) == 0 {
		return nil, s.fail("idp user by setup hash", ErrNotFound)
	}
	u, err := getOne(ctx, s.rd(), scanIdPUser, "SELECT "+idpUserCols+" FROM idp_users WHERE setup_hash = ?", hash)
	return u, s.fail("idp user by setup hash", err)
}

// IdPUsers implements Store; ordered by email.
func (s *DB) IdPUsers(ctx context.Context) ([]*IdPUser, error) {
	us, err := getAll(ctx, s.rd(), scanIdPUser, "SELECT "+idpUserCols+" FROM idp_users ORDER BY email")
	return us, s.fail("idp users", err)
}

// UpdateIdPUser implements Store: everything but ID and Created, with the
// email lowercased. TOTPLastStep never goes down (see UpdateUser).
func (s *DB) UpdateIdPUser(ctx context.Context, u *IdPUser) error {
	u.Email = strings.ToLower(u.Email)
	groups, err := jsonArg(u.Groups)
	if err != nil {
		return s.fail("update idp user", err)
	}
	err = s.wr().execOne(ctx, `UPDATE idp_users SET email = ?, name = ?, password_hash = ?,
			totp_secret = ?, totp_last_step = CASE WHEN totp_last_step > ? THEN totp_last_step ELSE ? END,
			admin = ?, idp_groups = ?, setup_hash = ?, setup_expiry = ?, failures = ?, locked_until = ?
		WHERE id = ?`,
		u.Email, u.Name, u.PasswordHash, blobArg(u.TOTPSecret), u.TOTPLastStep, u.TOTPLastStep,
		u.Admin, groups, blobArg(u.SetupHash), s.d.timeArg(u.SetupExpiry), u.Failures,
		s.d.timeArg(u.LockedUntil), u.ID)
	return s.fail("update idp user "+u.ID, err)
}
