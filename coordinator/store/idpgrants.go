package store

import (
	"context"
	"time"
)

// The coordinator re-checks people at their identity provider with the
// refresh token of their latest sign-in (coordinator/idprecheck.go).
// The token is sealed by the caller: the store never holds it in clear.

// IdPGrant is what the coordinator keeps to re-check one person.
type IdPGrant struct {
	UserID  string
	Refresh []byte    // the refresh token, sealed by the caller
	Updated time.Time // when Refresh was stored
	Checked time.Time // the last re-check; zero: never
	Result  string    // its outcome, e.g. "ok", "gone", "error"
}

// Result values of a re-check, as stored and counted.
const (
	IdPCheckOK    = "ok"    // the IdP still knows the person
	IdPCheckGone  = "gone"  // the IdP refused their grant: disabled
	IdPCheckError = "error" // the IdP could not be asked: nothing changed
)

const idpGrantCols = "user_id, refresh, updated, checked, result"

func scanIdPGrant(r scanner) (*IdPGrant, error) {
	g := new(IdPGrant)
	return g, r.Scan(&g.UserID, &g.Refresh, timeCol{&g.Updated}, timeCol{&g.Checked}, &g.Result)
}

// SetIdPGrant stores the sealed refresh token of user's sign-in at, in
// place of any earlier one.
func (s *DB) SetIdPGrant(ctx context.Context, user string, sealed []byte, at time.Time) error {
	_, err := s.wr().exec(ctx, `INSERT INTO idp_grants (`+idpGrantCols+`) VALUES (?, ?, ?, NULL, '')
		ON CONFLICT (user_id) DO UPDATE SET refresh = excluded.refresh, updated = excluded.updated`,
		user, sealed, s.d.timeArg(at))
	return s.fail("set IdP grant of "+user, err)
}

// IdPGrants returns every person's grant, the least recently checked
// first.
func (s *DB) IdPGrants(ctx context.Context) ([]*IdPGrant, error) {
	gs, err := getAll(ctx, s.rd(), scanIdPGrant, "SELECT "+idpGrantCols+" FROM idp_grants ORDER BY checked IS NOT NULL, checked, user_id")
	return gs, s.fail("IdP grants", err)
}

// IdPGrant returns user's grant.
func (s *DB) IdPGrant(ctx context.Context, user string) (*IdPGrant, error) {
	g, err := getOne(ctx, s.rd(), scanIdPGrant, "SELECT "+idpGrantCols+" FROM idp_grants WHERE user_id = ?", user)
	return g, s.fail("IdP grant of "+user, err)
}

// RecordIdPCheck records a re-check of user at at. With next set (the
// IdP rotated the token), it replaces the token, but only while the
// stored one is still prev: a sign-in that stored a newer token in the
// meantime keeps it.
func (s *DB) RecordIdPCheck(ctx context.Context, user string, at time.Time, result string, prev, next []byte) error {
	_, err := s.wr().exec(ctx, "UPDATE idp_grants SET checked = ?, result = ? WHERE user_id = ?",
		s.d.timeArg(at), result, user)
	if err == nil && next != nil {
		_, err = s.wr().exec(ctx, "UPDATE idp_grants SET refresh = ?, updated = ? WHERE user_id = ? AND refresh = ?",
			next, s.d.timeArg(at), user, prev)
	}
	return s.fail("record IdP check of "+user, err)
}

// DeleteIdPGrant forgets user's grant.
func (s *DB) DeleteIdPGrant(ctx context.Context, user string) error {
	_, err := s.wr().exec(ctx, "DELETE FROM idp_grants WHERE user_id = ?", user)
	return s.fail("delete IdP grant of "+user, err)
}
