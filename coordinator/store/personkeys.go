package store

import (
	"context"
	"time"
)

// PersonKey is a person's key pair for the prompts nodes keep: Public
// goes to nodes in the netmap, Private is sealed by the caller under the
// seal key. Once Erased is set both are empty for good.
type PersonKey struct {
	UserID  string
	Public  []byte
	Private []byte // sealed
	Created time.Time
	Erased  time.Time // zero: not erased
}

const personKeyCols = "user_id, public, private, created, erased"

func scanPersonKey(r scanner) (*PersonKey, error) {
	k := new(PersonKey)
	err := r.Scan(&k.UserID, &k.Public, &k.Private, timeCol{&k.Created}, timeCol{&k.Erased})
	return k, err
}

// AddPersonKey stores k unless its person has a key (or had one,
// erased), and returns the one stored.
func (s *DB) AddPersonKey(ctx context.Context, k *PersonKey) (*PersonKey, error) {
	if _, err := s.wr().exec(ctx, "INSERT INTO person_keys ("+personKeyCols+") VALUES (?, ?, ?, ?, NULL) ON CONFLICT (user_id) DO NOTHING",
		k.UserID, blobArg(k.Public), blobArg(k.Private), s.d.timeArg(k.Created)); err != nil {
		return nil, s.fail("add person key", err)
	}
	got, err := getOne(ctx, s.wr(), scanPersonKey, "SELECT "+personKeyCols+" FROM person_keys WHERE user_id = ?", k.UserID)
	return got, s.fail("add person key", err)
}

// PersonKey returns user's key, or ErrNotFound when none was made.
func (s *DB) PersonKey(ctx context.Context, user string) (*PersonKey, error) {
	k, err := getOne(ctx, s.rd(), scanPersonKey, "SELECT "+personKeyCols+" FROM person_keys WHERE user_id = ?", user)
	return k, s.fail("person key "+user, err)
}

// PersonKeys returns every person's key, erased ones too.
func (s *DB) PersonKeys(ctx context.Context) ([]*PersonKey, error) {
	ks, err := getAll(ctx, s.rd(), scanPersonKey, "SELECT "+personKeyCols+" FROM person_keys ORDER BY user_id")
	return ks, s.fail("person keys", err)
}

// ErasePersonKey destroys user's key pair at at: both halves are
// emptied and the key is marked erased, so none is made again. Erasing a
// person with no key leaves an erased row all the same; erasing twice
// keeps the first time.
func (s *DB) ErasePersonKey(ctx context.Context, user string, at time.Time) error {
	_, err := s.wr().exec(ctx, `INSERT INTO person_keys (`+personKeyCols+`) VALUES (?, NULL, NULL, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET public = NULL, private = NULL,
			erased = CASE WHEN person_keys.erased IS NULL THEN excluded.erased ELSE person_keys.erased END`,
		user, s.d.timeArg(at), s.d.timeArg(at))
	return s.fail("erase person key "+user, err)
}
