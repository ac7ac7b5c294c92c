package store

import (
	"context"
	"errors"
	"strings"
	"time"
)

// SCIMToken is a bearer token of a SCIM client (an IdP's provisioning
// agent). Only its hash is stored.
type SCIMToken struct {
	ID        string // "st_…"
	Hash      []byte // SHA-256 of the token
	Name      string
	CreatedBy string
	Created   time.Time
	Expiry    time.Time // zero: never
}

// SCIMUser is a person as the IdP provisions them through SCIM.
type SCIMUser struct {
	ID         string // "su_…", the SCIM id
	UserName   string // lower case, unique among users not deleted
	Email      string // lower case primary email; "" when none was sent
	ExternalID string
	Active     bool
	Deleted    bool   // a tombstone: kept so that sign-in is refused
	Attrs      []byte // the SCIM resource as last written (JSON object)
	Created    time.Time
	Modified   time.Time
}

// SCIMGroup is a group as the IdP provisions it; its members are SCIM
// user ids.
type SCIMGroup struct {
	ID          string // "sg_…"
	DisplayName string
	ExternalID  string
	Attrs       []byte // the SCIM resource as last written, without members
	Members     []string
	Created     time.Time
	Modified    time.Time
}

const scimTokenCols = "id, hash, name, created_by, created, expiry"

func scanSCIMToken(r scanner) (*SCIMToken, error) {
	t := new(SCIMToken)
	err := r.Scan(&t.ID, &t.Hash, &t.Name, &t.CreatedBy, timeCol{&t.Created}, timeCol{&t.Expiry})
	return t, err
}

// CreateSCIMToken stores t, filling t.ID ("st_…") and t.Created when empty.
func (s *DB) CreateSCIMToken(ctx context.Context, t *SCIMToken) error {
	if len(t.Hash) == 0 {
		return s.fail("create SCIM token", errors.New("no hash"))
	}
	fillNew(&t.ID, "st_", &t.Created)
	_, err := s.wr().exec(ctx, `INSERT INTO scim_tokens (`+scimTokenCols+`) VALUES (?, ?, ?, ?, ?, ?)`,
		t.ID, t.Hash, t.Name, t.CreatedBy, s.d.timeArg(t.Created), s.d.timeArg(t.Expiry))
	return s.fail("create SCIM token", err)
}

// SCIMTokenByHash returns the token with this hash, expired or not.
func (s *DB) SCIMTokenByHash(ctx context.Context, hash []byte) (*SCIMToken, error) {
	t, err := getOne(ctx, s.rd(), scanSCIMToken, "SELECT "+scimTokenCols+" FROM scim_tokens WHERE hash = ?", hash)
	return t, s.fail("SCIM token", err)
}

// SCIMTokens lists the SCIM tokens, newest first.
func (s *DB) SCIMTokens(ctx context.Context) ([]*SCIMToken, error) {
	ts, err := getAll(ctx, s.rd(), scanSCIMToken, "SELECT "+scimTokenCols+" FROM scim_tokens ORDER BY created DESC, id")
	return ts, s.fail("SCIM tokens", err)
}

// DeleteSCIMToken deletes token id; an unknown id is ErrNotFound.
func (s *DB) DeleteSCIMToken(ctx context.Context, id string) error {
	return s.fail("delete SCIM token "+id, s.wr().execOne(ctx, "DELETE FROM scim_tokens WHERE id = ?", id))
}

const scimUserCols = "id, user_name, email, external_id, active, deleted, attrs, created, modified"

func scanSCIMUser(r scanner) (*SCIMUser, error) {
	u := new(SCIMUser)
	var attrs string
	err := r.Scan(&u.ID, &u.UserName, &u.Email, &u.ExternalID, &u.Active, &u.Deleted, &attrs,
		timeCol{&u.Created}, timeCol{&u.Modified})
	u.Attrs = []byte(attrs)
	return u, err
}

