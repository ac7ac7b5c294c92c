package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Secret is one of the coordinator's own secrets (the embedded
// provider's signing keys and client secret, the self-signed TLS key),
// kept in the database so that every replica shares it. Value is sealed
// by the caller under the seal key; the store never sees it in clear.
type Secret struct {
	Name    string
	Value   []byte    // sealed
	Created time.Time // zero for secrets copied from before they had one
	// Retire is zero while the secret is in use. A signing key that no
	// longer signs is kept for verification until Retire, then pruned.
	Retire time.Time
}

const secretCols = "name, value, created, retire"

func scanSecret(r scanner) (*Secret, error) {
	s := new(Secret)
	err := r.Scan(&s.Name, &s.Value, timeCol{&s.Created}, timeCol{&s.Retire})
	return s, err
}

// Secrets returns the secrets whose name starts with prefix, oldest
// first.
func (s *DB) Secrets(ctx context.Context, prefix string) ([]*Secret, error) {
	ss, err := getAll(ctx, s.rd(), scanSecret, "SELECT "+secretCols+
		" FROM secrets WHERE substr(name, 1, ?) = ? ORDER BY created, name", len(prefix), prefix)
	return ss, s.fail("secrets "+prefix, err)
}

// Secret returns the secret called name, or ErrNotFound.
func (s *DB) Secret(ctx context.Context, name string) (*Secret, error) {
	sec, err := getOne(ctx, s.rd(), scanSecret, "SELECT "+secretCols+" FROM secrets WHERE name = ?", name)
	return sec, s.fail("secret "+name, err)
}

// AddSecret stores sec unless a secret of that name exists, and returns
// the one stored: replicas that start together and each make a secret
// all end up with the first one.
func (s *DB) AddSecret(ctx context.Context, sec *Secret) (*Secret, error) {
	if len(sec.Value) == 0 {
		return nil, s.fail("add secret "+sec.Name, errors.New("no value"))
	}
	if _, err := s.wr().exec(ctx, "INSERT INTO secrets ("+secretCols+") VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
		sec.Name, sec.Value, s.d.timeArg(sec.Created), s.d.timeArg(sec.Retire)); err != nil {
		return nil, s.fail("add secret "+sec.Name, err)
	}
	got, err := getOne(ctx, s.wr(), scanSecret, "SELECT "+secretCols+" FROM secrets WHERE name = ?", sec.Name)
	return got, s.fail("add secret "+sec.Name, err)
}

// RetireSecrets marks every secret under prefix that is in use, other
// than keep, to be pruned at retire.
func (s *DB) RetireSecrets(ctx context.Context, prefix, keep string, retire time.Time) error {
	_, err := s.wr().exec(ctx, `UPDATE secrets SET retire = ?
		WHERE substr(name, 1, ?) = ? AND name <> ? AND retire IS NULL`,
		s.d.timeArg(retire), len(prefix), prefix, keep)
	return s.fail("retire secrets "+prefix, err)
}

// PruneSecrets deletes the secrets under prefix retired at or before now.
func (s *DB) PruneSecrets(ctx context.Context, prefix string, now time.Time) (int64, error) {
	res, err := s.wr().exec(ctx, `DELETE FROM secrets WHERE substr(name, 1, ?) = ? AND retire IS NOT NULL AND retire <= ?`,
		len(prefix), prefix, s.d.timeArg(now))
	if err != nil {
		return 0, s.fail("prune secrets "+prefix, err)
	}
	n, err := res.RowsAffected()
	return n, s.fail("prune secrets "+prefix, err)
}

// SealedColumn names a column whose values are sealed under the seal
// key, for Reseal. Table, Key, Column and Where are SQL written by the
// caller, never input.
type SealedColumn struct {
	Table, Key, Column string
	// Where, when set, limits the rows (e.g. "name = 'x'").
	Where string
}

// Reseal rewrites, in one transaction, every non-empty value of every
// column in cols with what reseal returns for it (given the row's key),
// then sets the setting name to value (the new key's identity). An error
// from reseal rolls everything back.
func (s *DB) Reseal(ctx context.Context, cols []SealedColumn, reseal func(col SealedColumn, key string, sealed []byte) ([]byte, error), name string, value []byte) (int, error) {
	n := 0
	err := s.inTx(ctx, func(c conn) error {
		for _, col := range cols {
			m, err := resealColumn(ctx, c, col, reseal)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", col.Table, col.Column, err)
			}
			n += m
		}
		_, err := c.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?)
			ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
		return err
	})
	return n, s.fail("reseal", err)
}

func resealColumn(ctx context.Context, c conn, col SealedColumn, reseal func(SealedColumn, string, []byte) ([]byte, error)) (int, error) {
	where := col.Column + " IS NOT NULL"
	if col.Where != "" {
		where += " AND (" + col.Where + ")"
	}
	type row struct {
		key    string
		sealed []byte
	}
	rows, err := getAll(ctx, c, func(r scanner) (row, error) {
		var x row
		return x, r.Scan(&x.key, &x.sealed)
	}, "SELECT "+col.Key+", "+col.Column+" FROM "+col.Table+" WHERE "+where)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range rows {
		if len(x.sealed) == 0 {
			continue
		}
		v, err := reseal(col, x.key, x.sealed)
		if err != nil {
			return 0, fmt.Errorf("%s %s: %w", col.Key, x.key, err)
		}
		q := "UPDATE " + col.Table + " SET " + col.Column + " = ? WHERE " + col.Key + " = ?"
		if _, err := c.exec(ctx, q, v, x.key); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// AddSetting sets the setting name to value unless it holds one (not
// empty), and returns the value stored.
func (s *DB) AddSetting(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.wr().exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name)
		DO UPDATE SET value = excluded.value WHERE settings.value IS NULL OR length(settings.value) = 0`,
		name, blobArg(value)); err != nil {
		return nil, s.fail("add setting "+name, err)
	}
	var v []byte
	err := s.wr().row(ctx, "SELECT value FROM settings WHERE name = ?", name).Scan(&v)
	return v, s.fail("add setting "+name, err)
}
