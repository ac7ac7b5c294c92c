package store

import (
	"context"
	"errors"
	"time"
)

const userCols = `id, issuer, subject, email, name, idp_groups, admin, role, disabled,
	created, last_login, totp_secret, totp_last_step, mfa_failures, mfa_locked_til, last_mfa, mfa_via`

func scanUser(r scanner) (*User, error) {
	u := new(User)
	err := r.Scan(&u.ID, &u.Issuer, &u.Subject, &u.Email, &u.Name, jsonCol[string]{&u.Groups},
		&u.Admin, &u.Role, &u.Disabled, timeCol{&u.Created}, timeCol{&u.LastLogin},
		&u.TOTPSecret, &u.TOTPLastStep, &u.MFAFailures, timeCol{&u.MFALockedTil}, timeCol{&u.LastMFA}, &u.MFAVia)
	return u, err
}

// UpsertUserByOIDC implements Store. A new user gets u.ID (or a fresh
// "u_…" ID), role "member" unless u.Role says otherwise, and Created now
// unless set. A known user has what the IdP says refreshed — Email, Name,
// Groups, Admin, LastLogin and Role when u.Role is not empty — while
// Disabled and the MFA fields are kept. It returns the stored user.
func (s *DB) UpsertUserByOIDC(ctx context.Context, u *User) (*User, error) {
	id, created, role := u.ID, u.Created, u.Role
	if id == "" {
		id = NewID("u_")
	}
	if created.IsZero() {
		created = time.Now()
	}
	if role == "" {
		role = "member"
	}
	groups, err := jsonArg(u.Groups)
	if err != nil {
		return nil, s.fail("upsert user", err)
	}
	out, err := getOne(ctx, s.wr(), scanUser, `INSERT INTO users (id, issuer, subject, email, name,
			idp_groups, admin, role, disabled, created, last_login, totp_secret, totp_last_step,
			mfa_failures, mfa_locked_til)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (issuer, subject) DO UPDATE SET email = excluded.email, name = excluded.name,
			idp_groups = excluded.idp_groups, admin = excluded.admin, last_login = excluded.last_login,
			role = CASE WHEN ? = '' THEN users.role ELSE excluded.role END
		RETURNING `+userCols,
		id, u.Issuer, u.Subject, u.Email, u.Name, groups, u.Admin, role, u.Disabled,
		s.d.timeArg(created), s.d.timeArg(u.LastLogin), blobArg(u.TOTPSecret), u.TOTPLastStep,
		u.MFAFailures, s.d.timeArg(u.MFALockedTil), u.Role)
	return out, s.fail("upsert user", err)
}

// User implements Store.
func (s *DB) User(ctx context.Context, id string) (*User, error) {
	u, err := getOne(ctx, s.rd(), scanUser, "SELECT "+userCols+" FROM users WHERE id = ?", id)
	return u, s.fail("user "+id, err)
}

// Users implements Store; ordered by creation.
func (s *DB) Users(ctx context.Context) ([]*User, error) {
	us, err := getAll(ctx, s.rd(), scanUser, "SELECT "+userCols+" FROM users ORDER BY created, id")
	return us, s.fail("users", err)
}

// RecordMFA implements Store. An older time never replaces a newer one.
func (s *DB) RecordMFA(ctx context.Context, id string, at time.Time, via string) error {
	err := s.wr().execOne(ctx, `UPDATE users SET last_mfa = ?, mfa_via = ?
		WHERE id = ? AND (last_mfa IS NULL OR last_mfa <= ?)`,
		s.d.timeArg(at), via, id, s.d.timeArg(at))
	if errors.Is(err, ErrNotFound) {
		if _, uerr := s.User(ctx, id); uerr == nil {
			return nil // a newer MFA is on record
		}
	}
	return s.fail("record MFA of "+id, err)
}

// UpdateUser implements Store: everything but ID, Issuer, Subject,
// Created and the fields RecordMFA sets. TOTPLastStep never goes down, so a stale copy cannot reopen a
// used TOTP step to replay.
func (s *DB) UpdateUser(ctx context.Context, u *User) error {
	groups, err := jsonArg(u.Groups)
	if err != nil {
		return s.fail("update user", err)
	}
	err = s.wr().execOne(ctx, `UPDATE users SET email = ?, name = ?, idp_groups = ?, admin = ?,
			role = ?, disabled = ?, last_login = ?, totp_secret = ?,
			totp_last_step = CASE WHEN totp_last_step > ? THEN totp_last_step ELSE ? END,
			mfa_failures = ?, mfa_locked_til = ?
		WHERE id = ?`,
		u.Email, u.Name, groups, u.Admin, u.Role, u.Disabled, s.d.timeArg(u.LastLogin),
		blobArg(u.TOTPSecret), u.TOTPLastStep, u.TOTPLastStep, u.MFAFailures,
		s.d.timeArg(u.MFALockedTil), u.ID)
	return s.fail("update user "+u.ID, err)
}