// PutSCIMUser creates or replaces user u (by ID, filled with "su_…" when
// empty); UserName and Email are stored in lower case. A tombstone with
// the same user name makes way for it. Another live user with the same
// user name is ErrConflict.
func (s *DB) PutSCIMUser(ctx context.Context, u *SCIMUser) error {
	fillNew(&u.ID, "su_", &u.Created)
	u.UserName, u.Email = strings.ToLower(u.UserName), strings.ToLower(u.Email)
	if u.Modified.IsZero() {
		u.Modified = time.Now()
	}
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, "DELETE FROM scim_users WHERE user_name = ? AND deleted AND id <> ?", u.UserName, u.ID); err != nil {
			return err
		}
		_, err := c.exec(ctx, `INSERT INTO scim_users (`+scimUserCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, email = excluded.email,
				external_id = excluded.external_id, active = excluded.active, deleted = excluded.deleted,
				attrs = excluded.attrs, modified = excluded.modified`,
			u.ID, u.UserName, u.Email, u.ExternalID, u.Active, u.Deleted, string(u.Attrs),
			s.d.timeArg(u.Created), s.d.timeArg(u.Modified))
		return err
	})
	return s.fail("put SCIM user", err)
}

// SCIMUser returns user id, tombstones included.
func (s *DB) SCIMUser(ctx context.Context, id string) (*SCIMUser, error) {
	u, err := getOne(ctx, s.rd(), scanSCIMUser, "SELECT "+scimUserCols+" FROM scim_users WHERE id = ?", id)
	return u, s.fail("SCIM user "+id, err)
}

// SCIMUsers lists the users not deleted, oldest first.
func (s *DB) SCIMUsers(ctx context.Context) ([]*SCIMUser, error) {
	us, err := getAll(ctx, s.rd(), scanSCIMUser,
		"SELECT "+scimUserCols+" FROM scim_users WHERE NOT deleted ORDER BY created, id")
	return us, s.fail("SCIM users", err)
}

// SCIMUsersByEmail returns the users, tombstones included, whose user
// name or email is email (compared in lower case).
func (s *DB) SCIMUsersByEmail(ctx context.Context, email string) ([]*SCIMUser, error) {
	email = strings.ToLower(email)
	us, err := getAll(ctx, s.rd(), scanSCIMUser,
		"SELECT "+scimUserCols+" FROM scim_users WHERE user_name = ? OR email = ? ORDER BY created, id", email, email)
	return us, s.fail("SCIM users of "+email, err)
}

// DeleteSCIMUser turns user id into a tombstone (not active, deleted, out
// of every group). An unknown or deleted id is ErrNotFound.
func (s *DB) DeleteSCIMUser(ctx context.Context, id string, now time.Time) error {
	err := s.inTx(ctx, func(c conn) error {
		if err := c.execOne(ctx, `UPDATE scim_users SET active = FALSE, deleted = TRUE, modified = ?
			WHERE id = ? AND NOT deleted`, s.d.timeArg(now), id); err != nil {
			return err
		}
		_, err := c.exec(ctx, "DELETE FROM scim_members WHERE user_id = ?", id)
		return err
	})
	return s.fail("delete SCIM user "+id, err)
}

const scimGroupCols = "id, display_name, external_id, attrs, created, modified"

func scanSCIMGroup(r scanner) (*SCIMGroup, error) {
	g := new(SCIMGroup)
	var attrs string
	err := r.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &attrs, timeCol{&g.Created}, timeCol{&g.Modified})
	g.Attrs = []byte(attrs)
	return g, err
}

// PutSCIMGroup creates or replaces group g (by ID, filled with "sg_…"
// when empty) and its members. Members that are no live user are
// ErrNotFound.
func (s *DB) PutSCIMGroup(ctx context.Context, g *SCIMGroup) error {
	fillNew(&g.ID, "sg_", &g.Created)
	if g.Modified.IsZero() {
		g.Modified = time.Now()
	}
	err := s.inTx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO scim_groups (`+scimGroupCols+`) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET display_name = excluded.display_name,
				external_id = excluded.external_id, attrs = excluded.attrs, modified = excluded.modified`,
			g.ID, g.DisplayName, g.ExternalID, string(g.Attrs), s.d.timeArg(g.Created), s.d.timeArg(g.Modified))
		if err != nil {
			return err
		}
		if _, err := c.exec(ctx, "DELETE FROM scim_members WHERE group_id = ?", g.ID); err != nil {
			return err
		}
		for _, m := range g.Members {
			if _, err := c.exec(ctx, `INSERT INTO scim_members (group_id, user_id)
				SELECT ?, id FROM scim_users WHERE id = ? AND NOT deleted ON CONFLICT DO NOTHING`, g.ID, m); err != nil {
				return err
			}
		}
		return nil
	})
	return s.fail("put SCIM group", err)
}

// SCIMGroup returns group id with its members.
func (s *DB) SCIMGroup(ctx context.Context, id string) (*SCIMGroup, error) {
	g, err := getOne(ctx, s.rd(), scanSCIMGroup, "SELECT "+scimGroupCols+" FROM scim_groups WHERE id = ?", id)
	if err == nil {
		g.Members, err = s.scimMembers(ctx, id)
	}
	return g, s.fail("SCIM group "+id, err)
}

// SCIMGroups lists the groups with their members, oldest first.
func (s *DB) SCIMGroups(ctx context.Context) ([]*SCIMGroup, error) {
	gs, err := getAll(ctx, s.rd(), scanSCIMGroup, "SELECT "+scimGroupCols+" FROM scim_groups ORDER BY created, id")
	for _, g := range gs {
		if err != nil {
			break
		}
		g.Members, err = s.scimMembers(ctx, g.ID)
	}
	return gs, s.fail("SCIM groups", err)
}

func (s *DB) scimMembers(ctx context.Context, groupID string) ([]string, error) {
	return getAll(ctx, s.rd(), scanString,
		"SELECT user_id FROM scim_members WHERE group_id = ? ORDER BY user_id", groupID)
}

// SCIMGroupNames returns the display names of the groups SCIM user id is
// in, sorted.
func (s *DB) SCIMGroupNames(ctx context.Context, userID string) ([]string, error) {
	names, err := getAll(ctx, s.rd(), scanString, `SELECT g.display_name FROM scim_groups g
		JOIN scim_members m ON m.group_id = g.id WHERE m.user_id = ? ORDER BY g.display_name`, userID)
	return names, s.fail("SCIM groups of "+userID, err)
}

// DeleteSCIMGroup deletes group id and its memberships; an unknown id is
// ErrNotFound.
func (s *DB) DeleteSCIMGroup(ctx context.Context, id string) error {
	err := s.inTx(ctx, func(c conn) error {
		if _, err := c.exec(ctx, "DELETE FROM scim_members WHERE group_id = ?", id); err != nil {
			return err
		}
		return c.execOne(ctx, "DELETE FROM scim_groups WHERE id = ?", id)
	})
	return s.fail("delete SCIM group "+id, err)
}

func scanString(r scanner) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}
